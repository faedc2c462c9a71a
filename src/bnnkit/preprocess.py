"""How a deployed model wants its input: the preprocessing a ``.bnn`` file carries.

A model trained by ``bnnkit train`` sees images as ``(x * scale - mean) / std`` per
channel, float32, NCHW (``scale`` = 1/255 for 8-bit images). Someone deploying the file
with numpy alone needs exactly that, so :func:`bnnkit.convert` stores it in the file's
metadata (keys ``input.scale``, ``input.mean``, ``input.std``, ``input.layout``; class
names under ``model.labels``) and the runtime can apply it
(``Interpreter.run(raw, preprocess=True)``). numpy only: no torch needed to deploy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

__all__ = ["Preprocess", "labels_from_metadata", "labels_metadata"]

KEYS = ("input.scale", "input.mean", "input.std", "input.layout")
LABELS_KEY = "model.labels"
LAYOUTS = ("NCHW", "NHWC")


@dataclass(frozen=True)
class Preprocess:
    """``(raw * scale - mean[c]) / std[c]`` per channel ``c``, into the model's NCHW float32.

    ``mean``/``std`` have one value per input channel; ``scale`` maps the raw value range
    to the one the statistics were taken on (1/255 for ``uint8`` images, 1.0 when the raw
    values are already in that range).
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]
    scale: float = 1.0 / 255.0

    def __post_init__(self) -> None:
        mean = tuple(float(v) for v in self.mean)
        std = tuple(float(v) for v in self.std)
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)
        object.__setattr__(self, "scale", float(self.scale))
        if not mean or len(mean) != len(std):
            raise ValueError(f"preprocess: mean and std need one value per channel, got "
                             f"{len(mean)} and {len(std)}")
        if not all(math.isfinite(v) for v in mean):
            raise ValueError(f"preprocess: mean must be finite, got {mean}")
        if not all(math.isfinite(v) and v > 0 for v in std):
            raise ValueError(f"preprocess: std must be finite and > 0, got {std}")
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"preprocess: scale must be finite and > 0, got {self.scale}")

    @classmethod
    def coerce(cls, value: Any) -> Preprocess | None:
        """A :class:`Preprocess`, a dict of its fields, or None."""
        if value is None or isinstance(value, cls):
            return value
        if isinstance(value, dict):
            unknown = set(value) - {"mean", "std", "scale"}
            if unknown:
                raise ValueError(f"preprocess: unknown field(s) {sorted(unknown)}; "
                                 "expected mean, std and optionally scale")
            return cls(**value)
        raise TypeError(f"preprocess must be a Preprocess, a dict or None, not {type(value).__name__}")

    def to_metadata(self) -> dict[str, Any]:
        return {"input.scale": self.scale, "input.mean": list(self.mean),
                "input.std": list(self.std), "input.layout": "NCHW"}

    @classmethod
    def from_metadata(cls, meta: dict[str, Any]) -> Preprocess | None:
        """The preprocessing stored in a file's metadata, None when it has none."""
        present = [k for k in KEYS if k in meta]
        if not present:
            return None
        missing = [k for k in KEYS if k not in meta]
        if missing:
            raise ValueError(f"metadata has {present} but not {missing}: incomplete preprocessing")
        if meta["input.layout"] != "NCHW":
            raise ValueError(f"metadata input.layout {meta['input.layout']!r}: only 'NCHW' is defined")
        return cls(mean=tuple(meta["input.mean"]), std=tuple(meta["input.std"]), scale=meta["input.scale"])

    def apply(self, raw, shape: Sequence[int], layout: str | None = None) -> np.ndarray:
        """``raw`` images (any real dtype, e.g. ``uint8``) -> the model's float32 NCHW input of
        ``shape`` = (N, C, H, W).

        ``raw`` may be NCHW or NHWC, or one image (CHW, HWC, or HW for one channel) when
        N = 1. ``layout`` ("NCHW"/"NHWC") settles the rare shapes that fit both.
        """
        shape = tuple(int(v) for v in shape)
        if len(shape) != 4:
            raise ValueError(f"preprocess needs a 4-d (N, C, H, W) model input, not {shape}")
        n, c, h, w = shape
        if len(self.mean) != c:
            raise ValueError(f"preprocess has {len(self.mean)} channel statistics but the model "
                             f"takes {c} channels")
        x = np.asarray(raw)
        if x.dtype.kind not in "biuf":
            raise TypeError(f"raw images must be a real-valued array, not dtype {x.dtype}")
        if layout is not None and layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, not {layout!r}")
        if n == 1 and x.ndim == 3:
            x = x[None]
        if n == 1 and c == 1 and x.ndim == 2:
            x = x[None, None]
        nchw, nhwc = x.shape == (n, c, h, w), x.shape == (n, h, w, c)
        if layout == "NHWC" or (layout is None and nhwc and not nchw):
            if not nhwc:
                raise ValueError(f"raw images of shape {x.shape} are not NHWC {(n, h, w, c)}")
            x = x.transpose(0, 3, 1, 2)
        elif not nchw:
            raise ValueError(f"raw images of shape {tuple(np.shape(raw))} fit neither the model's NCHW "
                             f"input {(n, c, h, w)} nor NHWC {(n, h, w, c)}")
        # As bnnkit.data.normalize computes it in training: x * (scale / std) + (-mean / std)
        # in float32, the two factors rounded once.
        a = np.asarray([self.scale / s for s in self.std], np.float32)[None, :, None, None]
        b = np.asarray([-m / s for m, s in zip(self.mean, self.std)], np.float32)[None, :, None, None]
        return np.ascontiguousarray(x.astype(np.float32) * a + b)


def labels_metadata(labels: Sequence[str] | None, num_outputs: int | None = None) -> dict[str, Any]:
    if labels is None:
        return {}
    labels = [str(v) for v in labels]
    if num_outputs is not None and len(labels) != num_outputs:
        raise ValueError(f"labels: {len(labels)} names for a model with {num_outputs} outputs")
    return {LABELS_KEY: labels}


def labels_from_metadata(meta: dict[str, Any]) -> list[str] | None:
    labels = meta.get(LABELS_KEY)
    return list(labels) if labels is not None else None
