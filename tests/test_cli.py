"""The `bnnkit` command: exit codes, one-line errors, machine-readable output, the demo."""

import json
import subprocess
import sys

import pytest

from bnnkit import cli


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "bnnkit", *args], capture_output=True, text=True)


def test_summary_json_has_the_totals(capsys):
    assert cli.main(["summary", "quicknet_tiny", "--input-size", "28", "--num-classes", "10",
                     "--in-channels", "1", "--json"]) == 0
    profile = json.loads(capsys.readouterr().out)
    assert profile["name"] == "quicknet_tiny"
    assert profile["input_shape"] == [1, 1, 28, 28]
    totals = profile["totals"]
    assert totals["macs_by_precision"]["1"] > 0
    assert totals["params"] == totals["trainable_params"] + totals["non_trainable_params"]


def test_unknown_model_is_one_line_on_stderr_and_exit_2():
    result = run_cli("summary", "quiknet")
    assert result.returncode == cli.EXIT_USAGE
    assert result.stderr.startswith("bnnkit summary: error: unknown model 'quiknet'")
    assert "did you mean quicknet" in result.stderr
    assert "Traceback" not in result.stderr


def test_debug_shows_the_traceback():
    result = run_cli("--debug", "summary", "quiknet")
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_missing_checkpoint_is_a_user_error():
    result = run_cli("eval", "/no/such/checkpoint.pt")
    assert result.returncode == cli.EXIT_USAGE
    assert "does not exist" in result.stderr


def test_train_flags_come_from_the_config():
    parser = cli.build_parser()
    args = parser.parse_args(["train", "--bop-gamma", "0.001", "--no-augment", "--epochs", "3"])
    assert (args.bop_gamma, args.augment, args.epochs) == (0.001, False, 3)


def test_train_user_mistakes_are_one_line_errors(tmp_path):
    result = run_cli("train", "--dataset", str(tmp_path / "no-such-data"), "--epochs", "1")
    assert result.returncode == cli.EXIT_USAGE and "Traceback" not in result.stderr
    assert result.stderr.startswith("bnnkit train: error: unknown data set")
    result = run_cli("train", "--resume")
    assert result.returncode == cli.EXIT_USAGE and "resume=True needs out_dir" in result.stderr
    result = run_cli("train", "--optimizer", "lamb")
    assert result.returncode == cli.EXIT_USAGE and "invalid choice: 'lamb'" in result.stderr


def test_train_stopped_by_max_steps_reports_it(tmp_path, capsys):
    code = cli.main(["train", "--model", "quicknet_tiny", "--dataset", "synthetic",
                     "--max-steps", "2", "--batch-size", "32", "--no-progress", "--no-plots",
                     "--out-dir", str(tmp_path), "--hflip", "off"])
    assert code == 0
    out = capsys.readouterr().out
    assert ("stopped at step 2 (--max-steps counts every step of the run, resumed ones included), "
            f"0 whole epochs; checkpoint {tmp_path}") in out
    # No epoch finished, yet the stopped model is evaluated and written as best.pt, so the
    # README's `bnnkit eval OUT_DIR/best.pt` works after a short run too.
    assert "test accuracy" in out and "after step 2" in out
    assert (tmp_path / "best.pt").is_file() and (tmp_path / "last.pt").is_file()
    assert json.loads((tmp_path / "config.json").read_text())["hflip"] is False


@pytest.mark.parametrize("load,threads", [(0.1, 2), (0.6, 1), (1.2, 1), (5.0, 1)])
def test_demo_trains_with_the_cores_that_are_free(monkeypatch, load, threads):
    import os

    from bnnkit import demo

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (load, 0.0, 0.0))
    assert demo.training_threads() == threads


@pytest.mark.slow
def test_quick_demo_writes_a_report(tmp_path):
    from bnnkit import data

    try:
        data.load_dataset("fashion_mnist", "test")
    except data.DatasetNotFoundError as e:
        pytest.fail(f"the demo's data set must be installed by `make`: {e}")
    assert cli.main(["demo", "--quick", "--out", str(tmp_path)]) == 0
    report = (tmp_path / "report.md").read_text()
    assert "Test accuracy (PyTorch eval)" in report
    history = json.loads((tmp_path / "history.json").read_text())
    assert len(history) == 1 and 0.0 <= history[0]["test_acc"] <= 1.0


def test_bench_works_without_torch(tmp_path):
    """Deployment never needs torch: `bnnkit bench` runs with torch made unimportable."""
    import torch

    from bnnkit import models
    from bnnkit.converter import convert

    model = models.create("quicknet_tiny", num_classes=10, input_size=28, in_channels=1).eval()
    path = convert(model, torch.zeros(1, 1, 28, 28), output=tmp_path / "m.bnn")
    code = ("import sys; sys.modules['torch'] = None; from bnnkit import cli; "
            f"raise SystemExit(cli.main(['bench', {str(path)!r}, '--runs', '3', '--profile']))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "1 thread(s): median" in result.stdout and "bconv2d" in result.stdout
    train = subprocess.run([sys.executable, "-c", code.replace(
        f"['bench', {str(path)!r}, '--runs', '3', '--profile']", "['train']")], capture_output=True, text=True)
    assert train.returncode == cli.EXIT_USAGE and "needs PyTorch" in train.stderr


def test_bench_reports_spread_and_groups_the_profile(tmp_path, capsys):
    import re

    import torch

    from bnnkit import models
    from bnnkit.converter import convert

    model = models.create("quicknet_tiny", num_classes=10, input_size=28, in_channels=1).eval()
    path = convert(model, torch.zeros(1, 1, 28, 28), output=tmp_path / "m.bnn")
    assert cli.main(["bench", str(path), "--runs", "5", "--threads", "1", "--profile", "--group"]) == 0
    out = capsys.readouterr().out
    m = re.search(r"1 thread\(s\): median ([0-9.]+) ms \(p10 ([0-9.]+), p90 ([0-9.]+)\) over 5 runs", out)
    assert m and float(m[2]) <= float(m[1]) <= float(m[3])
    assert "profile of the last run, 1 thread(s)" in out
    rows = {line.split()[0]: int(line.split()[1]) for line in out.splitlines()
            if re.match(r"^[a-z_0-9]+ +[0-9]+ +[0-9.]+ +[0-9.]+%$", line)}
    import bnnkit.format as F

    ops = F.read(path.read_bytes()).nodes
    assert rows and rows == {op: sum(n.op == op for n in ops) for op in rows}
    assert sum(rows.values()) == len(ops)
    assert cli.main(["bench", str(path), "--runs", "0"]) == cli.EXIT_USAGE


def test_convert_f16_reports_what_the_smaller_storage_changes(capsys, tmp_path):
    out = tmp_path / "q16.bnn"
    assert cli.main(["convert", "quicknet_tiny", "--input-size", "28", "--num-classes", "10",
                     "--in-channels", "1", "-o", str(out), "--float-weights", "f16"]) == 0
    text = capsys.readouterr().out
    assert f"wrote {out}" in text and "f16 float weights vs f32, 16 random inputs" in text
    assert "top-1 unchanged for" in text


def test_storage_change_is_zero_for_the_same_file_and_not_for_f16():
    import torch

    from bnnkit import models
    from bnnkit.converter import convert, storage_change

    torch.manual_seed(0)
    model = models.create("quicknet_tiny", num_classes=10, input_size=28, in_channels=1).eval()
    x = torch.zeros(2, 1, 28, 28)
    f32, f16 = convert(model, x), convert(model, x, float_weights="f16")
    same = storage_change(f32, f32, x.shape, samples=3)
    assert same == {"max_abs_diff": 0.0, "max_rel_diff": 0.0, "top1_agreement": 1.0, "samples": 3}
    half = storage_change(f32, f16, x.shape, samples=3)
    assert half["max_abs_diff"] > 0 and 0.0 <= half["top1_agreement"] <= 1.0
    with pytest.raises(ValueError, match="samples must be >= 1"):
        storage_change(f32, f16, x.shape, samples=0)
