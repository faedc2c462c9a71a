"""bnnkit.train: the case optimizer trains, exact resume, checkpoints, schedules, KD, two-step."""

import json
import math

import pytest
import torch
import torch.nn.functional as F

from bnnkit import data
from bnnkit.models.quicknet import QuickNet
from bnnkit.train import (CheckpointError, TrainConfig, checkpoint, evaluate, kd_loss,
                          load_checkpoint, load_weights, save_atomic, schedules, train)

FASHION = data.DEBIAN_DATA_DIR / "fashion-mnist" / "train-images-idx3-ubyte.gz"


def tiny(num_classes=4, filters=(8, 16), in_channels=1):
    """A QuickNet-style net: float stem, binary 3x3 blocks, float transition and head."""
    torch.manual_seed(0)
    return QuickNet((1, 1), filters, num_classes=num_classes, in_channels=in_channels)


def cfg(**kw):
    base = dict(model=tiny(), dataset="synthetic", epochs=2, batch_size=64, progress=False,
                lr=1e-2, bop_gamma=1e-3, bop_threshold=1e-6, plots=False, augment=False)
    return TrainConfig(**{**base, **kw})


def binary_weights(model):
    from bnnkit.optim import split_parameters

    return split_parameters(model)[0]


# --------------------------------------------------------------------------- training
def test_case_optimizer_trains_a_tiny_binary_net():
    result = train(cfg(epochs=3))
    assert [h["epoch"] for h in result.history] == [1, 2, 3]
    # Chance is 0.25; test accuracy lags (batch-norm running statistics after 24 steps).
    assert result.history[-1]["train_acc"] > 0.95 and result.test_acc > 0.45
    weights = binary_weights(result.model)
    assert len(weights) == 2 and all(bool((w.abs() == 1).all()) for w in weights)  # Bop: +-1
    assert 0 < result.history[0]["flip_ratio"] < 0.5


def test_adam_keeps_latent_weights_clipped():
    result = train(cfg(optimizer="adam", epochs=1, lr=0.5))
    for w in binary_weights(result.model):
        assert float(w.detach().abs().max()) <= 1.25 and float(w.detach().abs().max()) > 1.0  # clip 1.25 reached


def test_metrics_files_and_checkpoint_contents(tmp_path):
    result = train(cfg(out_dir=str(tmp_path), bop_decay_every=1))
    rows = (tmp_path / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,phase,step,lr,train_loss,train_acc,test_loss,test_acc")
    assert len(rows) == 3
    assert json.loads((tmp_path / "metrics.json").read_text())[1]["step"] == 16
    ck = load_checkpoint(tmp_path / "last.pt")
    assert (ck["epoch"], ck["batch"], ck["global_step"]) == (2, 0, 16)
    assert ck["meta"]["num_classes"] == 4 and ck["config"]["optimizer"] == "bop+adam"
    gammas = [g["gamma"] for g in ck["optimizer"]["optimizers"][0]["param_groups"]]
    assert gammas == [pytest.approx(1e-4)]  # step 15 is in epoch 2: 1e-3 * 0.1
    assert (tmp_path / "best.pt").is_file() and (tmp_path / "config.json").is_file()
    assert not list(tmp_path.glob(".*.tmp"))
    assert result.checkpoint == tmp_path / "last.pt"


def test_curves_png_and_no_tensorboard_is_a_note_not_a_failure(tmp_path, monkeypatch, capsys):
    from bnnkit.train import progress

    have = progress._have
    monkeypatch.setattr(progress, "_have", lambda m: m != "tensorboard" and have(m))
    result = train(cfg(out_dir=str(tmp_path), epochs=1, plots=True, tensorboard=True,
                       progress=True, log_every=3))
    assert result.epochs_completed == 1
    assert "tensorboard is not installed; skipping it" in capsys.readouterr().out
    assert not (tmp_path / "tensorboard").exists()
    if have("matplotlib"):
        assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_progress_bar_only_on_a_terminal():
    """With tqdm installed, a pipe or file gets the plain lines every log_every steps (no
    bar redraws filling a log); a terminal gets the bar."""
    import io

    from bnnkit.train import progress

    class Tty(io.StringIO):
        def isatty(self):
            return True

    piped = io.StringIO()
    bar = progress.Progress(4, "epoch 1/1", log_every=2, stream=piped)
    for _ in range(4):
        bar.update({"loss": 1.0})
    bar.close({"loss": 1.0})
    assert bar.bar is None and len(piped.getvalue().splitlines()) == 2
    assert "\r" not in piped.getvalue()
    tty = progress.Progress(4, "epoch 1/1", log_every=2, stream=Tty())
    assert tty.bar is not None
    tty.close({"loss": 1.0})


def test_no_progress_still_prints_one_line_per_epoch(capsys):
    train(cfg(epochs=2, progress=False))
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch ")]
    assert [line.split(":")[0] for line in lines] == ["epoch 1", "epoch 2"]


def test_plain_progress_lines_show_live_loss_accuracy_and_flips(monkeypatch):
    import io

    from bnnkit.train import progress

    monkeypatch.setattr(progress, "_have", lambda m: False)  # no tqdm: plain lines
    out = io.StringIO()
    bar = progress.Progress(5, "epoch 1/2", log_every=2, stream=out)
    for i in range(5):
        bar.update({"loss": 1.0 / (i + 1), "acc": 0.5, "flips": 0.00123})
    bar.close({"loss": 0.2, "acc": 0.75, "flips": 0.001})
    lines = out.getvalue().splitlines()
    assert [line.split(" it/s")[0].rsplit(" (", 1)[0] for line in lines] == [
        "epoch 1/2 2/5 loss=0.5 acc=50.00% flips=1.2e-03",
        "epoch 1/2 4/5 loss=0.25 acc=50.00% flips=1.2e-03",
        "epoch 1/2 5/5 loss=0.2 acc=75.00% flips=1.0e-03"]
    silent = io.StringIO()
    quiet = progress.Progress(5, "x", enabled=False, stream=silent)
    quiet.update({"loss": 1.0}), quiet.close({"loss": 1.0})
    assert silent.getvalue() == ""


def test_evaluate_counts_correct_predictions():
    model = tiny().eval()
    ds = data.synthetic(40, image_size=16)
    x, y = next(iter(data.BatchLoader(ds, 40)))
    with torch.no_grad():
        logits = model(x)
    out = evaluate(model, ds, batch_size=7)
    assert out["count"] == 40
    assert out["acc"] == pytest.approx(float((logits.argmax(1) == y).float().mean()))
    assert out["loss"] == pytest.approx(float(F.cross_entropy(logits, y)), rel=1e-5)


# --------------------------------------------------------------------------- exact resume
def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("opts,stop", [({"optimizer": "bop+adam"}, 11),
                                       ({"optimizer": "adam", "two_step": True, "epochs": 3}, 5),
                                       ({"optimizer": "bop+sgd", "label_smoothing": 0.1}, 8)])
def test_resume_mid_run_is_bit_identical(tmp_path, opts, stop):
    full = train(cfg(out_dir=str(tmp_path / "a"), **opts))
    part = train(cfg(out_dir=str(tmp_path / "b"), max_steps=stop, **opts))
    assert part.stopped_early and part.global_step == stop
    ck = load_checkpoint(tmp_path / "b" / "last.pt")
    assert (ck["epoch"], ck["batch"]) == divmod(stop, 8)
    resumed = train(cfg(model=tiny(), out_dir=str(tmp_path / "b"), resume=True, **opts))
    assert not resumed.stopped_early and resumed.global_step == full.global_step
    a, b = _state(full.model), _state(resumed.model)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    for ha, hb in zip(full.history, resumed.history):
        assert ha["train_loss"] == hb["train_loss"] and ha["test_acc"] == hb["test_acc"]


# The killed run: same model and config as cfg(); saves every 3 steps and is SIGKILLed
# while writing its step-12 checkpoint, so last.pt still holds step 9 (epoch 2, batch 1).
KILLED_RUN = """
import os, signal, sys
import torch
from bnnkit.models.quicknet import QuickNet
from bnnkit.train import TrainConfig, checkpoint, train

real_save = torch.save

def save_then_die(obj, f, *args, **kwargs):
    if isinstance(obj, dict) and obj.get("global_step") == 12:
        f.write(b"half a checkpoint")
        f.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    return real_save(obj, f, *args, **kwargs)

torch.save = save_then_die
torch.set_num_threads(int(sys.argv[2]))  # the parent's count: float sums depend on it
torch.manual_seed(0)
model = QuickNet((1, 1), (8, 16), num_classes=4, in_channels=1)
train(TrainConfig(model=model, dataset="synthetic", epochs=2, batch_size=64, progress=False,
                  lr=1e-2, bop_gamma=1e-3, bop_threshold=1e-6, plots=False, augment=True,
                  out_dir=sys.argv[1], save_every_steps=3))
"""


def test_run_killed_mid_epoch_then_resumed_matches_uninterrupted_run(tmp_path):
    import subprocess
    import sys

    full = train(cfg(out_dir=str(tmp_path / "a"), augment=True))
    out = tmp_path / "b"
    proc = subprocess.run([sys.executable, "-c", KILLED_RUN, str(out), str(torch.get_num_threads())],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr[-2000:]  # died by SIGKILL, mid-write
    assert len(list(out.glob(".last.pt.*.tmp"))) == 1  # the half-written temp file
    ck = load_checkpoint(out / "last.pt")  # the real name still holds a good checkpoint
    assert (ck["epoch"], ck["batch"], ck["global_step"]) == (1, 1, 9)
    resumed = train(cfg(model=tiny(), out_dir=str(out), resume=True, augment=True,
                        save_every_steps=3))
    assert resumed.global_step == full.global_step == 16
    a, b = _state(full.model), _state(resumed.model)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    keys = ("train_loss", "train_acc", "test_loss", "test_acc", "flip_ratio", "lr", "step")
    assert [[h[k] for k in keys] for h in full.history] == \
        [[h[k] for k in keys] for h in resumed.history]
    assert not list(out.glob(".*.tmp"))  # the resumed run removed the stale temp file
    assert len(json.loads((out / "metrics.json").read_text())) == 2


# --------------------------------------------------------------------------- checkpoints
def test_checkpoint_architecture_mismatch_lists_keys(tmp_path):
    train(cfg(out_dir=str(tmp_path), epochs=1))
    with pytest.raises(CheckpointError, match=r"does not match.*shape mismatches \[.*stem"):
        load_weights(tiny(filters=(16, 16)), tmp_path / "last.pt")
    with pytest.raises(CheckpointError, match=r"missing keys \[.*unexpected keys"):
        load_weights(torch.nn.Sequential(torch.nn.Linear(2, 2)), tmp_path / "last.pt")


def test_corrupt_and_foreign_checkpoints(tmp_path):
    path = tmp_path / "c.pt"
    save_atomic({"format": checkpoint.FORMAT, "version": 1, "x": torch.ones(1000)}, path)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(CheckpointError, match="c.pt is corrupt"):
        load_checkpoint(path)
    torch.save({"weights": torch.ones(2)}, tmp_path / "f.pt")
    with pytest.raises(CheckpointError, match="not a bnnkit checkpoint"):
        load_checkpoint(tmp_path / "f.pt")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nothing.pt")


def test_atomic_save_keeps_old_file_when_writing_fails(tmp_path, monkeypatch):
    path = save_atomic({"format": checkpoint.FORMAT, "version": 1, "v": torch.zeros(3)},
                       tmp_path / "k.pt")

    def broken(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken)
    with pytest.raises(OSError, match="disk full"):
        save_atomic({"v": torch.ones(3)}, path)
    monkeypatch.undo()
    assert torch.equal(load_checkpoint(path)["v"], torch.zeros(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.pt"]


def test_rng_state_roundtrip_through_weights_only(tmp_path):
    import random

    import numpy as np

    torch.manual_seed(1), np.random.seed(2), random.seed(3)
    save_atomic({"format": checkpoint.FORMAT, "version": 1, "rng": checkpoint.rng_state()},
                tmp_path / "r.pt")
    expect = (torch.rand(3), np.random.rand(3), random.random())
    checkpoint.set_rng_state(load_checkpoint(tmp_path / "r.pt")["rng"])
    assert torch.equal(torch.rand(3), expect[0])
    assert np.array_equal(np.random.rand(3), expect[1]) and random.random() == expect[2]


# --------------------------------------------------------------------------- schedules, losses
def test_warmup_cosine_closed_form():
    f = schedules.warmup_cosine(total=10, warmup=2, floor=0.1)
    assert [f(0), f(1)] == [0.5, 1.0]
    assert f(2) == pytest.approx(1.0) and f(10) == pytest.approx(0.1)
    assert f(6) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    g = schedules.warmup_step(every=3, factor=0.1)
    assert [g(0), g(2), g(3), g(6)] == [1.0, 1.0, pytest.approx(0.1), pytest.approx(0.01)]


def test_kd_loss_formula():
    s, t = torch.randn(5, 3), torch.randn(5, 3)
    p = F.softmax(t / 2, 1)
    manual = (p * (p.log() - F.log_softmax(s / 2, 1))).sum(1).mean() * 4
    assert float(kd_loss(s, t, 2.0)) == pytest.approx(float(manual), rel=1e-5)
    assert float(kd_loss(s, s, 3.0)) == pytest.approx(0.0, abs=1e-6)


def test_distillation_from_a_teacher_module_trains():
    teacher = train(cfg(optimizer="adam", epochs=2)).model
    result = train(cfg(epochs=2, teacher=teacher, distill_alpha=0.5, model=tiny()))
    assert result.history[-1]["train_acc"] > 0.9


def test_two_step_strips_kernel_quantizers_in_phase_one(tmp_path):
    seen = []
    model = tiny()
    conv = model.body[0].conv
    hook = conv.register_forward_pre_hook(lambda m, _: seen.append(m.kernel_quantizer is None))
    result = train(cfg(model=model, optimizer="bop+adam", two_step=True, epochs=2))
    hook.remove()
    assert [h["phase"] for h in result.history] == [1, 2]
    train_calls = [s for s in seen]
    assert train_calls[0] is True and train_calls[-1] is False  # eval of phase 2 is binary
    assert conv.kernel_quantizer is not None
    assert bool((conv.weight.abs() == 1).all())  # Bop binarized the step-1 latent weights


# --------------------------------------------------------------------------- config
def test_config_errors():
    with pytest.raises(ValueError, match=r"optimizer must be one of \['bop\+adam'"):
        TrainConfig(optimizer="lamb")
    with pytest.raises(ValueError, match=r"unknown TrainConfig field\(s\) \['epochz'\]"):
        TrainConfig.from_dict({"epochz": 3})
    with pytest.raises(ValueError, match="resume=True needs out_dir"):
        TrainConfig(resume=True)
    with pytest.raises(ValueError, match="no binary weights"):
        train(cfg(model=torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(256, 4)), epochs=1))


@pytest.mark.skipif(not FASHION.is_file(), reason="apt-get install dataset-fashion-mnist")
def test_fashion_mnist_slice_learns():
    result = train(cfg(model=tiny(10, (16, 32)), dataset="fashion_mnist", train_subset=2048,
                       test_subset=1000, epochs=2, optimizer="adam", lr=5e-3))
    assert result.history[-1]["train_acc"] > 0.45 and result.test_acc > 0.3  # chance: 0.1


def test_tune_malloc_is_applied_once_and_only_when_configured(monkeypatch):
    import platform

    from bnnkit.train import perf

    glibc = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert perf.tune_malloc() is glibc and perf.tune_malloc() is glibc  # idempotent
    calls = []
    monkeypatch.setattr(perf, "tune_malloc", lambda: calls.append(1) or True)
    train(cfg(max_steps=1, tune_malloc=False))
    assert calls == []
    train(cfg(max_steps=1))
    assert calls == [1]


def test_adam_is_fused_where_torch_has_it():
    from bnnkit.train.trainer import build_optimizer

    opt = build_optimizer(tiny(), "bop+adam", TrainConfig(model=tiny()))
    adam = [o for o in opt.optimizers if isinstance(o, torch.optim.Adam)][0]
    assert all(g["fused"] for g in adam.param_groups)


def test_train_returns_eval_mode_and_evaluates_a_max_steps_stop(tmp_path):
    """train() hands back a model ready for inference (eval mode: one image goes through
    its batch norms), and a run stopped by max_steps inside its first epoch still reports
    the returned model's test accuracy and writes best.pt."""
    result = train(cfg(out_dir=str(tmp_path), max_steps=3))
    assert result.stopped_early and not result.model.training
    assert all(not m.training for m in result.model.modules())
    assert result.history == [] and result.test_acc is not None
    best = load_checkpoint(tmp_path / "best.pt")
    assert best["global_step"] == 3 and best["best_acc"] == result.test_acc
    for key, value in result.model.state_dict().items():
        assert torch.equal(best["model"][key], value), key
    x, _ = next(iter(data.BatchLoader(data.synthetic(8, image_size=16), 1)))
    with torch.no_grad():
        assert result.model(x).shape[0] == 1


def test_default_model_fits_the_default_data_set():
    """`bnnkit train` with no options: the default model takes the default data set's
    28x28 grey images (Fashion-MNIST)."""
    from bnnkit import models

    d = TrainConfig()
    assert d.dataset == "fashion_mnist"
    out = models.create(d.model, num_classes=10, input_size=28, in_channels=1).eval()(torch.zeros(2, 1, 28, 28))
    assert out.shape == (2, 10)


def test_a_model_too_large_for_the_images_is_named_with_what_fits(tmp_path):
    with pytest.raises(ValueError, match=r"model 'quicknet_large' cannot take the 16x16 images of "
                                         r"data set 'synthetic' .*that take 16x16: .*quicknet_tiny"):
        train(cfg(model="quicknet_large", out_dir=str(tmp_path)))
