"""Fold batch-norm and per-channel scales/shifts into a binary layer's output transform.

A ``bconv2d``/``bdense`` with a float output computes ``y = m * a + b`` from its integer
accumulator ``a`` (docs/format.md 8.1). A following per-channel affine map ``z = s y + t``
(inference batch norm, or a ``mul``/``add`` by a per-channel constant, e.g. XNOR-Net's
scales) folds into it: ``m' = s m``, ``b' = s b + t``. Patterns (each op the only reader
of the previous one, the binary op's output unclamped):

* ``binary -> batch_norm | mul(const) | add(const)``: fold as above;
* ``binary -> relu -> batch_norm`` (QuickNet's conv -> ReLU -> BN) with ``m > 0`` and
  ``b = 0``: ``relu(m a) = m max(a, 0)``, so ``acc_min = 0`` (an integer clamp), then fold;
* ``binary -> maxpool2d -> batch_norm`` with every ``s > 0``: an increasing affine map
  commutes with max (float rounding is monotone too), so the BN folds before the pool.

Float results differ from PyTorch's only by rounding (``(s m) a + (s b + t)`` vs
``s (m a + b) + t``); the integer accumulator is exact.
Reference: Larq Compute Engine, ``mlir/transforms/fuse_padding`` / bconv output
transforms; Umuroglu et al., "FINN", arXiv 1612.07119 (thresholds from BN).
"""

from __future__ import annotations

import numpy as np

from ..ir import Graph, Op
from ._util import BINARY_OPS, attr, channel_vector, clamps_default, iterate, set_transform, transform


def _affine(g: Graph, user: Op, out_shape) -> tuple | None:
    """(s, t) of a per-channel affine op reading a value of ``out_shape``, or None."""
    if user.op == "batch_norm":
        return user.inputs[1].data.astype(np.float32), user.inputs[2].data.astype(np.float32)
    if user.op in ("mul", "add") and len(user.inputs) == 2:
        vec = channel_vector(user.inputs[1], out_shape)
        if vec is None:
            return None
        c = out_shape[1]
        return (vec, np.zeros(c, np.float32)) if user.op == "mul" else (np.ones(c, np.float32), vec)
    return None


def _fold(g: Graph, op: Op, s: np.ndarray, t: np.ndarray) -> None:
    m, b = transform(op)
    set_transform(g, op, (s * m).astype(np.float32), (s * b + t).astype(np.float32))


def rewrite(g: Graph, op: Op) -> bool:
    if op.op not in BINARY_OPS or op.output.dtype != "f32" or not clamps_default(op):
        return False
    user = g.only_consumer(op.output)
    if user is None:
        return False
    affine = _affine(g, user, op.output.shape)
    if affine is not None and user.inputs[0] is op.output:
        _fold(g, op, *affine)
        g.replace_uses(user.output, op.output)
        g.remove(user)
        return True
    nxt = g.only_consumer(user.output)
    if nxt is None or nxt.op != "batch_norm":
        return False
    s, t = _affine(g, nxt, user.output.shape)
    m, b = transform(op)
    if user.op == "relu" and np.all(m > 0) and np.all(b == 0) and attr(op, "acc_max") >= 0:
        op.attrs["acc_min"] = max(attr(op, "acc_min"), 0)
        _fold(g, op, s, t)
        g.replace_uses(nxt.output, op.output)
        g.remove(user)
        g.remove(nxt)
        return True
    if user.op == "maxpool2d" and np.all(s > 0):
        _fold(g, op, s, t)
        g.replace_uses(nxt.output, user.output)
        g.remove(nxt)
        return True
    return False


def run(g: Graph) -> Graph:
    return iterate(g, rewrite)
