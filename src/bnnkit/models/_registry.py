"""The model registry: each variant is a small function decorated with :func:`register_model`.

``create(name, num_classes=1000, input_size=224, **kwargs)`` builds a model; the tests, the
CLI and the benchmarks iterate :func:`list_models`, so a newly registered variant is tested
and benchmarked without touching a list anywhere else.
"""

from __future__ import annotations

import difflib
import fnmatch
from typing import Callable

_MODELS: dict[str, Callable] = {}


def register_model(fn: Callable) -> Callable:
    """Register ``fn`` under its function name; ``fn(num_classes=, input_size=, **kw)`` builds the model."""
    name = fn.__name__
    if name in _MODELS:
        raise ValueError(f"model {name!r} is registered twice")
    _MODELS[name] = fn
    return fn


def list_models(pattern: str = "*") -> list[str]:
    """Sorted names of the registered models that match the shell-style ``pattern``."""
    return sorted(n for n in _MODELS if fnmatch.fnmatchcase(n, pattern))


def is_model(name: str) -> bool:
    return name in _MODELS


def create(name: str, num_classes: int = 1000, input_size: int = 224, **kwargs):
    """Build the registered model ``name``.

    Raises ``KeyError`` naming the closest registered names when ``name`` is unknown.
    """
    if name not in _MODELS:
        close = difflib.get_close_matches(name, list(_MODELS), n=5, cutoff=0.4)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise KeyError(f"unknown model {name!r}{hint} (known: {', '.join(list_models())})")
    for arg, value in (("num_classes", num_classes), ("input_size", input_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: {arg} must be an integer >= 1, got {value!r}")
    return _MODELS[name](num_classes=num_classes, input_size=input_size, **kwargs)
