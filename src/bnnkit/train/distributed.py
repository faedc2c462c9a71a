"""Multi-process data parallelism with PyTorch's own engine (DDP, launched by torchrun).

``torchrun --nproc_per_node=N -m bnnkit train ...`` sets ``WORLD_SIZE``, ``RANK``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; :func:`init` then joins the process
group (``gloo`` on CPU, ``nccl`` on CUDA, one GPU per local rank). Each rank sees a
``DistributedSampler`` shard of the data with ``batch_size`` samples per step, so the
effective batch is ``N * batch_size``; gradients are averaged by DDP, so every rank holds
the same parameters after every step. Only rank 0 writes files and prints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    world_size: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def from_env() -> DistInfo:
    """The launcher's ``WORLD_SIZE``/``RANK``/``LOCAL_RANK`` (1/0/0 when not launched)."""
    env = os.environ
    return DistInfo(int(env.get("WORLD_SIZE", 1)), int(env.get("RANK", 0)),
                    int(env.get("LOCAL_RANK", 0)))


def init(device: torch.device) -> DistInfo:
    """Join the process group when launched with WORLD_SIZE > 1 (idempotent)."""
    info = from_env()
    if info.enabled and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(info.local_rank)
        dist.init_process_group(backend=backend)
    return info


def cleanup(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def all_sum(values: list[float], info: DistInfo, device: torch.device) -> list[float]:
    """Sum each value over the ranks (identity when not distributed)."""
    if not info.enabled:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def broadcast_buffers(module: torch.nn.Module, info: DistInfo) -> None:
    """Copy rank 0's buffers (batch-norm statistics) to every rank."""
    if info.enabled:
        for buf in module.buffers():
            dist.broadcast(buf, src=0)
