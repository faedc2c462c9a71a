"""The bnnkit model zoo: ``create(name, ...)`` and ``list_models(pattern)``.

One family per file (``quicknet.py``, ``birealnet.py``, ...). Importing this package imports
every public module in it, and each registers its variants with ``@register_model``.
"""

from __future__ import annotations

import importlib
import pkgutil

from ._registry import create, is_model, list_models, register_model

__all__ = ["create", "is_model", "list_models", "register_model"]

for _info in pkgutil.iter_modules(__path__):
    if not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")
