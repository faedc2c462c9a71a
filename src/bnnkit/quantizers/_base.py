"""Shared machinery of the quantizers: op registration, argument checks, the alias registry.

Every quantizer is one ``torch.library`` custom op in the ``bnnkit`` namespace whose
autograd formula is registered next to it (:func:`define_op`), so ``torch.export`` keeps
it as a single node (``bnnkit.<name>.default``) that the converter matches by name.
A thin :class:`Quantizer` module wraps each op and carries its ``precision`` (bits) and
``op_name``; :func:`register_alias` makes it reachable from :func:`get` by a string.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

NAMESPACE = "bnnkit"

# alias -> Quantizer subclass; class name -> class (Larq also resolves class names).
_ALIASES: dict[str, type[Quantizer]] = {}
_CLASSES: dict[str, type[Quantizer]] = {}


# --------------------------------------------------------------------------- checks


def check_float_tensor(x: object, op: str) -> None:
    """Raise ``TypeError`` unless ``x`` is a floating-point tensor."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(
            f"{op}: expected a floating-point tensor, got dtype {x.dtype}; "
            "cast it first, e.g. x.float()"
        )


def check_positive(name: str, value: object, *, allow_none: bool = False) -> float | None:
    """Return ``value`` as a float after checking it is a finite number > 0."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number > 0, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def check_int(name: str, value: object, lo: int, hi: int) -> int:
    """Return ``value`` after checking it is an int in ``[lo, hi]``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int in [{lo}, {hi}], got {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be in [{lo}, {hi}], got {value}")
    return value


def check_choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    """Return ``value`` after checking it is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value  # type: ignore[return-value]


# --------------------------------------------------------------------------- ops


def define_op(name: str, schema: str, forward: Callable, grad: Callable, n_saved: int = 1):
    """Define ``bnnkit::<name>`` with a fake (meta) kernel and an autograd formula.

    ``schema`` is the argument list, e.g. ``"(Tensor x, float? clip_value) -> Tensor"``.
    ``forward(*args)`` computes the output from the op's arguments; ``grad(dy, *args)``
    returns the gradient(s) w.r.t. the first ``n_saved`` (tensor) arguments, one tensor
    or a tuple. Scalars get no gradient. The first ``n_saved`` arguments are saved for
    backward (never the output, so in-place use of the output is safe).
    """
    qualname = f"{NAMESPACE}::{name}"

    def kernel(*args):
        check_float_tensor(args[0], qualname)
        return forward(*args)

    op = torch.library.custom_op(qualname, kernel, mutates_args=(), schema=schema)

    def fake(*args):
        check_float_tensor(args[0], qualname)
        return torch.empty_like(args[0])

    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(*inputs[:n_saved])
        ctx.scalars = inputs[n_saved:]

    def backward(ctx, dy):
        grads = grad(dy, *ctx.saved_tensors, *ctx.scalars)
        grads = grads if isinstance(grads, tuple) else (grads,)
        return grads + (None,) * len(ctx.scalars)

    op.register_fake(fake)
    op.register_autograd(backward, setup_context=setup_context)
    return getattr(getattr(torch.ops, NAMESPACE), name)


def tag(fn: Callable, op_name: str, precision: int) -> Callable:
    """Attach ``op_name`` and ``precision`` to a plain quantizer function."""
    fn.op_name = op_name
    fn.precision = precision
    return fn


# --------------------------------------------------------------------------- math


# On a CPU, torch.where and the comparisons that make bool masks run far slower than
# arithmetic (measured with torch 2.13 on one core: where over 0.8 M floats 3.1 ms, copysign
# 0.19 ms, hardtanh_backward 0.10 ms), and a training step quantizes every activation and
# weight twice (forward and backward). So on CPU tensors :func:`sign` and
# :func:`masked_grad` use arithmetic ops that give the same bits for every finite input,
# and a sum (0.08 ms) tells them when there is a NaN or inf to handle the exact, slower way.


def all_finite_cpu(*tensors: Tensor) -> bool:
    """True when every tensor is a plain CPU tensor and certainly finite (a finite sum
    proves it). False for the fake and functional tensors of tracing (``torch.export``,
    ``torch.compile``, ``opcheck``), whose values are not known."""
    return all(type(t) in (Tensor, nn.Parameter) and t.device.type == "cpu" for t in tensors) \
        and all(bool(torch.isfinite(t.sum())) for t in tensors)


def sign(x: Tensor) -> Tensor:
    """+1 where x >= 0 (so sign(0) = sign(-0.0) = +1), -1 where x < 0; NaN stays NaN."""
    if all_finite_cpu(x):
        # x + 0.0 turns -0.0 into +0.0 and changes nothing else; copysign then gives +-1.
        return torch.copysign(torch.ones((), dtype=x.dtype), x + 0.0)
    s = torch.where(x < 0, -1.0, 1.0).to(x.dtype)
    return torch.where(torch.isnan(x), x, s)


def clip_mask(x: Tensor, clip_value: float | None) -> Tensor:
    """The STE mask 1[|x| <= clip_value] (inclusive, as Larq); all ones if None."""
    if clip_value is None:
        return torch.ones_like(x)
    return (x.abs() <= clip_value).to(x.dtype)


def hard_mask(dy: Tensor, x: Tensor, clip_value: float) -> Tensor:
    """``dy * clip_mask(x, clip_value)`` for finite ``dy`` and ``x`` of one dtype.

    One ``hardtanh_backward``, which passes ``dy`` where ``lo < x < hi`` (strictly) and
    writes 0 elsewhere: with ``hi`` the next value of x's dtype above ``clip_value`` and
    ``lo = -hi`` that is exactly the inclusive |x| <= clip_value (the mask compares in x's
    dtype too: torch casts the Python number to it).
    """
    c = torch.tensor(clip_value, dtype=x.dtype)
    hi = float(torch.nextafter(c, torch.tensor(math.inf, dtype=x.dtype)))
    return torch.ops.aten.hardtanh_backward(dy, x, -hi, hi)


def masked_grad(dy: Tensor, x: Tensor, clip_value: float | None) -> Tensor:
    """``dy * clip_mask(x, clip_value)``, the clipped straight-through gradient."""
    if clip_value is None or dy.dtype != x.dtype or \
            not math.isfinite(float(torch.tensor(clip_value, dtype=x.dtype))) or \
            not all_finite_cpu(dy, x):
        return dy * clip_mask(x, clip_value)
    return hard_mask(dy, x, clip_value)


def channel_view(v: Tensor, x: Tensor) -> Tensor:
    """Reshape a per-channel vector ``v`` (C,) to broadcast on axis 1 of ``x``."""
    return v.reshape(1, -1, *([1] * (x.dim() - 2)))


# --------------------------------------------------------------------------- modules


class Quantizer(nn.Module):
    """Base class of the quantizer modules.

    Attributes:
        precision: bits of the output (1 for signs, 2 for ternary, k for k-bit); read by
            the summary and the converter.
        op_name: the ``torch.library`` op, e.g. ``"bnnkit::ste_sign"``, that appears in
            ``torch.export`` graphs as ``bnnkit.ste_sign.default``.
    """

    precision: int = 32
    op_name: str = ""

    def _config(self) -> dict:
        """The constructor arguments shown by ``extra_repr``."""
        return {}

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self._config().items())


def register_alias(*aliases: str):
    """Class decorator: make a :class:`Quantizer` subclass reachable by ``get(alias)``."""

    def decorate(cls: type[Quantizer]) -> type[Quantizer]:
        for alias in aliases:
            if alias in _ALIASES:
                raise ValueError(f"quantizer alias {alias!r} is already registered")
            _ALIASES[alias] = cls
        _CLASSES[cls.__name__] = cls
        return cls

    return decorate


def list_quantizers() -> list[str]:
    """The registered aliases, sorted."""
    return sorted(_ALIASES)


def _unknown(identifier: str) -> ValueError:
    close = difflib.get_close_matches(identifier, list(_ALIASES) + list(_CLASSES), n=3)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    return ValueError(
        f"unknown quantizer {identifier!r}.{hint} Known quantizers: {', '.join(list_quantizers())}"
    )


def get(identifier):
    """Resolve a quantizer identifier.

    * ``None`` -> ``None`` (no quantization);
    * an alias (``"ste_sign"``) or a class name (``"SteSign"``) -> a new module with
      default arguments;
    * a :class:`Quantizer` subclass (``SteSign``) -> a new instance with default arguments;
    * an ``nn.Module`` instance or any other callable (not a class) -> returned as is.

    Anything else (including a class that is not a :class:`Quantizer`) raises
    ``TypeError``; an unknown string raises ``ValueError``; both list the known aliases.
    """
    if identifier is None:
        return None
    if isinstance(identifier, str):
        cls = _ALIASES.get(identifier) or _CLASSES.get(identifier)
        if cls is None:
            raise _unknown(identifier)
        return cls()
    if isinstance(identifier, type):
        if issubclass(identifier, Quantizer):
            return identifier()
        raise _not_a_quantizer(identifier, "a class; pass an instance")
    if isinstance(identifier, nn.Module) or callable(identifier):
        return identifier
    raise _not_a_quantizer(identifier, f"type {type(identifier).__name__}")


def _not_a_quantizer(identifier, what: str) -> TypeError:
    return TypeError(
        f"cannot interpret {identifier!r} ({what}) as a quantizer; "
        f"pass None, a callable, an nn.Module or one of: {', '.join(list_quantizers())}"
    )


def precision_of(quantizer) -> int:
    """Bits of a quantizer's output: 32 for None or an untagged callable."""
    if quantizer is None:
        return 32
    precision = getattr(quantizer, "precision", None)
    return int(precision) if precision is not None else 32
