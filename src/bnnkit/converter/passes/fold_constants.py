"""Constant folding during lowering: evaluate a node whose tensor inputs are all constants.

Weight quantizers are folded here: ``ste_sign(w)`` becomes the constant +-1 tensor and
``magnitude_aware_sign(w)`` the constant ``s_o * sign(w)``. Results of 1-bit quantizers
are remembered (by object id) as *binary weights*, which the lowering of conv2d/linear
turns into packed ``bits`` weights with ``s_o`` as the multiplier -- 32x smaller than
fp32. Views of parameters (``reshape``, ``view``) and arithmetic on buffers fold too.
Results of ``symmetric_quant`` on a weight with at most 8 bits are remembered as *integer
weights* ``q * s_o`` (q integers in [-127, 127], s_o per output channel), which float
convs/dense layers store as ``i8`` plus an f32 scale (4x smaller than fp32; the runtime's
``q * s_o`` in float32 is the very product the quantizer computed, so it is exact).
Evaluation runs the same torch op on the same values, so folding is exact.
"""

from __future__ import annotations

import torch

# 1-bit quantizers whose constant result is a binary weight s_o * sign(w).
SIGN_WEIGHT_OPS = frozenset({
    "bnnkit.ste_sign.default", "bnnkit.approx_sign.default", "bnnkit.swish_sign.default",
    "bnnkit.magnitude_aware_sign.default", "bnnkit.clipped_sign.default",
})


def _leaves(a):
    if isinstance(a, (list, tuple)):
        for x in a:
            yield from _leaves(x)
    elif isinstance(a, dict):
        for x in a.values():
            yield from _leaves(x)
    else:
        yield a


def is_foldable(args, kwargs) -> bool:
    """True when no argument is a lowered activation and at least one is a tensor."""
    leaves = list(_leaves((args, kwargs)))
    if any(not isinstance(x, (torch.Tensor, int, float, bool, str, type(None), torch.dtype,
                              torch.device, torch.layout, torch.memory_format)) for x in leaves):
        return False
    return any(isinstance(x, torch.Tensor) for x in leaves)


def fold_node(node, args, kwargs, binary_weights: set, int_weights: dict | None = None):
    """The folded result of ``node`` (a tensor), or None when it has activation inputs.

    ``binary_weights`` collects the ids of results of 1-bit weight quantizers,
    ``int_weights`` maps the ids of 8-bit-or-less symmetric_quant results to (q, s_o).
    """
    if not is_foldable(args, kwargs):
        return None
    with torch.no_grad():
        out = node.target(*args, **kwargs)
    if str(node.target) in SIGN_WEIGHT_OPS and isinstance(out, torch.Tensor):
        binary_weights.add(id(out))
    if str(node.target) == "bnnkit.symmetric_quant.default" and int_weights is not None:
        split = integer_split(out, *args, **kwargs)
        if split is not None:
            int_weights[id(out)] = split
    return out


def integer_split(out, x, bits=8, per_channel=False, bound=None):
    """(q int8 array, s_o float32 (O,)) with ``out == q * s_o`` exactly, recomputed as the
    quantizer's forward does; None for more than 8 bits or a weight of rank < 2."""
    from bnnkit.quantizers.multibit import symmetric_scale

    if bits > 8 or x.dim() < 2 or not isinstance(out, torch.Tensor):
        return None
    with torch.no_grad():
        s = symmetric_scale(x, bits, per_channel, bound)
        qmax = 2 ** (bits - 1) - 1
        q = torch.round(x / torch.where(s > 0, s, torch.ones_like(s))).clamp(-qmax, qmax)
        s_o = s.reshape(-1).expand(x.shape[0]) if s.numel() == 1 else s.reshape(-1)
        if s_o.numel() != x.shape[0] or not torch.equal(q * s_o.reshape(-1, *[1] * (x.dim() - 1)), out):
            return None
    return q.numpy().astype("int8"), s_o.numpy().astype("float32").copy()
