"""The trainer's configuration: one dataclass of plain fields, saved into every checkpoint."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from torch import nn

OPTIMIZERS = ("bop+adam", "bop+sgd", "adam", "sgd")
SCHEDULES = ("cosine", "step", "constant")
BF16_MODES = ("off", "on", "auto")


@dataclass
class TrainConfig:
    """Everything :func:`bnnkit.train.train` needs. Epoch-based fields count whole epochs.

    Model and data
        ``model``: a zoo name (``bnnkit.models.list_models()``) or an ``nn.Module``;
        ``model_kwargs`` go to ``bnnkit.models.create``. ``dataset``: a name or a path
        (``bnnkit.data.load_dataset``); ``data_dir`` where named sets are searched;
        ``train_subset``/``test_subset``: use only the first n samples.
        ``augment``: random crop (``crop_padding`` pixels, default ~size/8) and horizontal
        flip (``hflip``, default on except for digits).
    Optimisation
        ``optimizer``: ``"bop+adam"`` (Bop on binary weights, Adam on the rest; Helwegen et
        al. 2019), ``"bop+sgd"``, ``"adam"`` or ``"sgd"`` (latent weights). ``lr`` for
        Adam/SGD (``momentum`` for SGD); ``schedule``: ``"cosine"`` (to ``min_lr``),
        ``"step"`` (x ``step_factor`` every ``step_every`` epochs) or ``"constant"``,
        after ``warmup_epochs`` of linear warm-up. ``weight_decay`` applies to real-valued
        weights with 2 or more dimensions (not biases, batch-norm, or Bop's binary weights).
        ``bop_gamma``/``bop_threshold``: Bop's adaptivity rate and flip threshold, each
        multiplied by ``bop_decay_factor`` every ``bop_decay_every`` epochs (0 = never;
        the Bop paper decays gamma x0.1 every 100 epochs: ``bop_decay_applies_to``).
        ``label_smoothing`` for the cross-entropy.
    Recipes
        ``teacher``: an ``nn.Module``, a checkpoint path written by this trainer, or a zoo
        name (with ``teacher_checkpoint``); the loss becomes
        ``alpha * T^2 * KL(p_teacher^T || p_student^T) + (1 - alpha) * CE`` with
        ``distill_alpha``, ``distill_temperature`` (Hinton et al. 2015).
        ``two_step``: ReActNet's schedule (Liu et al. 2020): the first ``two_step_fraction``
        of the epochs train with binary activations and real-valued weights, the rest with
        binary weights too (see ``bnnkit.train.twostep``).
    Speed and runtime
        ``device`` (``"auto"``: CUDA if present), ``channels_last``, ``bf16``
        (``"off"``/``"on"``/``"auto"`` = on when the device has native bf16), ``compile``
        (``torch.compile`` the model), ``num_threads`` (torch intra-op threads),
        ``tune_malloc`` (CPU runs: keep freed memory in glibc's heap instead of returning it
        to the system after every step; see ``bnnkit.train.perf``).
    Outputs
        ``out_dir`` (None: write nothing), ``resume`` (continue from
        ``out_dir/last.pt``), ``save_every_steps`` (0: save at epoch ends only),
        ``max_steps`` (stop after this many optimizer steps, saving a checkpoint),
        ``progress`` (bar or periodic line), ``log_every`` (steps between plain lines),
        ``plots`` (PNG curves when matplotlib is installed), ``tensorboard``.
    """

    model: Any = "quicknet_tiny"  # sized for the default data set's 28x28 images
    dataset: str = "fashion_mnist"
    epochs: int = 10
    batch_size: int = 128
    eval_batch_size: int = 1000
    model_kwargs: dict = field(default_factory=dict)
    data_dir: str | None = None
    train_subset: int | None = None
    test_subset: int | None = None
    augment: bool = True
    crop_padding: int | None = None
    hflip: bool | None = None
    optimizer: str = "bop+adam"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "cosine"
    warmup_epochs: float = 0.0
    min_lr: float = 0.0
    step_every: int = 30
    step_factor: float = 0.1
    bop_gamma: float = 1e-4
    bop_threshold: float = 1e-8
    bop_decay_every: int = 0
    bop_decay_factor: float = 0.1
    bop_decay_applies_to: str = "gamma"
    label_smoothing: float = 0.0
    teacher: Any = None
    teacher_checkpoint: str | None = None
    distill_alpha: float = 0.9
    distill_temperature: float = 4.0
    two_step: bool = False
    two_step_fraction: float = 0.5
    seed: int = 0
    device: str = "auto"
    channels_last: bool = False
    bf16: str = "off"
    compile: bool = False
    num_threads: int | None = None
    tune_malloc: bool = True
    out_dir: str | None = None
    resume: bool = False
    save_every_steps: int = 0
    max_steps: int | None = None
    progress: bool = True
    log_every: int = 50
    plots: bool = True
    tensorboard: bool = False

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad field."""
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("schedule", self.schedule, SCHEDULES)
        _choice("bf16", self.bf16, BF16_MODES)
        _choice("bop_decay_applies_to", self.bop_decay_applies_to, ("gamma", "threshold", "both"))
        for name in ("epochs", "batch_size", "eval_batch_size", "log_every"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if not 0.0 <= self.distill_alpha <= 1.0 or self.distill_temperature <= 0:
            raise ValueError("distill_alpha must be in [0, 1] and distill_temperature > 0")
        if not 0.0 < self.two_step_fraction < 1.0:
            raise ValueError(f"two_step_fraction must be in (0, 1), got {self.two_step_fraction}")
        if self.resume and not self.out_dir:
            raise ValueError("resume=True needs out_dir (the checkpoint is out_dir/last.pt)")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1 or None, got {self.max_steps}")
        if not isinstance(self.model, (str, nn.Module)):
            raise TypeError(f"model must be a zoo name or an nn.Module, got {type(self.model)}")

    def to_dict(self) -> dict[str, Any]:
        """Plain values only (modules become their class name), for checkpoints and JSON."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = f"<{type(value).__name__}>" if isinstance(value, nn.Module) else value
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        """Inverse of :meth:`to_dict` for plain fields; unknown keys raise ``ValueError``."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown TrainConfig field(s) {unknown}; known: {sorted(known)}")
        return cls(**values)


def _choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
