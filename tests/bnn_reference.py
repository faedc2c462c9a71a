"""Numpy reference implementations of the .bnn ops (the oracle for the runtime tests) and a
tiny graph builder. Inputs and outputs in PyTorch order; see docs/format.md section 8."""

from __future__ import annotations

import numpy as np

from bnnkit.format.builder import Builder


def sign(x):
    """+1 where x >= 0 else -1 (sign(0) = +1)."""
    return np.where(np.asarray(x) >= 0, 1.0, -1.0)


def _out_size(size, k, s, d, lo, hi):
    return (size + lo + hi - d * (k - 1) - 1) // s + 1


def conv2d(x, w, b=None, stride=(1, 1), pad=(0, 0, 0, 0), dilation=(1, 1), groups=1, pad_value=0.0):
    """PyTorch conv2d (cross-correlation) in float64 with constant padding ``pad_value``."""
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad[0], pad[2]), (pad[1], pad[3])), constant_values=pad_value)
    oh = _out_size(h, kh, stride[0], dilation[0], pad[0], pad[2])
    ow = _out_size(wd, kw, stride[1], dilation[1], pad[1], pad[3])
    out = np.zeros((n, o, oh, ow))
    og = o // groups
    for g in range(groups):
        xs = xp[:, g * cg:(g + 1) * cg]
        for ky in range(kh):
            for kx in range(kw):
                y0, x0 = ky * dilation[0], kx * dilation[1]
                patch = xs[:, :, y0:y0 + (oh - 1) * stride[0] + 1:stride[0], x0:x0 + (ow - 1) * stride[1] + 1:stride[1]]
                out[:, g * og:(g + 1) * og] += np.einsum("nchw,oc->nohw", patch, w[g * og:(g + 1) * og, :, ky, kx])
    if b is not None:
        out += np.asarray(b, np.float64)[None, :, None, None]
    return out


def transform(acc, m=None, b=None, acc_min=-(2**31), acc_max=2**31 - 1, out_min=-np.inf, out_max=np.inf, axis=1):
    """docs/format.md 8.1: y = clamp(m * clamp(acc) + b, out_min, out_max) in float32."""
    shape = [1] * acc.ndim
    shape[axis] = acc.shape[axis]
    m = np.ones(acc.shape[axis], np.float32) if m is None else np.asarray(m, np.float32)
    b = np.zeros(acc.shape[axis], np.float32) if b is None else np.asarray(b, np.float32)
    a = np.clip(acc, acc_min, acc_max).astype(np.float32)
    y = m.reshape(shape) * a + b.reshape(shape)
    return np.clip(y, np.float32(out_min), np.float32(out_max)).astype(np.float32)


def transform_bits(acc, m=None, b=None, acc_min=-(2**31), acc_max=2**31 - 1, out_min=-np.inf, out_max=np.inf,
                   axis=1):
    """docs/format.md 8.1, bits output: -1 where clamp(m * clamp(acc) + b) < 0 exactly
    (float64: m * a is exact, the rounded sum keeps the exact sign), else +1."""
    shape = [1] * acc.ndim
    shape[axis] = acc.shape[axis]
    m = np.ones(acc.shape[axis]) if m is None else np.asarray(m, np.float32).astype(np.float64)
    b = np.zeros(acc.shape[axis]) if b is None else np.asarray(b, np.float32).astype(np.float64)
    y = m.reshape(shape) * np.clip(acc, acc_min, acc_max) + b.reshape(shape)
    y = np.clip(y, float(np.float32(out_min)), float(np.float32(out_max)))
    return np.where(y < 0, -1.0, 1.0).astype(np.float32)


def bconv2d(x, w, m=None, b=None, stride=(1, 1), pad=(0, 0, 0, 0), dilation=(1, 1), groups=1, pad_value=1,
            bits_out=False, **clamps):
    acc = conv2d(sign(x), sign(w), None, stride, pad, dilation, groups, float(pad_value))
    return transform_bits(acc, m, b, **clamps) if bits_out else transform(acc, m, b, **clamps)


def pool(x, kernel, stride=None, pad=(0, 0, 0, 0), mode="max", count_include_pad=True):
    """max/avg pooling; padding taps are ignored by max and counted (or not) by avg."""
    stride = stride or kernel
    x = np.asarray(x, np.float64)
    n, c, h, w = x.shape
    widths = ((0, 0), (0, 0), (pad[0], pad[2]), (pad[1], pad[3]))
    xp = np.pad(x, widths, constant_values=-np.inf if mode == "max" else 0.0)
    ones = np.pad(np.ones((h, w)), widths[2:])
    oh = _out_size(h, kernel[0], stride[0], 1, pad[0], pad[2])
    ow = _out_size(w, kernel[1], stride[1], 1, pad[1], pad[3])
    out = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            ys, xs = slice(i * stride[0], i * stride[0] + kernel[0]), slice(j * stride[1], j * stride[1] + kernel[1])
            win = xp[:, :, ys, xs]
            if mode == "max":
                out[:, :, i, j] = win.max(axis=(2, 3))
            else:
                div = kernel[0] * kernel[1] if count_include_pad else ones[ys, xs].sum()
                out[:, :, i, j] = win.sum(axis=(2, 3)) / div
    return out


def fake_quant(x, scale, qmin, qmax, zero_point=0):
    s = np.float32(scale) if np.ndim(scale) == 0 else np.asarray(scale, np.float32).reshape((1, -1) + (1,) * (x.ndim - 2))
    q = np.round(np.asarray(x, np.float32) / s)
    return ((np.clip(q + np.float32(zero_point), qmin, qmax) - np.float32(zero_point)) * s).astype(np.float32)


class Graph(Builder):
    """The public builder with the tests' model name; ``encode()`` returns the file bytes."""

    def __init__(self):
        super().__init__(name="test")

    def encode(self) -> bytes:
        return self.write(None)


def group_mean(x, group):
    """docs/format.md group_mean: consecutive channel groups summed in order in float32, / g."""
    x = np.asarray(x, np.float32)
    parts = x.reshape(x.shape[0], x.shape[1] // group, group, *x.shape[2:])
    acc = parts[:, :, 0].copy()
    for j in range(1, group):
        acc = (acc + parts[:, :, j]).astype(np.float32)
    return (acc / np.float32(group)).astype(np.float32)


def gather_channels(xs, index):
    """Channel index[j] of the inputs concatenated along axis 1 (-1: zero)."""
    cat = np.concatenate([np.asarray(x, np.float32) for x in xs] + [np.zeros_like(xs[0][:, :1], np.float32)], axis=1)
    return cat[:, list(index)]


def dynamic_fake_quant(x, qmax, signed=True, per_sample=False):
    """docs/format.md dynamic_fake_quant in float32 (the range from x itself)."""
    x = np.asarray(x, np.float32)
    axes = tuple(range(1, x.ndim)) if per_sample else None
    with np.errstate(invalid="ignore", divide="ignore"):
        m = np.abs(x).max(axis=axes, keepdims=True) if signed else np.maximum(x.max(axis=axes, keepdims=True), 0)
        s = (m / np.float32(qmax)).astype(np.float32)
        safe = np.where(s > 0, s, np.float32(1))
        q = np.clip(np.round(x / safe), -qmax if signed else 0, qmax) * s
    return np.where(np.isnan(x), x, q).astype(np.float32)
