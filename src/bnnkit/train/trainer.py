"""The training loop: ``train(config) -> TrainResult``.

One run = an optional phase 1 (ReActNet two-step: float weights, Adam/SGD) and phase 2
(the configured optimizer). Each optimizer step: set the scheduled ``lr`` / Bop ``gamma``
/ ``threshold`` for the step, forward (optionally under bf16 autocast), loss (CE with label
smoothing, optionally distillation), backward, ``optimizer.step()``, then
``bnnkit.nn.apply_weight_clips_`` (Larq's kernel constraints).

Exact resume: the data order and augmentation depend only on (seed, epoch, rank, batch
index) (see :class:`bnnkit.data.BatchLoader`), schedules only on the step, and the
checkpoint holds the model, optimizer (Adam moments, Bop momenta, step counters), RNG
states, epoch/batch/step and the running epoch sums; so stopping after any step and
resuming gives bit-identical weights to an uninterrupted run (same device and threads).
"""

from __future__ import annotations

import gc
import math
import os
import random
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import data as bdata
from . import checkpoint as ckpt_mod
from . import distributed as dist_mod
from . import perf, schedules, twostep
from .config import TrainConfig
from .distill import ClassificationLoss
from .progress import MetricsWriter, Progress

LAST, BEST = "last.pt", "best.pt"


@dataclass
class TrainResult:
    """What :func:`train` returns (on every rank; files are written by rank 0 only)."""

    model: nn.Module
    history: list[dict[str, Any]]
    test_acc: float | None
    test_loss: float | None
    global_step: int
    epochs_completed: int
    stopped_early: bool
    out_dir: Path | None
    checkpoint: Path | None
    train_seconds: float
    config: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- helpers
def resolve_device(name: str = "auto") -> torch.device:
    """``"auto"``: the local CUDA device if there is one, else the CPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return device


def bf16_supported(device: torch.device) -> bool:
    """Native bf16 math: CUDA with bf16, or a CPU with AVX512-BF16 / AMX (Linux flags)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def use_bf16(mode: str, device: torch.device) -> bool:
    return mode == "on" or (mode == "auto" and bf16_supported(device))


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (model initialisation, dropout)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build_model(config: TrainConfig, dataset: bdata.ArrayDataset) -> nn.Module:
    """``config.model`` itself, or the zoo model sized for ``dataset``."""
    if isinstance(config.model, nn.Module):
        return config.model
    from .. import models

    c, h, w = dataset.image_shape
    kwargs = {"in_channels": c, **config.model_kwargs}
    try:
        return models.create(config.model, num_classes=dataset.num_classes, input_size=h, **kwargs)
    except ValueError as e:
        if "input too small" not in str(e):
            raise
        fits = []
        for name in models.list_models():  # only on this error path: which would fit
            try:
                models.create(name, num_classes=dataset.num_classes, input_size=h, in_channels=c)
                fits.append(name)
            except ValueError:
                pass
        raise ValueError(
            f"model {config.model!r} cannot take the {h}x{w} images of data set {config.dataset!r} "
            f"({e}); models of the zoo that take {h}x{w}: {', '.join(fits) or 'none'}") from None


def load_model(path: str | os.PathLike, map_location="cpu") -> nn.Module:
    """Rebuild the zoo model a checkpoint of this trainer was made for, with its weights."""
    ckpt = ckpt_mod.load_checkpoint(path, map_location)
    meta = ckpt["meta"]
    if not meta.get("model_name"):
        raise ckpt_mod.CheckpointError(
            f"{path} was trained on a user nn.Module; build it and call load_weights(module, path)")
    from .. import models

    model = models.create(meta["model_name"], num_classes=meta["num_classes"],
                          input_size=meta["input_size"],
                          **{"in_channels": meta["in_channels"], **meta["model_kwargs"]})
    ckpt_mod.load_model_state(model, ckpt["model"], str(path))
    return model.eval()


def load_weights(model: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Load a checkpoint's weights into ``model`` (clear error on mismatch)."""
    ckpt = ckpt_mod.load_checkpoint(path)
    ckpt_mod.load_model_state(model, ckpt["model"], str(path))
    return model


def checkpoint_meta(path: str | os.PathLike) -> dict[str, Any]:
    """A checkpoint's metadata: model name/kwargs, classes, input size, mean/std, dataset."""
    return dict(ckpt_mod.load_checkpoint(path)["meta"])


def _build_teacher(config: TrainConfig, device: torch.device) -> nn.Module | None:
    spec = config.teacher
    if spec is None:
        return None
    if isinstance(spec, nn.Module):
        teacher = spec
    elif Path(str(spec)).is_file():
        teacher = load_model(spec)
    else:
        from .. import models

        teacher = models.create(spec, **config.model_kwargs.get("teacher_kwargs", {}))
        if config.teacher_checkpoint:
            load_weights(teacher, config.teacher_checkpoint)
    return teacher.to(device)


def _decay_groups(model: nn.Module, params: list[nn.Parameter], weight_decay: float) -> list[dict]:
    """Two param groups: weight decay on tensors with ndim >= 2, none on biases / BN."""
    decay = [p for p in params if p.ndim >= 2]
    plain = [p for p in params if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def build_optimizer(model: nn.Module, name: str, config: TrainConfig):
    """The optimizer for ``name`` (see :func:`optimizer_groups` for its groups).

    ``"bop+adam"`` / ``"bop+sgd"``: :class:`bnnkit.optim.Bop` on the binary weights
    (:func:`bnnkit.optim.split_parameters`) and Adam / SGD on the rest, stepped together
    by :class:`bnnkit.optim.CaseOptimizer`; ``"adam"`` / ``"sgd"``: one optimizer on all
    parameters (binary ones as latent real weights).
    """
    from .. import optim as bopt

    use_bop = name.startswith("bop+")
    binary, rest = bopt.split_parameters(model) if use_bop else ([], list(model.parameters()))
    if use_bop and not binary:
        raise ValueError(f"optimizer {name!r}: the model has no binary weights (no layer with "
                         "a 1-bit kernel_quantizer); use optimizer='adam' or 'sgd'")
    real = None
    if rest:
        groups = _decay_groups(model, rest, config.weight_decay)
        # Fused Adam (one kernel for all tensors) where torch has it: 0.19 against 0.53 ms
        # per step for the per-tensor loop (bench_train.py's model, one CPU core).
        fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in rest)
        real = torch.optim.Adam(groups, lr=config.lr, fused=fused or None) \
            if name.endswith("adam") else \
            torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum)
    if not use_bop:
        return real
    bop = bopt.Bop(binary, gamma=config.bop_gamma, threshold=config.bop_threshold)
    return bopt.CaseOptimizer(*([bop] + ([real] if real is not None else [])))


def optimizer_groups(optimizer) -> tuple[list[dict], list[dict]]:
    """``(real_groups, bop_groups)``: the live param groups of Adam/SGD and of Bop.

    Read them again after ``load_state_dict``, which replaces the group dicts.
    """
    from .. import optim as bopt

    parts = optimizer.optimizers if isinstance(optimizer, bopt.CaseOptimizer) else [optimizer]
    real = [g for o in parts if not isinstance(o, bopt.Bop) for g in o.param_groups]
    return real, [g for o in parts if isinstance(o, bopt.Bop) for g in o.param_groups]


def _lr_factor(config: TrainConfig, steps_per_epoch: int, phase_epochs: int):
    warmup = round(config.warmup_epochs * steps_per_epoch)
    total = phase_epochs * steps_per_epoch
    if config.schedule == "cosine":
        floor = config.min_lr / config.lr if config.lr > 0 else 0.0
        return schedules.warmup_cosine(total, warmup, floor)
    if config.schedule == "step":
        return schedules.warmup_step(config.step_every * steps_per_epoch, config.step_factor, warmup)
    return schedules.constant(warmup)


def build_schedules(config, real_groups, bop_groups, steps_per_epoch, phase_epochs):
    """GroupSchedulers for ``lr`` and Bop's ``gamma`` / ``threshold`` (phase-local steps)."""
    out = {"lr": schedules.GroupScheduler(real_groups, "lr",
                                          _lr_factor(config, steps_per_epoch, phase_epochs))}
    every = config.bop_decay_every * steps_per_epoch
    for key in ("gamma", "threshold"):
        decays = config.bop_decay_every > 0 and config.bop_decay_applies_to in (key, "both")
        fn = schedules.warmup_step(every, config.bop_decay_factor) if decays else schedules.constant()
        out[key] = schedules.GroupScheduler(bop_groups, key, fn)
    return out


def _train_loader(config, dataset, info: dist_mod.DistInfo, device) -> bdata.BatchLoader:
    aug = None
    if config.augment:
        base = bdata.default_augment(dataset.name, dataset.image_shape[1])
        aug = bdata.Augment(base.crop_padding if config.crop_padding is None else config.crop_padding,
                            base.hflip if config.hflip is None else config.hflip)
    sampler = None
    if info.enabled:
        sampler = torch.utils.data.DistributedSampler(
            dataset, num_replicas=info.world_size, rank=info.rank, shuffle=True, seed=config.seed)
    per_rank = math.ceil(len(dataset) / info.world_size)
    return bdata.BatchLoader(dataset, config.batch_size, shuffle=True, augment=aug,
                             seed=config.seed, drop_last=per_rank > config.batch_size,
                             sampler=sampler, rank=info.rank, device=device,
                             channels_last=config.channels_last)


@torch.no_grad()
def evaluate(model: nn.Module, dataset: bdata.ArrayDataset, *, batch_size: int = 1000,
             device="cpu", channels_last: bool = False, bf16: bool = False,
             info: dist_mod.DistInfo | None = None) -> dict[str, float]:
    """Mean cross-entropy and accuracy of ``model`` on ``dataset`` (eval mode).

    Under DDP each rank evaluates every ``world_size``-th sample and the sums are reduced,
    so every sample counts exactly once.
    """
    info = info or dist_mod.DistInfo()
    device = torch.device(device)
    shard = range(info.rank, len(dataset), info.world_size) if info.enabled else None
    loader = bdata.BatchLoader(dataset, batch_size, sampler=shard, device=device,
                               channels_last=channels_last)
    was_training = model.training
    model.eval()
    loss_sum = correct = count = 0.0
    for x, y in loader:
        with _autocast(device, bf16):
            logits = model(x).float()
        loss_sum += float(nn.functional.cross_entropy(logits, y, reduction="sum"))
        correct += float((logits.argmax(1) == y).sum())
        count += len(y)
    model.train(was_training)
    loss_sum, correct, count = dist_mod.all_sum([loss_sum, correct, count], info, device)
    return {"loss": loss_sum / max(count, 1), "acc": correct / max(count, 1), "count": int(count)}


def _autocast(device: torch.device, enabled: bool):
    return torch.autocast(device.type, dtype=torch.bfloat16) if enabled else nullcontext()


# --------------------------------------------------------------------------- the run
class _Run:
    """The state of one training run; :meth:`fit` runs it (see the module docstring)."""

    def __init__(self, config: TrainConfig):
        self.cfg = config
        self.device = resolve_device(config.device)
        self.info = dist_mod.init(self.device)
        self.main = self.info.is_main
        self.out = Path(config.out_dir) if config.out_dir else None
        self.bf16 = use_bf16(config.bf16, self.device)
        if config.num_threads:
            torch.set_num_threads(config.num_threads)
        if config.tune_malloc and self.device.type == "cpu":
            perf.tune_malloc()
        seed_everything(config.seed)
        self._load_data()
        self.model = build_model(config, self.train_ds).to(self.device)
        if config.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.loss_fn = ClassificationLoss(config.label_smoothing, _build_teacher(config, self.device),
                                          config.distill_alpha, config.distill_temperature)
        self.loader = _train_loader(config, self.train_ds, self.info, self.device)
        self.spe = len(self.loader)
        self.phase1_epochs = max(1, round(config.epochs * config.two_step_fraction)) \
            if config.two_step else 0
        if config.two_step and self.phase1_epochs >= config.epochs:
            raise ValueError("two_step needs epochs >= 2 (one epoch per step at least)")
        self.epoch = self.batch = self.step = 0
        self.history: list[dict[str, Any]] = []
        self.accum = self._zero_accum()
        self.best_acc, self.stripped = -1.0, []
        self.stopped_eval: dict[str, float] | None = None
        self.phase = 0

    def log(self, msg: str) -> None:
        """One line on rank 0 (epoch results, resume and stop notes); ``progress=False`` turns
        off the per-step bar and lines only."""
        if self.main:
            print(msg, flush=True)

    def _load_data(self) -> None:
        cfg = self.cfg
        self.train_ds = bdata.load_dataset(cfg.dataset, "train", data_dir=cfg.data_dir)
        self.test_ds = bdata.load_dataset(cfg.dataset, "test", data_dir=cfg.data_dir)
        if cfg.train_subset:
            self.train_ds = self.train_ds.subset(cfg.train_subset)
        if cfg.test_subset:
            self.test_ds = self.test_ds.subset(cfg.test_subset)
        self.test_ds.mean, self.test_ds.std = self.train_ds.mean, self.train_ds.std

    @staticmethod
    def _zero_accum() -> dict[str, float]:
        return {"loss": 0.0, "correct": 0.0, "count": 0.0, "flips": 0.0, "flip_updates": 0.0,
                "seconds": 0.0}

    # -- phases ------------------------------------------------------------------
    def _phase_of(self, epoch: int) -> int:
        return 1 if epoch < self.phase1_epochs else 2

    def _enter_phase(self, phase: int) -> None:
        """Set quantizers and (re)build optimizer, schedules, flip-ratio for ``phase``."""
        from .. import optim as bopt

        twostep.restore_kernel_quantizers(self.stripped)
        self.stripped = twostep.strip_kernel_quantizers(self.model) if phase == 1 else []
        name = self.cfg.optimizer.split("+")[-1] if phase == 1 else self.cfg.optimizer
        self.optimizer = build_optimizer(self.model, name, self.cfg)
        self.phase_start = self.phase1_epochs * self.spe if phase == 2 else 0
        self._make_schedules(phase)
        binary = bopt.split_parameters(self.model)[0]
        self.flip = bopt.FlipRatio(binary) if binary else None
        if self.flip is not None:
            self.flip.update()  # records the current signs
        self.phase = phase
        if self.cfg.two_step:
            self.log(f"phase {phase}: {'float' if phase == 1 else 'binary'} weights, "
                     f"optimizer {name}")

    def _make_schedules(self, phase: int) -> None:
        epochs = self.phase1_epochs if phase == 1 else self.cfg.epochs - self.phase1_epochs
        real, bop = optimizer_groups(self.optimizer)
        self.scheds = build_schedules(self.cfg, real, bop, self.spe, epochs)

    def _wrap(self) -> None:
        fwd = self.model
        if self.info.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            fwd = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        self.forward = torch.compile(fwd) if self.cfg.compile else fwd

    # -- checkpoints -------------------------------------------------------------
    def _meta(self) -> dict[str, Any]:
        c, h, _ = self.train_ds.image_shape
        name = self.cfg.model if isinstance(self.cfg.model, str) else None
        return {"model_name": name, "model_kwargs": dict(self.cfg.model_kwargs),
                "num_classes": self.train_ds.num_classes, "input_size": h, "in_channels": c,
                "classes": list(self.train_ds.classes), "mean": list(self.train_ds.mean),
                "std": list(self.train_ds.std), "dataset": str(self.cfg.dataset)}

    def _checkpoint(self) -> dict[str, Any]:
        saved, self.stripped = self.stripped, []
        twostep.restore_kernel_quantizers(saved)  # state_dict of the full model
        state = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
        self.stripped = twostep.strip_kernel_quantizers(self.model) if saved else []
        return {"format": ckpt_mod.FORMAT, "version": ckpt_mod.VERSION, "model": state,
                "optimizer": self.optimizer.state_dict(),
                "schedules": {k: s.state_dict() for k, s in self.scheds.items()},
                "rng": ckpt_mod.rng_state(), "epoch": self.epoch, "batch": self.batch,
                "global_step": self.step, "phase": self.phase, "accum": dict(self.accum),
                "history": self.history, "best_acc": self.best_acc,
                "config": self.cfg.to_dict(), "meta": self._meta()}

    def save(self, name: str = LAST) -> Path | None:
        if not (self.main and self.out):
            return None
        return ckpt_mod.save_atomic(self._checkpoint(), self.out / name)

    def restore(self) -> bool:
        path = self.out / LAST if self.out else None
        if not (self.cfg.resume and path and path.is_file()):
            if self.cfg.resume:
                self.log(f"resume: no checkpoint at {path}; starting from scratch")
            return False
        ck = ckpt_mod.load_checkpoint(path, self.device)
        self._enter_phase(ck["phase"])
        ckpt_mod.load_model_state(self.model, ck["model"], str(path))
        self.optimizer.load_state_dict(ck["optimizer"])
        self._make_schedules(self.phase)  # load_state_dict replaced the group dicts
        for key, sched in self.scheds.items():
            sched.load_state_dict(ck["schedules"][key])
        ckpt_mod.set_rng_state(ck["rng"])
        self.epoch, self.batch, self.step = ck["epoch"], ck["batch"], ck["global_step"]
        self.accum, self.history, self.best_acc = dict(ck["accum"]), list(ck["history"]), ck["best_acc"]
        if self.flip is not None:
            self.flip.reset()
            self.flip.update()
        self.log(f"resumed from {path} at epoch {self.epoch + 1}, batch {self.batch}, step {self.step}")
        return True

    # -- training ----------------------------------------------------------------
    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        from ..nn import apply_weight_clips_

        for sched in self.scheds.values():
            sched.apply(self.step - self.phase_start)
        with _autocast(self.device, self.bf16):
            logits = self.forward(x)
            loss = self.loss_fn(logits, y, x)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        apply_weight_clips_(self.model)
        ratio = self.flip.update() if self.flip is not None else None
        a, n = self.accum, len(y)
        a["loss"] += float(loss.detach()) * n
        a["correct"] += float((logits.detach().argmax(1) == y).sum())
        a["count"] += n
        if ratio is not None:
            a["flips"], a["flip_updates"] = a["flips"] + ratio, a["flip_updates"] + 1
        self.step += 1

    def _live(self) -> dict[str, float]:
        a = self.accum
        live = {"loss": a["loss"] / max(a["count"], 1), "acc": a["correct"] / max(a["count"], 1)}
        if a["flip_updates"]:
            live["flips"] = a["flips"] / a["flip_updates"]
        return live

    def run_epoch(self) -> bool:
        """Train the rest of epoch ``self.epoch``; False when ``max_steps`` stopped it early."""
        self.loader.set_epoch(self.epoch)
        self.model.train()
        bar = Progress(self.spe, f"epoch {self.epoch + 1}/{self.cfg.epochs}", enabled=self.main
                       and self.cfg.progress, log_every=self.cfg.log_every, initial=self.batch)
        start = time.perf_counter()
        for x, y in self.loader.iterate(self.batch):
            self.train_step(x, y)
            self.batch += 1
            bar.update(self._live())
            if self._should_stop() and self.batch < self.spe:
                self.accum["seconds"] += time.perf_counter() - start
                bar.close(self._live())
                return False
            if self.cfg.save_every_steps and self.step % self.cfg.save_every_steps == 0:
                self.save()
        self.accum["seconds"] += time.perf_counter() - start
        bar.close(self._live())
        return True

    def _should_stop(self) -> bool:
        return self.cfg.max_steps is not None and self.step >= self.cfg.max_steps

    def end_epoch(self) -> None:
        dist_mod.broadcast_buffers(self.model, self.info)
        loss, correct, count = dist_mod.all_sum(
            [self.accum["loss"], self.accum["correct"], self.accum["count"]], self.info, self.device)
        test = evaluate(self.model, self.test_ds, batch_size=self.cfg.eval_batch_size,
                        device=self.device, channels_last=self.cfg.channels_last,
                        bf16=self.bf16, info=self.info)
        a = self.accum
        row = {"epoch": self.epoch + 1, "phase": self.phase, "step": self.step,
               "lr": self.scheds["lr"].groups[0]["lr"] if self.scheds["lr"].groups else 0.0,
               "train_loss": loss / max(count, 1), "train_acc": correct / max(count, 1),
               "test_loss": test["loss"], "test_acc": test["acc"],
               "flip_ratio": a["flips"] / a["flip_updates"] if a["flip_updates"] else 0.0,
               "seconds": a["seconds"],
               "images_per_s": count / a["seconds"] if a["seconds"] else 0.0}
        self.history.append(row)
        self.log(f"epoch {row['epoch']}: train loss {row['train_loss']:.4f} acc "
                 f"{100 * row['train_acc']:.2f}% | test loss {row['test_loss']:.4f} acc "
                 f"{100 * row['test_acc']:.2f}% | {row['images_per_s']:.0f} img/s")
        self.epoch, self.batch, self.accum = self.epoch + 1, 0, self._zero_accum()
        if test["acc"] > self.best_acc:
            self.best_acc = test["acc"]
            self.save(BEST)
        self.save()

    def evaluate_stopped(self) -> None:
        """A run stopped by ``max_steps`` inside an epoch: evaluate the model as it is (so
        the run reports a test accuracy and writes ``best.pt`` like any other), without a
        row in the per-epoch history."""
        dist_mod.broadcast_buffers(self.model, self.info)
        test = evaluate(self.model, self.test_ds, batch_size=self.cfg.eval_batch_size,
                        device=self.device, channels_last=self.cfg.channels_last,
                        bf16=self.bf16, info=self.info)
        self.stopped_eval = test
        self.log(f"stopped by max_steps at step {self.step} (epoch {self.epoch + 1}, batch "
                 f"{self.batch}/{self.spe}; max_steps counts every step of the run, resumed "
                 f"ones included): test loss {test['loss']:.4f} acc {100 * test['acc']:.2f}%")
        if test["acc"] > self.best_acc:
            self.best_acc = test["acc"]
            self.save(BEST)

    def fit(self, writer: MetricsWriter) -> bool:
        """Run epochs until done or stopped; returns True when stopped early by max_steps."""
        if not self.restore():
            self._enter_phase(self._phase_of(0))
        self._wrap()
        while self.epoch < self.cfg.epochs:
            if self._phase_of(self.epoch) != self.phase:
                self._enter_phase(self._phase_of(self.epoch))
            if not self.run_epoch():
                self.evaluate_stopped()
                self.save()
                return True
            self.end_epoch()
            if self.main:
                writer.write(self.history)
            if self._should_stop():
                return self.epoch < self.cfg.epochs
        return False

    def finish(self) -> None:
        twostep.restore_kernel_quantizers(self.stripped)
        self.stripped = []
        dist_mod.broadcast_buffers(self.model, self.info)

    def release(self) -> None:
        """Drop the DDP wrapper (its reducer holds the process group and autograd hooks).

        A ``_Run`` sits in reference cycles, so without this the wrapper lives until the
        cyclic collector runs, possibly only at interpreter shutdown, after the process
        group is gone: gloo then aborted the process now and then ("terminate called
        without an active exception", seen in CI). Destroy it while everything is alive.
        """
        self.forward = self.model
        if self.info.enabled:
            gc.collect()


def train(config: TrainConfig | dict | None = None, **overrides) -> TrainResult:
    """Train per ``config`` (a :class:`TrainConfig`, a dict of its fields, or keywords).

    Works the same when launched by ``torchrun`` (DDP over the ranks; rank 0 writes). The
    returned model is in eval mode (ready for inference or ``bnnkit.convert``); its
    ``test_acc`` is that of the returned model, also when ``max_steps`` stopped the run
    inside an epoch. Files in ``out_dir``: ``last.pt`` (resumable), ``best.pt`` (best test
    accuracy, evaluated at every epoch end and at a ``max_steps`` stop),
    ``metrics.csv``/``metrics.json``, ``config.json``, ``curves.png`` (with matplotlib).
    """
    cfg = _as_config(config, overrides)
    run = _Run(cfg)
    writer = MetricsWriter(run.out if run.main else None, plots=cfg.plots,
                           tensorboard=cfg.tensorboard, log=run.log)
    try:
        if run.main and run.out:
            import json

            (run.out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=1, default=str))
            for name in (LAST, BEST):  # a run killed while saving leaves a temp file
                ckpt_mod.remove_partial_writes(run.out / name)
        start = time.perf_counter()
        stopped = run.fit(writer)
        run.finish()
        elapsed = time.perf_counter() - start
    finally:
        writer.close()
        run.release()
        dist_mod.cleanup(run.info)
    last = run.history[-1] if run.history else {}
    final = run.stopped_eval or {"acc": last.get("test_acc"), "loss": last.get("test_loss")}
    run.model.eval()
    return TrainResult(model=run.model, history=run.history, test_acc=final["acc"],
                       test_loss=final["loss"], global_step=run.step,
                       epochs_completed=run.epoch, stopped_early=stopped,
                       out_dir=run.out, checkpoint=run.out / LAST if run.out else None,
                       train_seconds=elapsed, config=cfg.to_dict())


def main_worker(config: TrainConfig | dict | None = None, **overrides) -> TrainResult:
    """Entry point for the CLI and for ``torchrun`` workers (same as :func:`train`)."""
    return train(config, **overrides)


def _as_config(config, overrides) -> TrainConfig:
    if config is None:
        return TrainConfig(**overrides)
    if isinstance(config, dict):
        return TrainConfig.from_dict({**config, **overrides})
    if overrides:
        import dataclasses

        return dataclasses.replace(config, **overrides)
    return config
