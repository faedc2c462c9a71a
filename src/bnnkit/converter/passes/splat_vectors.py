"""Store a binary layer's multiplier or bias once when it is the same for every channel.

A bconv2d/bdense multiplier or bias of shape (O,) whose values are all equal (bit for
bit) becomes a (1,) constant, which the format applies to every channel (docs/format.md
section 8): the same numbers, O - 1 fewer stored. This happens for batch-norms that are
still at their initial statistics and for scales shared by all channels.
"""

from __future__ import annotations

import numpy as np

from ..ir import Graph, Op
from ._util import BINARY_OPS, iterate


def _splat(v) -> bool:
    data = None if not v.constant else np.asarray(v.data)
    if data is None or data.ndim != 1 or data.size < 2:
        return False
    bits = data.astype(np.float32).view(np.uint32)
    return bool(np.all(bits == bits[0]))


def rewrite(g: Graph, op: Op) -> bool:
    if op.op not in BINARY_OPS:
        return False
    for i in (2, 3):
        if i < len(op.inputs) and _splat(op.inputs[i]) and g.only_consumer(op.inputs[i]) is op:
            v = op.inputs[i]
            op.inputs[i] = g.const(f"{v.name}_splat", np.asarray(v.data, np.float32)[:1].copy())
            return True
    return False


def run(g: Graph) -> Graph:
    return iterate(g, rewrite)
