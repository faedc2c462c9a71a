"""bnnkit's exceptions: one base, one subclass per kind of failure.

Every error bnnkit raises on purpose derives from :class:`BnnkitError`. Each subclass also
derives from the builtin exception a caller would expect (``ValueError`` for bad input,
``KeyError``-like lookups raise :class:`UnknownNameError`, a ``ValueError``), so existing
``except ValueError`` code keeps working. Errors about a ``.bnn`` file carry a structured
``code`` (``part``, ``index``, ``rule``) that tests compare instead of message text.
"""

from __future__ import annotations


class BnnkitError(Exception):
    """Base of every error bnnkit raises on purpose."""


class UnknownNameError(BnnkitError, ValueError):
    """A name not in a registry (quantizer, model, data set, op); the message lists close matches."""


class FormatError(BnnkitError, ValueError):
    """A ``.bnn`` file (or description) that breaks the format; nothing was loaded.

    ``part`` is what is wrong ("header", "metadata", "tensor", "node", "graph", "data"),
    ``index`` the record's index (or -1), ``rule`` a short stable identifier of the broken
    rule (e.g. "dtype", "rank", "shape", "attr_range", "dataflow").
    """

    def __init__(self, message: str, *, part: str = "", index: int = -1, rule: str = ""):
        super().__init__(message)
        self.part, self.index, self.rule = part, index, rule

    @property
    def code(self) -> tuple[str, int, str]:
        return (self.part, self.index, self.rule)


class ResourceError(BnnkitError, MemoryError):
    """A model or run would exceed a resource budget (arena bytes, work, table sizes)."""


class InputError(BnnkitError, ValueError):
    """An input array given to the runtime has the wrong shape, dtype or values."""


class ConversionError(BnnkitError, ValueError):
    """A PyTorch model (or graph) the converter cannot turn into a ``.bnn`` file."""


class CheckpointError(BnnkitError, RuntimeError):
    """A training checkpoint that is missing, corrupt or does not fit the model."""


class DataError(BnnkitError, ValueError):
    """A data set that is missing or malformed."""


__all__ = ["BnnkitError", "CheckpointError", "ConversionError", "DataError", "FormatError", "InputError",
           "ResourceError", "UnknownNameError"]
