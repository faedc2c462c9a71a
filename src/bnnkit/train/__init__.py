"""Training binarized networks: ``train(TrainConfig(...)) -> TrainResult``.

* :mod:`~bnnkit.train.config`: :class:`TrainConfig` (every option, documented there);
* :mod:`~bnnkit.train.trainer`: the loop, :func:`evaluate`, :func:`load_model`;
* :mod:`~bnnkit.train.checkpoint`: atomic, ``weights_only`` checkpoints with RNG states;
* :mod:`~bnnkit.train.schedules`: warm-up + cosine / step schedules for lr, Bop gamma/threshold;
* :mod:`~bnnkit.train.distill`: label-smoothed CE and knowledge distillation;
* :mod:`~bnnkit.train.twostep`: ReActNet's two-step schedule;
* :mod:`~bnnkit.train.distributed`: DDP under ``torchrun``;
* :mod:`~bnnkit.train.progress`: progress bar / lines, metrics CSV/JSON, PNG curves.
"""

from .checkpoint import CheckpointError, load_checkpoint, save_atomic
from .config import OPTIMIZERS, SCHEDULES, TrainConfig
from .distill import ClassificationLoss, kd_loss
from .trainer import (
    TrainResult,
    bf16_supported,
    build_model,
    build_optimizer,
    checkpoint_meta,
    evaluate,
    load_model,
    load_weights,
    main_worker,
    optimizer_groups,
    resolve_device,
    train,
)

__all__ = [
    "CheckpointError", "ClassificationLoss", "OPTIMIZERS", "SCHEDULES", "TrainConfig",
    "TrainResult", "bf16_supported", "build_model", "build_optimizer", "checkpoint_meta",
    "evaluate", "kd_loss", "load_checkpoint", "load_model", "load_weights", "main_worker",
    "optimizer_groups", "resolve_device", "save_atomic", "train",
]
