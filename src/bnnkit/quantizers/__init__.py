"""Quantizers with straight-through-estimator gradients (``bnnkit.quantizers``).

Every quantizer comes in four forms, as in Larq:

* a ``torch.library`` custom op, ``torch.ops.bnnkit.<name>``, with registered autograd,
  so ``torch.export`` shows it as ONE node ``bnnkit.<name>.default`` (the converter
  matches quantizers by these names, never by the shape of their implementation);
* a plain function, e.g. ``ste_sign(x, clip_value=1.0)``;
* an ``nn.Module`` class, e.g. ``SteSign``, with ``precision`` (bits) and ``op_name``;
* a string alias, e.g. ``"ste_sign"``, resolved by :func:`get`.

======================  ==================  =========  =============================
alias                   class               precision  semantics
======================  ==================  =========  =============================
ste_sign                SteSign             1          Larq 0.14
approx_sign             ApproxSign          1          Larq 0.14 (Bi-Real Net)
swish_sign              SwishSign           1          Larq 0.14 (BNN+)
ste_heaviside           SteHeaviside        1          Larq 0.14
magnitude_aware_sign    MagnitudeAwareSign  1          Larq 0.14, PyTorch axis 0 kept
ste_tern                SteTern             2          Larq 0.14
dorefa                  DoReFa              k_bit      Larq 0.14 (both modes)
noop                    NoOp                precision  Larq 0.14
rsign                   RSign               1          ReActNet, learnable shift
clipped_sign            ClippedSign         1          PokeBNN / AQT, bound 3.0
symmetric_quant         SymmetricQuantizer  bits       signed k-bit fake quant
unsigned_quant          UnsignedQuantizer   bits       unsigned k-bit fake quant
======================  ==================  =========  =============================

Conventions: sign(0) = sign(-0.0) = +1; STE masks are inclusive (|x| <= clip); rounding
is half-to-even; NaN inputs stay NaN, and a NaN that enters a tensor-wide statistic (the
TWN threshold, DoReFa's weight max, a max-abs scale) makes every output it scales NaN,
never a silently finite value; integer inputs are rejected with a TypeError.
"""

from ._base import Quantizer, get, list_quantizers, precision_of, register_alias
from .binary import (
    ApproxSign,
    ClippedSign,
    MagnitudeAwareSign,
    RSign,
    SteHeaviside,
    SteSign,
    SwishSign,
    approx_sign,
    clipped_sign,
    magnitude_aware_sign,
    magnitude_scale,
    rsign,
    ste_heaviside,
    ste_sign,
    swish_sign,
)
from .multibit import (
    DoReFa,
    NoOp,
    SteTern,
    SymmetricQuantizer,
    UnsignedQuantizer,
    dorefa,
    noop,
    ste_tern,
    symmetric_quant,
    unsigned_quant,
)

__all__ = [
    "ApproxSign",
    "ClippedSign",
    "DoReFa",
    "MagnitudeAwareSign",
    "NoOp",
    "Quantizer",
    "RSign",
    "SteHeaviside",
    "SteSign",
    "SteTern",
    "SwishSign",
    "SymmetricQuantizer",
    "UnsignedQuantizer",
    "approx_sign",
    "clipped_sign",
    "dorefa",
    "get",
    "list_quantizers",
    "magnitude_aware_sign",
    "magnitude_scale",
    "noop",
    "precision_of",
    "register_alias",
    "rsign",
    "ste_heaviside",
    "ste_sign",
    "ste_tern",
    "swish_sign",
    "symmetric_quant",
    "unsigned_quant",
]
