"""Fuse ``add(x, c) -> prelu -> add(., d)`` into one ``rprelu``.

ReActNet's RPReLU (shift, PReLU, shift) lowers to three ops, each a full pass over the
activation. ``rprelu(x; gamma, beta, zeta)`` computes ``t = x - gamma``,
``y = (t if t >= 0 else beta * t) + zeta`` (docs/format.md section 8), so with
``gamma = -c``, ``beta`` = the PReLU slope and ``zeta = d`` it is the same three steps:
``x - (-c)`` rounds as ``x + c`` (negation is exact). Either shift may be missing
(gamma or zeta 0; ``+ 0`` changes at most the sign of a zero). Each add must be the only
reader of the value it passes on.
"""

from __future__ import annotations

import numpy as np

from ..ir import Graph, Op
from ._util import add_shift, iterate


def _slope(slope, channels: int) -> np.ndarray | None:
    """The prelu slope (a (C,) or (1,) constant on axis 1) as a (C,) vector."""
    if not slope.constant or slope.data.size not in (1, channels):
        return None
    return np.broadcast_to(slope.data.reshape(-1).astype(np.float32), (channels,)).copy()


def rewrite(g: Graph, op: Op) -> bool:
    if op.op != "prelu" or len(op.output.shape) < 2:
        return False
    x, slope = op.inputs
    beta = _slope(slope, op.output.shape[1])
    prev = x.producer
    c = add_shift(prev, x.shape) if prev is not None and g.only_consumer(x) is op else None
    nxt = g.only_consumer(op.output)
    d = add_shift(nxt, op.output.shape) if nxt is not None and nxt.inputs[0] is op.output else None
    if beta is None or (c is None and d is None):
        return False
    zeros = np.zeros(op.output.shape[1], np.float32)
    name = op.output.name
    gamma = zeros if c is None else -c
    zeta = zeros if d is None else d
    op.op = "rprelu"
    op.inputs = [x if c is None else prev.inputs[0], g.const(f"{name}_gamma", gamma),
                 g.const(f"{name}_beta", beta), g.const(f"{name}_zeta", zeta)]
    if d is not None:
        g.replace_uses(nxt.output, op.output)
        g.remove(nxt)
    return True


def run(g: Graph) -> Graph:
    return iterate(g, rewrite)
