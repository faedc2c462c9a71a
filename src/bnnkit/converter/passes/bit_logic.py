"""Run logic on packed bits: float arithmetic on dequantized +-1 maps becomes the packed
ops ``bxnor`` / ``bor`` / ``band`` and ``gather_channels`` on bits, and
``quantize(dequantize(x))`` becomes ``x``.

On a, b in {-1, +1} (+1 = true; a packed bit 1 is -1), as BoolNet writes its logic:

* ``a * b`` is XNOR(a, b)                                   -> ``bxnor`` (bit XOR);
* ``clamp(a + b + 1, -1, 1)`` is OR(a, b): sums -1, 1, 3     -> ``bor``  (bit AND);
* ``clamp(a + b - 1, -1, 1)`` is AND(a, b): sums -3, -1, 1   -> ``band`` (bit OR);
* a ``gather_channels`` of dequantized maps with no zero channel moves +-1 values only,
  so it equals the dequantized ``gather_channels`` of the bits;
* ``quantize(dequantize(x))`` is ``x`` (sign(+-1) = +-1).

All of these are exact: the float32 sums of small integers are exact, and each rewritten
op becomes a ``dequantize`` of the packed result, which the last rule then removes where
a sign follows.
"""

from __future__ import annotations

import numpy as np

from ..ir import Graph, Op, Value
from ._util import iterate


def _bits(v: Value) -> Value | None:
    """The bits value ``v`` dequantizes, or None."""
    p = v.producer
    return p.inputs[0] if p is not None and p.op == "dequantize" else None


def _scalar(v: Value) -> float | None:
    return float(v.data.reshape(-1)[0]) if v.constant and v.data.size == 1 else None


def _to_dequantize(g: Graph, op: Op, kind: str, inputs: list, attrs=None) -> None:
    """Make ``op`` the dequantize of a new packed ``kind`` op inserted just before it."""
    packed = g.add(kind, inputs, "bits", op.output.shape, attrs, name=op.name)
    g.ops.remove(packed.producer)
    g.ops.insert(g.ops.index(op), packed.producer)
    op.op, op.inputs, op.attrs = "dequantize", [packed], {}


def _or_and(op: Op) -> tuple | None:
    """(kind, a, b) when ``op`` is clamp(a + b +- 1, -1, 1) of dequantized a, b."""
    if op.op != "hard_tanh" or (op.attrs.get("min", -1.0), op.attrs.get("max", 1.0)) != (-1.0, 1.0):
        return None
    t = op.inputs[0].producer
    if t is None or t.op != "add" or _scalar(t.inputs[1]) not in (1.0, -1.0):
        return None
    s = t.inputs[0].producer
    if s is None or s.op != "add" or s.inputs[0].shape != s.inputs[1].shape:
        return None
    a, b = _bits(s.inputs[0]), _bits(s.inputs[1])
    if a is None or b is None or tuple(a.shape) != tuple(op.output.shape):
        return None
    return ("bor" if _scalar(t.inputs[1]) == 1.0 else "band"), a, b


def rewrite(g: Graph, op: Op) -> bool:
    if op.op == "quantize" and _bits(op.inputs[0]) is not None:
        g.replace_uses(op.output, _bits(op.inputs[0]))
        g.remove(op)
        return True
    if op.op == "mul" and op.inputs[0].shape == op.inputs[1].shape:
        a, b = _bits(op.inputs[0]), _bits(op.inputs[1])
        if a is not None and b is not None:
            _to_dequantize(g, op, "bxnor", [a, b])
            return True
    if op.op == "gather_channels" and not np.any(np.asarray(op.attrs["index"]) < 0):
        srcs = [_bits(v) for v in op.inputs]
        if all(s is not None for s in srcs):
            _to_dequantize(g, op, "gather_channels", srcs, dict(op.attrs))
            return True
    logic = _or_and(op)
    if logic is not None:
        _to_dequantize(g, op, logic[0], list(logic[1:]))
        return True
    return False


def run(g: Graph) -> Graph:
    return iterate(g, rewrite)
