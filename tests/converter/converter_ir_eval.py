"""A float64 torch evaluator of converter IR graphs (docs/format.md section 8 semantics),
the oracle of the per-pass tests: a pass must not change what a graph computes.
bits values are held as +-1 float tensors."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def _sign(x):
    return torch.where(x < 0, -1.0, 1.0).to(torch.float64)


def _c(v):
    return torch.from_numpy(np.asarray(v.data, np.float64))


def _pads(a):
    t, l, b, r = a.get("pad", [0, 0, 0, 0])
    return [l, r, t, b]


def _transform(acc, op, shape):
    view = (1, -1) + (1,) * (acc.dim() - 2)
    m = _c(op.inputs[2]).reshape(view) if len(op.inputs) > 2 else 1.0
    b = _c(op.inputs[3]).reshape(view) if len(op.inputs) > 3 else 0.0
    a = op.attrs
    acc = acc.clamp(a.get("acc_min", -(2**31)), a.get("acc_max", 2**31 - 1))
    y = (m * acc + b).clamp(a.get("out_min", -np.inf), a.get("out_max", np.inf))
    return _sign(y) if op.output.dtype == "bits" else y


def _bconv(x, op):
    a = op.attrs
    xp = F.pad(x, _pads(a), value=float(a.get("pad_value", 1)))
    acc = F.conv2d(xp, _c(op.inputs[1]), None, a.get("stride", [1, 1]), 0, a.get("dilation", [1, 1]), a.get("groups", 1))
    return _transform(acc, op, None)


def _pool(x, op, fn):
    a = op.attrs
    k = a["kernel"]
    s = a.get("stride") or k
    xp = F.pad(x, _pads(a), value=-np.inf)
    return fn(xp, k, s)


def _weight(op):
    """(weight, bias or None) of conv2d/dense: an i8 weight is q * scale (input 2)."""
    w, rest = _c(op.inputs[1]), op.inputs[2:]
    if op.inputs[1].dtype == "i8":
        w = w * _c(rest[0]).reshape((-1,) + (1,) * (w.dim() - 1))
        rest = rest[1:]
    return w, (_c(rest[0]) if rest else None)


def _eval(op, xs):
    a, name = op.attrs, op.op
    if name == "quantize":
        return _sign(xs[0])
    if name == "dequantize":
        return xs[0]
    if name == "bconv2d":
        return _bconv(xs[0], op)
    if name == "bdense":
        return _transform(xs[0] @ _c(op.inputs[1]).T, op, None)
    if name in ("maxpool2d", "bmaxpool2d"):
        return _pool(xs[0], op, F.max_pool2d)
    if name == "conv2d":
        w, b = _weight(op)
        return F.conv2d(F.pad(xs[0], _pads(a)), w, b, a.get("stride", [1, 1]), 0,
                        a.get("dilation", [1, 1]), a.get("groups", 1))
    if name == "dense":
        w, b = _weight(op)
        return xs[0] @ w.T + (0.0 if b is None else b)
    view = (1, -1) + (1,) * (xs[0].dim() - 2)
    if name == "batch_norm":
        return xs[0] * xs[1].reshape(view) + xs[2].reshape(view)
    if name == "add":
        return xs[0] + xs[1]
    if name == "mul":
        return xs[0] * xs[1]
    if name == "relu":
        return xs[0].clamp_min(0)
    if name == "relu6":
        return xs[0].clamp(0, 6)
    if name == "hard_tanh":
        return xs[0].clamp(a.get("min", -1.0), a.get("max", 1.0))
    return _eval_more(op, xs, view)


def _eval_more(op, xs, view):
    a, name = op.attrs, op.op
    if name in ("bxnor", "bor", "band"):  # on +-1 values, +1 = true
        both = xs[0] + xs[1]
        return {"bxnor": xs[0] * xs[1], "bor": torch.where(both > -2, 1.0, -1.0).double(),
                "band": torch.where(both == 2, 1.0, -1.0).double()}[name]
    if name == "gather_channels":
        cat = torch.cat(xs + [torch.zeros_like(xs[0][:, :1])], dim=1)  # index -1: the zero channel
        return cat[:, list(a["index"])]
    if name == "rprelu":
        t = xs[0] - xs[1].reshape(view)
        return torch.where(t >= 0, t, xs[2].reshape(view) * t) + xs[3].reshape(view)
    if name == "prelu":
        return torch.where(xs[0] >= 0, xs[0], xs[1].reshape(view if xs[1].numel() > 1 else (1,)) * xs[0])
    if name == "dprelu":
        t = xs[0] - xs[1].reshape(view)
        return torch.where(t >= 0, xs[2].reshape(view), xs[3].reshape(view)) * t - xs[4].reshape(view)
    raise NotImplementedError(name)


def evaluate(g, x: np.ndarray) -> list:
    """Run IR graph ``g`` on ``x`` (one input); returns the outputs as float64 numpy arrays."""
    env = {id(g.inputs[0]): torch.from_numpy(np.asarray(x, np.float64))}
    for op in g.ops:
        xs = [env[id(v)] if id(v) in env else _c(v) for v in op.inputs]
        env[id(op.output)] = _eval(op, xs)
    return [env[id(v)].numpy() for v in g.outputs]


def tiny_binary_graph(rng, c=8, o=4, hw=6, consumers=("batch_norm",)):
    """input (1, c, hw, hw) -> quantize -> bconv2d 3x3 pad 1 (pad_value 1) -> value y.

    Returns (graph, y); the caller appends ops reading y and sets the outputs."""
    from bnnkit.converter.ir import Graph, Value

    g = Graph(inputs=[], outputs=[])
    x = Value(g.unique("x"), "f32", (1, c, hw, hw))
    g.inputs.append(x)
    q = g.add("quantize", [x], "bits", x.shape)
    w = g.const("w", np.where(rng.standard_normal((o, c, 3, 3)) < 0, -1.0, 1.0), "bits")
    y = g.add("bconv2d", [q, w], "f32", (1, o, hw, hw), {"pad": [1, 1, 1, 1], "pad_value": 1})
    return g, y


def bn_consts(g, rng, o, positive=True):
    s = rng.uniform(0.5, 2.0, o) * (1 if positive else rng.choice([-1, 1], o))
    return g.const("scale", s), g.const("shift", rng.standard_normal(o))
