"""Multi-level quantizers: ste_tern (ternary), dorefa, noop (Larq 0.14 semantics) and, beyond
Larq, k-bit symmetric (signed) and unsigned fake quantizers for mixed-precision layers.

All rounding is round-half-to-even (``torch.round``, as ``tf.round``). Each quantizer is a
pure function over one ``bnnkit::<name>`` custom op with its gradient next to it, plus a
thin module class with a string alias.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._base import (
    Quantizer,
    check_choice,
    check_float_tensor,
    check_int,
    check_positive,
    define_op,
    masked_grad,
    register_alias,
    tag,
)

# --------------------------------------------------------------------------- ste_tern


def tern_threshold(x: Tensor, threshold_value: float, ternary_weight_networks: bool):
    """Delta: ``threshold_value``, or 0.7 * mean|x| over the whole tensor (TWN)."""
    if ternary_weight_networks:
        return 0.7 * x.abs().sum() / x.numel()
    return threshold_value


def _tern_forward(x: Tensor, threshold_value: float, twn: bool, clip_value) -> Tensor:
    delta = tern_threshold(x, threshold_value, twn)
    zero = torch.zeros_like(x)
    q = torch.where(x >= delta, 1.0 + zero, torch.where(x <= -delta, zero - 1.0, zero))
    nan = x + delta  # NaN where x is NaN, and everywhere when a TWN delta is NaN
    return torch.where(torch.isnan(nan), nan, q)


def _tern_grad(dy: Tensor, x: Tensor, threshold_value, twn, clip_value) -> Tensor:
    return masked_grad(dy, x, clip_value)


_ste_tern_op = define_op(
    "ste_tern",
    "(Tensor x, float threshold_value, bool ternary_weight_networks, float? clip_value) -> Tensor",
    _tern_forward,
    _tern_grad,
)


def _check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return value


def ste_tern(
    x: Tensor,
    threshold_value: float = 0.05,
    ternary_weight_networks: bool = False,
    clip_value: float | None = 1.0,
) -> Tensor:
    r"""Ternarization with a clipped straight-through estimator.

    Forward: q(x) = +1 if x >= Delta, -1 if x <= -Delta, else 0 -- exactly x = +-Delta
    gives +-1, as Larq's sign(sign(x + Delta) + sign(x - Delta)). Delta is
    ``threshold_value``, or 0.7 * mean|x| (whole tensor) with ``ternary_weight_networks``.
    Gradient: dq/dx = 1 if |x| <= clip_value else 0.
    A NaN stays NaN; with ``ternary_weight_networks`` one NaN makes Delta, and so the
    whole output, NaN (as Larq), never a silent 0.

    Reference: Li et al., "Ternary Weight Networks", arXiv 1605.04711.
    """
    check_float_tensor(x, "ste_tern")
    threshold_value = check_positive("threshold_value", threshold_value)
    twn = _check_bool("ternary_weight_networks", ternary_weight_networks)
    clip_value = check_positive("clip_value", clip_value, allow_none=True)
    return _ste_tern_op(x, threshold_value, twn, clip_value)


@register_alias("ste_tern")
class SteTern(Quantizer):
    """Module form of :func:`ste_tern` (``"ste_tern"``); outputs {-1, 0, +1}."""

    precision = 2
    op_name = "bnnkit::ste_tern"

    def __init__(
        self,
        threshold_value: float = 0.05,
        ternary_weight_networks: bool = False,
        clip_value: float | None = 1.0,
    ):
        super().__init__()
        self.threshold_value = check_positive("threshold_value", threshold_value)
        self.ternary_weight_networks = _check_bool(
            "ternary_weight_networks", ternary_weight_networks
        )
        self.clip_value = check_positive("clip_value", clip_value, allow_none=True)

    def forward(self, x: Tensor) -> Tensor:
        return ste_tern(x, self.threshold_value, self.ternary_weight_networks, self.clip_value)

    def _config(self) -> dict:
        return {
            "threshold_value": self.threshold_value,
            "ternary_weight_networks": self.ternary_weight_networks,
            "clip_value": self.clip_value,
        }


# --------------------------------------------------------------------------- dorefa

DOREFA_MODES = ("activations", "weights")


def _dorefa_weight_norm(x: Tensor) -> tuple[Tensor, Tensor]:
    """(tanh(x), max|tanh(x)|): the weights-mode preprocessing of Larq's DoReFa."""
    t = torch.tanh(x)
    return t, t.abs().amax() if x.numel() else t.new_zeros(())


def _dorefa_forward(x: Tensor, k_bit: int, mode: str) -> Tensor:
    n = 2**k_bit - 1
    if mode == "activations":
        return torch.round(x.clamp(0.0, 1.0) * n) / n
    t, m = _dorefa_weight_norm(x)
    u = torch.where(m == 0, torch.zeros_like(t), t / (2.0 * m)) + 0.5  # NaN max -> NaN
    return 2.0 * (torch.round(u * n) / n) - 1.0


def _dorefa_grad(dy: Tensor, x: Tensor, k_bit: int, mode: str) -> Tensor:
    if mode == "activations":
        return dy * ((x >= 0) & (x <= 1)).to(x.dtype)
    t, m = _dorefa_weight_norm(x)
    d = torch.where(m == 0, torch.zeros_like(t), (1.0 - t * t) / m)
    return dy * d


_dorefa_op = define_op(
    "dorefa", "(Tensor x, int k_bit, str mode) -> Tensor", _dorefa_forward, _dorefa_grad
)


def dorefa(x: Tensor, k_bit: int = 2, mode: str = "activations") -> Tensor:
    r"""DoReFa k-bit quantizer (Larq 0.14 ``DoReFa``), n = 2^k - 1 levels.

    ``mode="activations"``: q(x) = round(n * clip(x, 0, 1)) / n;
    gradient dq/dx = 1 if 0 <= x <= 1 else 0 (identity through the rounding).
    ``mode="weights"``: u = tanh(x) / (2 max|tanh(x)|) + 1/2 (u = 1/2 if x == 0
    everywhere), q(x) = 2 round(n u) / n - 1 in [-1, 1]; gradient
    dq/dx = (1 - tanh^2 x) / max|tanh x| with the max treated as a constant.
    Rounding is half-to-even: k=2 activations map 0.5 -> 2/3; weights map 0 -> +1/3.
    A NaN stays NaN; in weights mode one NaN makes max|tanh x|, and so the whole output
    and gradient, NaN (as Larq), never a silent 1/3.

    Reference: Zhou et al., "DoReFa-Net", arXiv 1606.06160.
    """
    check_float_tensor(x, "dorefa")
    k_bit = check_int("k_bit", k_bit, 1, 16)
    return _dorefa_op(x, k_bit, check_choice("mode", mode, DOREFA_MODES))


@register_alias("dorefa", "dorefa_quantizer")
class DoReFa(Quantizer):
    """Module form of :func:`dorefa` (``"dorefa"``, Larq's ``"dorefa_quantizer"``)."""

    op_name = "bnnkit::dorefa"

    def __init__(self, k_bit: int = 2, mode: str = "activations"):
        super().__init__()
        self.precision = check_int("k_bit", k_bit, 1, 16)
        self.mode = check_choice("mode", mode, DOREFA_MODES)

    @property
    def k_bit(self) -> int:
        return self.precision

    def forward(self, x: Tensor) -> Tensor:
        return dorefa(x, self.precision, self.mode)

    def _config(self) -> dict:
        return {"k_bit": self.precision, "mode": self.mode}


# --------------------------------------------------------------------------- noop

_noop_op = define_op(
    "noop", "(Tensor x, int precision) -> Tensor", lambda x, p: x.clone(), lambda dy, x, p: dy
)


def noop(x: Tensor, precision: int = 32) -> Tensor:
    """Identity that only tags a precision (Larq ``NoOp``); gradient is the identity.

    The op is kept in exported graphs so the converter can read the precision tag.
    """
    check_float_tensor(x, "noop")
    return _noop_op(x, check_int("precision", precision, 1, 64))


@register_alias("noop")
class NoOp(Quantizer):
    """Module form of :func:`noop` (``"noop"``); ``precision`` is the tag (default 32)."""

    op_name = "bnnkit::noop"

    def __init__(self, precision: int = 32):
        super().__init__()
        self.precision = check_int("precision", precision, 1, 64)

    def forward(self, x: Tensor) -> Tensor:
        return noop(x, self.precision)

    def _config(self) -> dict:
        return {"precision": self.precision}


# --------------------------------------------------------------------------- k-bit symmetric


def symmetric_scale(x: Tensor, bits: int, per_channel: bool, bound: float | None) -> Tensor:
    """s = M / (2^(bits-1) - 1), M = ``bound`` or max|x| (whole tensor or per axis-0 slice)."""
    qmax = 2 ** (bits - 1) - 1
    if bound is not None:
        return x.new_full((), bound / qmax)
    if per_channel and x.dim() >= 1:
        dims = tuple(range(1, x.dim()))
        m = x.abs().amax(dim=dims, keepdim=True) if dims else x.abs()
    else:
        m = x.abs().amax() if x.numel() else x.new_zeros(())
    return m / qmax


def _symmetric_forward(x: Tensor, bits: int, per_channel: bool, bound) -> Tensor:
    s = symmetric_scale(x, bits, per_channel, bound)
    qmax = 2 ** (bits - 1) - 1
    safe = torch.where(s > 0, s, torch.ones_like(s))
    q = torch.round(x / safe).clamp(-qmax, qmax) * s
    return torch.where(torch.isnan(x), x, q)


def _symmetric_grad(dy: Tensor, x: Tensor, bits: int, per_channel: bool, bound) -> Tensor:
    return masked_grad(dy, x, bound)


_symmetric_op = define_op(
    "symmetric_quant",
    "(Tensor x, int bits, bool per_channel, float? bound) -> Tensor",
    _symmetric_forward,
    _symmetric_grad,
)


def symmetric_quant(
    x: Tensor, bits: int = 8, per_channel: bool = False, bound: float | None = None
) -> Tensor:
    r"""Symmetric signed k-bit fake quantizer (int4 / int8 weights and activations).

    Forward: q(x) = s * clip(round(x / s), -Q, Q) with Q = 2^(bits-1) - 1 and
    s = M / Q, where M = ``bound`` if given, else max|x| over the tensor, or over each
    output channel (axis 0, PyTorch weight layout) with ``per_channel``; all-zero
    slices stay 0. Rounding is half-to-even.
    Gradient: straight-through, dq/dx = 1[|x| <= M] (with a max-abs M every element is
    inside, so the gradient is the identity); s is treated as a constant.

    Reference: Jacob et al., "Quantization and Training of Neural Networks for Efficient
    Integer-Arithmetic-Only Inference", arXiv 1712.05877; PokeBNN (arXiv 2112.00133)
    uses 8-bit per-channel weights and 4-bit gates.
    """
    check_float_tensor(x, "symmetric_quant")
    bits = check_int("bits", bits, 2, 16)
    per_channel = _check_bool("per_channel", per_channel)
    bound = check_positive("bound", bound, allow_none=True)
    return _symmetric_op(x, bits, per_channel, bound)


@register_alias("symmetric_quant")
class SymmetricQuantizer(Quantizer):
    """Module form of :func:`symmetric_quant` (``"symmetric_quant"``, default 8 bits)."""

    op_name = "bnnkit::symmetric_quant"

    def __init__(self, bits: int = 8, per_channel: bool = False, bound: float | None = None):
        super().__init__()
        self.precision = check_int("bits", bits, 2, 16)
        self.per_channel = _check_bool("per_channel", per_channel)
        self.bound = check_positive("bound", bound, allow_none=True)

    @property
    def bits(self) -> int:
        return self.precision

    def forward(self, x: Tensor) -> Tensor:
        return symmetric_quant(x, self.precision, self.per_channel, self.bound)

    def _config(self) -> dict:
        return {"bits": self.precision, "per_channel": self.per_channel, "bound": self.bound}


# --------------------------------------------------------------------------- k-bit unsigned


def _unsigned_top(x: Tensor, bound: float | None) -> Tensor:
    """The top of the range: ``bound`` or max(x) (at least 0)."""
    if bound is not None:
        return x.new_full((), bound)
    return x.amax().clamp_min(0.0) if x.numel() else x.new_zeros(())


def _unsigned_forward(x: Tensor, bits: int, bound) -> Tensor:
    n = 2**bits - 1
    top = _unsigned_top(x, bound)
    s = top / n
    safe = torch.where(s > 0, s, torch.ones_like(s))
    q = torch.round(x / safe).clamp(0, n) * s
    return torch.where(torch.isnan(x), x, q)


def _unsigned_grad(dy: Tensor, x: Tensor, bits: int, bound) -> Tensor:
    return dy * ((x >= 0) & (x <= _unsigned_top(x, bound))).to(x.dtype)


_unsigned_op = define_op(
    "unsigned_quant",
    "(Tensor x, int bits, float? bound) -> Tensor",
    _unsigned_forward,
    _unsigned_grad,
)


def unsigned_quant(x: Tensor, bits: int = 8, bound: float | None = None) -> Tensor:
    r"""Unsigned k-bit fake quantizer, e.g. for post-ReLU activations.

    Forward: q(x) = s * clip(round(x / s), 0, n) with n = 2^bits - 1 and s = T / n,
    T = ``bound`` if given (fixed range [0, bound]) else max(x) over the tensor (dynamic
    range [0, max]); rounding half-to-even, an all-non-positive input gives 0.
    Gradient: straight-through inside the range, dq/dx = 1[0 <= x <= T]; s is constant.

    Reference: Jacob et al., arXiv 1712.05877 (asymmetric ranges with zero point 0).
    """
    check_float_tensor(x, "unsigned_quant")
    bits = check_int("bits", bits, 1, 16)
    return _unsigned_op(x, bits, check_positive("bound", bound, allow_none=True))


@register_alias("unsigned_quant")
class UnsignedQuantizer(Quantizer):
    """Module form of :func:`unsigned_quant` (``"unsigned_quant"``, default 8 bits)."""

    op_name = "bnnkit::unsigned_quant"

    def __init__(self, bits: int = 8, bound: float | None = None):
        super().__init__()
        self.precision = check_int("bits", bits, 1, 16)
        self.bound = check_positive("bound", bound, allow_none=True)

    @property
    def bits(self) -> int:
        return self.precision

    def forward(self, x: Tensor) -> Tensor:
        return unsigned_quant(x, self.precision, self.bound)

    def _config(self) -> dict:
        return {"bits": self.precision, "bound": self.bound}


tag(ste_tern, SteTern.op_name, SteTern.precision)
tag(dorefa, DoReFa.op_name, 2)
tag(noop, NoOp.op_name, 32)
tag(symmetric_quant, SymmetricQuantizer.op_name, 8)
tag(unsigned_quant, UnsignedQuantizer.op_name, 8)
