"""Data-parallel training with 2 processes (torchrun + gloo) on a tiny synthetic run."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

SCRIPT = Path(__file__).with_name("ddp_train_script.py")


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(),
                    reason="torch built without gloo")
def test_two_process_ddp_run(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(SCRIPT), str(tmp_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    # 512 samples / 2 ranks / 32 per step = 8 steps per epoch on each rank.
    assert r0["steps"] == r1["steps"] == 16
    assert r0["ddp_left"] == r1["ddp_left"] == 0
    assert r0["test_acc"] == r1["test_acc"]  # evaluated on shards, reduced over ranks
    for key, value in r0["state"].items():
        assert torch.equal(value, r1["state"][key]), key
    history = json.loads((tmp_path / "metrics.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2] and history[-1]["train_acc"] > 0.5
    assert (tmp_path / "last.pt").is_file() and not list(tmp_path.glob(".*.tmp"))
    ck = torch.load(tmp_path / "last.pt", weights_only=True)
    for key, value in ck["model"].items():
        assert torch.equal(value, r0["state"][key]), key
