"""Fuse relu / relu6 / hard_tanh after a binary layer into its output clamp.

``clamp(clamp(y, lo1, hi1), lo2, hi2) = clamp(y, max(lo1, lo2), min(hi1, hi2))`` when
the intervals overlap, so ``relu`` sets ``out_min = max(out_min, 0)``, ``relu6`` also
``out_max = min(out_max, 6)``, ``hard_tanh(min, max)`` both. Exact (a clamp of a float).
"""

from __future__ import annotations

from ..ir import Graph, Op
from ._util import BINARY_OPS, attr, bypass, iterate

_RANGES = {"relu": (0.0, float("inf")), "relu6": (0.0, 6.0)}


def _range(op: Op) -> tuple | None:
    if op.op == "hard_tanh":
        return float(op.attrs.get("min", -1.0)), float(op.attrs.get("max", 1.0))
    return _RANGES.get(op.op)


def rewrite(g: Graph, op: Op) -> bool:
    if op.op not in BINARY_OPS or op.output.dtype != "f32":
        return False
    user = g.only_consumer(op.output)
    rng = None if user is None else _range(user)
    if rng is None:
        return False
    lo, hi = max(attr(op, "out_min"), rng[0]), min(attr(op, "out_max"), rng[1])
    if lo > hi:
        return False
    op.attrs["out_min"], op.attrs["out_max"] = lo, hi
    bypass(g, user)
    return True


def run(g: Graph) -> Graph:
    return iterate(g, rewrite)
