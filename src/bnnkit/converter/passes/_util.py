"""Helpers shared by the passes: per-channel constants and binary output transforms."""

from __future__ import annotations

import math

import numpy as np

from ..ir import Graph, Op, Value

BINARY_OPS = ("bconv2d", "bdense")
TRANSFORM_DEFAULTS = {"acc_min": -(1 << 31), "acc_max": (1 << 31) - 1,
                      "out_min": -math.inf, "out_max": math.inf}


def channel_vector(value: Value, out_shape: tuple) -> np.ndarray | None:
    """The constant ``value`` as a (C,) vector when it broadcasts to ``out_shape`` varying
    only along axis 1 (shapes (C,1,1), (1,C,1,1), (1,), ...); else None."""
    if not value.constant or len(out_shape) < 2:
        return None
    shape = (1,) * (len(out_shape) - value.data.ndim) + tuple(value.data.shape)
    if len(shape) != len(out_shape):
        return None
    if any(d != 1 for i, d in enumerate(shape) if i != 1) or shape[1] not in (1, out_shape[1]):
        return None
    vec = value.data.reshape(-1).astype(np.float32)
    return np.broadcast_to(vec, (out_shape[1],)).copy()


def add_shift(add: Op | None, shape) -> np.ndarray | None:
    """The per-channel constant c of ``add(x, c)`` (x not a constant) as a (C,) vector, or
    None when ``add`` is not such an op."""
    if add is None or add.op != "add" or len(add.inputs) != 2 or add.inputs[0].constant:
        return None
    return channel_vector(add.inputs[1], shape)


def transform(op: Op) -> tuple[np.ndarray, np.ndarray]:
    """(multiplier, bias) of a binary op, defaults 1 and 0."""
    o = op.inputs[1].shape[0]
    m = op.inputs[2].data if len(op.inputs) > 2 else np.ones(o, np.float32)
    b = op.inputs[3].data if len(op.inputs) > 3 else np.zeros(o, np.float32)
    return m.astype(np.float32), b.astype(np.float32)


def set_transform(g: Graph, op: Op, m: np.ndarray, b: np.ndarray) -> None:
    """Replace a binary op's multiplier and bias constants."""
    base = op.output.name
    op.inputs = op.inputs[:2] + [g.const(f"{base}_multiplier", m.astype(np.float32)),
                                 g.const(f"{base}_bias", b.astype(np.float32))]


def attr(op: Op, key: str):
    return op.attrs.get(key, TRANSFORM_DEFAULTS[key])


def clamps_default(op: Op) -> bool:
    """True when the op's float output is not clamped (out_min/out_max at their defaults)."""
    return attr(op, "out_min") == -math.inf and attr(op, "out_max") == math.inf


def bypass(g: Graph, op: Op) -> None:
    """Remove a single-input op, making its readers read its input."""
    g.replace_uses(op.output, op.inputs[0])
    g.remove(op)


def iterate(g: Graph, rewrite) -> Graph:
    """Apply ``rewrite(g, op) -> bool`` to ops until none changes anything."""
    changed = True
    while changed:
        changed = any(rewrite(g, op) for op in list(g.ops) if op in g.ops)
    return g
