"""Fold the per-channel shifts around a ``dprelu`` into its ``b_x`` / ``b_y`` inputs.

``dprelu(x; b_x, pos, neg, b_y)``: ``t = x - b_x``, ``y = (pos if t >= 0 else neg) * t - b_y``
(docs/format.md section 8). PokeBNN's DPReLU ``where(u >= 0, pos, neg) * u - b_y`` with
``u = x - b_x`` lowers to ``add(x, -b_x) -> dprelu(., 0, pos, neg, 0) -> add(., -b_y)``:

* ``add(x, c) -> dprelu`` with ``b_x = 0``: ``t = (x + c) - 0 = x - (-c)``, so ``b_x := -c``;
* ``dprelu -> add(., c)`` with ``b_y = 0``: ``(s t - 0) + c = s t - (-c)``, so ``b_y := -c``.

Exact: negation is exact and ``x - (-c)`` rounds as ``x + c``. Each add must be the only
reader of its input's producer chain link (the add's output only read by the dprelu, the
dprelu's output only read by the add).
"""

from __future__ import annotations

import numpy as np

from ..ir import Graph, Op
from ._util import add_shift, iterate


def rewrite(g: Graph, op: Op) -> bool:
    if op.op != "dprelu":
        return False
    x, bx, pos, neg, by = op.inputs
    prev = x.producer
    if not np.any(bx.data) and prev is not None and g.only_consumer(x) is op:
        c = add_shift(prev, x.shape)
        if c is not None:
            op.inputs = [prev.inputs[0], g.const(f"{op.output.name}_shift_x", -c), pos, neg, by]
            return True
    nxt = g.only_consumer(op.output)
    if not np.any(by.data) and nxt is not None and nxt.inputs[0] is op.output:
        c = add_shift(nxt, op.output.shape)
        if c is not None:
            op.inputs = [op.inputs[0], op.inputs[1], pos, neg, g.const(f"{op.output.name}_shift_y", -c)]
            g.replace_uses(nxt.output, op.output)
            g.remove(nxt)
            return True
    return False


def run(g: Graph) -> Graph:
    return iterate(g, rewrite)
