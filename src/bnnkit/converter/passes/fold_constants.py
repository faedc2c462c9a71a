"""Constant folding during lowering: evaluate a node whose tensor inputs are all constants.

Weight quantizers are folded here: ``ste_sign(w)`` becomes the constant +-1 tensor and
``magnitude_aware_sign(w)`` the constant ``s_o * sign(w)``. Results of 1-bit quantizers
are remembered (by object id) as *binary weights*, which the lowering of conv2d/linear
turns into packed ``bits`` weights with ``s_o`` as the multiplier -- 32x smaller than
fp32. Views of parameters (``reshape``, ``view``) and arithmetic on buffers fold too.
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


def fold_node(node, args, kwargs, binary_weights: set):
    """The folded result of ``node`` (a tensor), or None when it has activation inputs.

    ``binary_weights`` collects the ids of results of 1-bit weight quantizers.
    """
    if not is_foldable(args, kwargs):
        return None
    with torch.no_grad():
        out = node.target(*args, **kwargs)
    if str(node.target) in SIGN_WEIGHT_OPS and isinstance(out, torch.Tensor):
        binary_weights.add(id(out))
    return out
