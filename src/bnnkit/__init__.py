"""bnnkit: train, analyse and deploy binarized neural networks.

Training (``bnnkit.quantizers``, ``bnnkit.nn``, ``bnnkit.optim``, ``bnnkit.models``) needs
PyTorch; deployment (``bnnkit.bits``, the ``.bnn`` format and the native runtime) needs only
numpy. Everything is imported on first use, so ``import bnnkit`` works without torch.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY_SUBMODULES = frozenset(
    {"bits", "quantizers", "nn", "optim", "models", "analysis", "runtime", "format", "converter", "kernels", "data", "train", "cli"}
)
# Functions re-exported at the top level: name -> (module, attribute).
_LAZY_FUNCTIONS = {"summary": ("analysis", "summary"), "convert": ("converter", "convert")}


def __getattr__(name: str):
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _LAZY_FUNCTIONS:
        module, attr = _LAZY_FUNCTIONS[name]
        return getattr(importlib.import_module(f"{__name__}.{module}"), attr)
    raise AttributeError(f"module 'bnnkit' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | _LAZY_SUBMODULES | set(_LAZY_FUNCTIONS))
