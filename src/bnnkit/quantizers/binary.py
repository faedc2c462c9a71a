"""Binary (1-bit) quantizers: ste_sign, approx_sign, swish_sign, ste_heaviside,
magnitude_aware_sign (Larq 0.14 semantics) and, beyond Larq, rsign (ReActNet) and
clipped_sign (PokeBNN/AQT).

Each quantizer is a pure function over one ``bnnkit::<name>`` custom op whose gradient is
defined right below its forward, plus a thin module class with a string alias. Sign
convention (DESIGN.md): sign(x) = +1 if x >= 0 else -1, so sign(0) = sign(-0.0) = +1.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._base import (
    Quantizer,
    all_finite_cpu,
    channel_view,
    check_float_tensor,
    check_positive,
    define_op,
    hard_mask,
    masked_grad,
    register_alias,
    sign,
    tag,
)

# --------------------------------------------------------------------------- ste_sign


def _ste_sign_grad(dy: Tensor, x: Tensor, clip_value: float | None) -> Tensor:
    return masked_grad(dy, x, clip_value)


_ste_sign_op = define_op(
    "ste_sign",
    "(Tensor x, float? clip_value) -> Tensor",
    lambda x, clip_value: sign(x),
    _ste_sign_grad,
)


def ste_sign(x: Tensor, clip_value: float | None = 1.0) -> Tensor:
    r"""Sign with a clipped straight-through estimator.

    Forward: q(x) = +1 if x >= 0 else -1 (q(0) = +1).
    Gradient: dq/dx = 1 if |x| <= clip_value else 0 (inclusive; no clipping if None).

    Reference: Courbariaux et al., "Binarized Neural Networks", arXiv 1602.02830.
    """
    check_float_tensor(x, "ste_sign")
    return _ste_sign_op(x, check_positive("clip_value", clip_value, allow_none=True))


@register_alias("ste_sign")
class SteSign(Quantizer):
    """Module form of :func:`ste_sign` (``"ste_sign"``)."""

    precision = 1
    op_name = "bnnkit::ste_sign"

    def __init__(self, clip_value: float | None = 1.0):
        super().__init__()
        self.clip_value = check_positive("clip_value", clip_value, allow_none=True)

    def forward(self, x: Tensor) -> Tensor:
        return ste_sign(x, self.clip_value)

    def _config(self) -> dict:
        return {"clip_value": self.clip_value}


# --------------------------------------------------------------------------- approx_sign


def _approx_sign_grad(dy: Tensor, x: Tensor) -> Tensor:
    ax = x.abs()
    if dy.dtype == x.dtype and all_finite_cpu(dy, x):  # same values, without torch.where
        return hard_mask(dy * (2.0 - 2.0 * ax), x, 1.0)
    return dy * torch.where(ax <= 1.0, 2.0 - 2.0 * ax, torch.zeros_like(x))


_approx_sign_op = define_op(
    "approx_sign",
    "(Tensor x) -> Tensor",
    lambda x: sign(x),
    _approx_sign_grad,
)


def approx_sign(x: Tensor) -> Tensor:
    r"""Sign with the ApproxSign gradient of Bi-Real Net.

    Forward: q(x) = +1 if x >= 0 else -1.
    Gradient: dq/dx = 2 - 2|x| if |x| <= 1 else 0, the derivative of Bi-Real's
    piecewise-quadratic approximation F(x) = 2x - x|x| on [-1, 1] (F = sign(x) outside).

    Reference: Liu et al., "Bi-Real Net", arXiv 1808.00278.
    """
    check_float_tensor(x, "approx_sign")
    return _approx_sign_op(x)


@register_alias("approx_sign")
class ApproxSign(Quantizer):
    """Module form of :func:`approx_sign` (``"approx_sign"``)."""

    precision = 1
    op_name = "bnnkit::approx_sign"

    def forward(self, x: Tensor) -> Tensor:
        return approx_sign(x)


# --------------------------------------------------------------------------- swish_sign


def _swish_sign_grad(dy: Tensor, x: Tensor, beta: float) -> Tensor:
    bx = beta * x
    return dy * beta * (2.0 - bx * torch.tanh(0.5 * bx)) / (1.0 + torch.cosh(bx))


_swish_sign_op = define_op(
    "swish_sign",
    "(Tensor x, float beta) -> Tensor",
    lambda x, beta: sign(x),
    _swish_sign_grad,
)


def swish_sign(x: Tensor, beta: float = 5.0) -> Tensor:
    r"""Sign with the SignSwish gradient of BNN+.

    Forward: q(x) = +1 if x >= 0 else -1.
    Gradient: dq/dx = beta (2 - beta x tanh(beta x / 2)) / (1 + cosh(beta x)); it is
    negative for large |x| (intended, as in Larq).

    Reference: Darabi et al., "BNN+: Improved Binary Network Training", arXiv 1812.11800.
    """
    check_float_tensor(x, "swish_sign")
    return _swish_sign_op(x, check_positive("beta", beta))


@register_alias("swish_sign")
class SwishSign(Quantizer):
    """Module form of :func:`swish_sign` (``"swish_sign"``)."""

    precision = 1
    op_name = "bnnkit::swish_sign"

    def __init__(self, beta: float = 5.0):
        super().__init__()
        self.beta = check_positive("beta", beta)

    def forward(self, x: Tensor) -> Tensor:
        return swish_sign(x, self.beta)

    def _config(self) -> dict:
        return {"beta": self.beta}


# --------------------------------------------------------------------------- ste_heaviside


def _heaviside(x: Tensor, clip_value: float | None) -> Tensor:
    if all_finite_cpu(x):  # sign(x) in {-1, 0, 1} (-0.0 -> 0), without bool masks
        return torch.sign(x).clamp_min_(0.0)
    h = (x > 0).to(x.dtype)
    return torch.where(torch.isnan(x), x, h)


_ste_heaviside_op = define_op(
    "ste_heaviside", "(Tensor x, float? clip_value) -> Tensor", _heaviside, _ste_sign_grad
)


def ste_heaviside(x: Tensor, clip_value: float | None = 1.0) -> Tensor:
    r"""Heaviside step with a clipped straight-through estimator.

    Forward: q(x) = 1 if x > 0 else 0 (so q(0) = 0).
    Gradient: dq/dx = 1 if |x| <= clip_value else 0.

    Reference: Larq ``SteHeaviside`` (the AND-binarization of binary-weight networks).
    """
    check_float_tensor(x, "ste_heaviside")
    return _ste_heaviside_op(x, check_positive("clip_value", clip_value, allow_none=True))


@register_alias("ste_heaviside")
class SteHeaviside(Quantizer):
    """Module form of :func:`ste_heaviside` (``"ste_heaviside"``); outputs {0, 1}."""

    precision = 1
    op_name = "bnnkit::ste_heaviside"

    def __init__(self, clip_value: float | None = 1.0):
        super().__init__()
        self.clip_value = check_positive("clip_value", clip_value, allow_none=True)

    def forward(self, x: Tensor) -> Tensor:
        return ste_heaviside(x, self.clip_value)

    def _config(self) -> dict:
        return {"clip_value": self.clip_value}


# --------------------------------------------------------------------------- magnitude_aware_sign


def magnitude_scale(x: Tensor) -> Tensor:
    """mean|x| over every axis but axis 0, shaped to broadcast against ``x``.

    For a PyTorch conv weight (O, I, kH, kW) this reduces axes 1, 2, 3; for a dense
    weight (out, in) axis 1 -- the output-channel axis is kept, as Larq keeps the last
    axis of Keras HWIO / (in, out) kernels. A 0-d or 1-d tensor gets |x| (nothing to
    reduce), also as Larq.
    """
    if x.dim() <= 1:
        return x.abs()
    return x.abs().mean(dim=tuple(range(1, x.dim())), keepdim=True)


def _mas_forward(x: Tensor, clip_value: float | None) -> Tensor:
    return magnitude_scale(x) * sign(x)


def _mas_grad(dy: Tensor, x: Tensor, clip_value: float | None) -> Tensor:
    return masked_grad(dy * magnitude_scale(x), x, clip_value)


_mas_op = define_op(
    "magnitude_aware_sign", "(Tensor x, float? clip_value) -> Tensor", _mas_forward, _mas_grad
)


def magnitude_aware_sign(x: Tensor, clip_value: float | None = 1.0) -> Tensor:
    r"""Sign scaled by the per-output-channel mean magnitude (XNOR-Net / Bi-Real Net).

    Forward: q(x) = a_o * sign(x), a_o = mean |x| over all axes but axis 0 (see
    :func:`magnitude_scale`).
    Gradient: dq/dx = a_o * 1[|x| <= clip_value]; a_o is treated as a constant
    (stop-gradient), as Larq does.

    Reference: Liu et al., "Bi-Real Net", arXiv 1808.00278, section 3.3.
    """
    check_float_tensor(x, "magnitude_aware_sign")
    return _mas_op(x, check_positive("clip_value", clip_value, allow_none=True))


@register_alias("magnitude_aware_sign")
class MagnitudeAwareSign(Quantizer):
    """Module form of :func:`magnitude_aware_sign` (``"magnitude_aware_sign"``)."""

    precision = 1
    op_name = "bnnkit::magnitude_aware_sign"

    def __init__(self, clip_value: float | None = 1.0):
        super().__init__()
        self.clip_value = check_positive("clip_value", clip_value, allow_none=True)

    def forward(self, x: Tensor) -> Tensor:
        return magnitude_aware_sign(x, self.clip_value)

    def _config(self) -> dict:
        return {"clip_value": self.clip_value}


# --------------------------------------------------------------------------- rsign


def _check_shift(x: Tensor, shift: Tensor, op: str) -> None:
    check_float_tensor(x, op)
    check_float_tensor(shift, op)
    if x.dim() < 2 or shift.dim() != 1 or shift.shape[0] != x.shape[1]:
        raise ValueError(
            f"{op}: expected x of shape (N, C, ...) and a shift of shape (C,), "
            f"got x {tuple(x.shape)} and shift {tuple(shift.shape)}"
        )


def _rsign_forward(x: Tensor, shift: Tensor) -> Tensor:
    _check_shift(x, shift, "bnnkit::rsign")
    return sign(x + channel_view(shift, x))


def _rsign_grad(dy: Tensor, x: Tensor, shift: Tensor) -> tuple[Tensor, Tensor]:
    gx = _approx_sign_grad(dy, x + channel_view(shift, x))
    dims = [d for d in range(gx.dim()) if d != 1]
    return gx, gx.sum(dim=dims).to(shift.dtype)


_rsign_op = define_op(
    "rsign", "(Tensor x, Tensor shift) -> Tensor", _rsign_forward, _rsign_grad, n_saved=2
)


def rsign(x: Tensor, shift: Tensor) -> Tensor:
    r"""ReActNet's RSign: a sign with a learnable per-channel threshold.

    Forward: q(x)_c = sign(x_c + b_c) (= sign(x_c - threshold_c), threshold = -b), with
    sign(0) = +1; ``x`` is (N, C, ...) and ``shift`` b is (C,).
    Gradient (ApproxSign at u = x + b): dq/dx = 2 - 2|u| if |u| <= 1 else 0, and
    dL/db_c = sum over every axis but 1 of dL/dx.

    Reference: Liu et al., "ReActNet", arXiv 2003.03488, eq. (1)-(3).
    """
    _check_shift(x, shift, "rsign")
    return _rsign_op(x, shift)


@register_alias("rsign")
class RSign(Quantizer):
    """Module form of :func:`rsign` (``"rsign"``) with a learnable shift (init 0).

    ``RSign()`` without ``channels`` creates the shift lazily on the first call (from
    ``x.shape[1]``), so that ``get("rsign")`` works; pass ``channels`` to create it up
    front (recommended: an optimizer built before the first call, ``load_state_dict`` and
    ``torch.export`` all need the parameter to exist).
    """

    precision = 1
    op_name = "bnnkit::rsign"

    def __init__(self, channels: int | None = None):
        super().__init__()
        self.channels = channels
        shift = None if channels is None else torch.zeros(int(channels))
        self.shift = None if shift is None else nn.Parameter(shift)

    def forward(self, x: Tensor) -> Tensor:
        if self.shift is None:
            check_float_tensor(x, "rsign")
            self.channels = int(x.shape[1]) if x.dim() >= 2 else 0
            self.shift = nn.Parameter(x.new_zeros(self.channels))
        return rsign(x, self.shift)

    def _config(self) -> dict:
        return {"channels": self.channels}


# --------------------------------------------------------------------------- clipped_sign


def _clipped_sign_forward(x: Tensor, bound: float, half_scale: bool) -> Tensor:
    return sign(x) * (0.5 * bound if half_scale else 1.0)


def _clipped_sign_grad(dy: Tensor, x: Tensor, bound: float, half_scale: bool) -> Tensor:
    return masked_grad(dy, x, bound)


_clipped_sign_op = define_op(
    "clipped_sign",
    "(Tensor x, float bound, bool half_scale) -> Tensor",
    _clipped_sign_forward,
    _clipped_sign_grad,
)


def clipped_sign(x: Tensor, bound: float = 3.0, half_scale: bool = False) -> Tensor:
    r"""Binary activation with a clip bound B, as PokeBNN's (AQT) 1-bit activations.

    Forward: q(x) = s * sign(x) with sign(0) = +1 and s = B/2 if ``half_scale`` (AQT's
    convention: clip to [-B, B], one bucket per sign, bucket centres +-B/2) else 1.
    Gradient: dq/dx = 1[|x| <= B] (straight-through the clip, inclusive), whatever s.

    Reference: Zhang et al., "PokeBNN", arXiv 2112.00133 (google/aqt).
    """
    check_float_tensor(x, "clipped_sign")
    if not isinstance(half_scale, bool):
        raise TypeError(f"half_scale must be a bool, got {half_scale!r}")
    return _clipped_sign_op(x, check_positive("bound", bound), half_scale)


@register_alias("clipped_sign")
class ClippedSign(Quantizer):
    """Module form of :func:`clipped_sign` (``"clipped_sign"``)."""

    precision = 1
    op_name = "bnnkit::clipped_sign"

    def __init__(self, bound: float = 3.0, half_scale: bool = False):
        super().__init__()
        self.bound = check_positive("bound", bound)
        if not isinstance(half_scale, bool):
            raise TypeError(f"half_scale must be a bool, got {half_scale!r}")
        self.half_scale = half_scale

    def forward(self, x: Tensor) -> Tensor:
        return clipped_sign(x, self.bound, self.half_scale)

    def _config(self) -> dict:
        return {"bound": self.bound, "half_scale": self.half_scale}


for _fn, _cls in [
    (ste_sign, SteSign),
    (approx_sign, ApproxSign),
    (swish_sign, SwishSign),
    (ste_heaviside, SteHeaviside),
    (magnitude_aware_sign, MagnitudeAwareSign),
    (rsign, RSign),
    (clipped_sign, ClippedSign),
]:
    tag(_fn, _cls.op_name, _cls.precision)
