"""Fold an inference batch-norm into the float conv2d/dense before it.

``BN(conv(x, w) + c) = conv(x, w * s_o) + (c * s_o + t_o)`` with ``s = gamma /
sqrt(var + eps)``, ``t = beta - mean * s`` (the ``batch_norm`` op's scale and shift),
when the BN is the conv's only reader. An ``i8`` weight ``q * m_o`` keeps its integers and
folds into its scale: ``m_o * s_o``. Results differ from PyTorch's by float rounding
only (the products are reassociated). A BN that cannot fold stays a ``batch_norm`` op.
Reference: Jacob et al., arXiv 1712.05877, section 3.2 (folding BN into weights).
"""

from __future__ import annotations

import numpy as np

from ..ir import Graph, Op
from ._util import iterate


def rewrite(g: Graph, op: Op) -> bool:
    if op.op not in ("conv2d", "dense"):
        return False
    user = g.only_consumer(op.output)
    if user is None or user.op != "batch_norm" or user.inputs[0] is not op.output:
        return False
    s, t = user.inputs[1].data.astype(np.float32), user.inputs[2].data.astype(np.float32)
    w, base = op.inputs[1], op.output.name
    if w.dtype == "i8":  # x, q, scale, [bias]: the integers stay, the scale takes s
        weight = [w, g.const(f"{base}_weight_scale", op.inputs[2].data * s)]
        rest = op.inputs[3:]
    else:
        weight = [g.const(f"{base}_weight", (w.data * s.reshape((-1,) + (1,) * (w.data.ndim - 1))).astype(np.float32))]
        rest = op.inputs[2:]
    b = rest[0].data if rest else np.zeros(w.shape[0], np.float32)
    op.inputs = [op.inputs[0], *weight, g.const(f"{base}_bias", b * s + t)]
    g.replace_uses(user.output, op.output)
    g.remove(user)
    return True


def run(g: Graph) -> Graph:
    return iterate(g, rewrite)
