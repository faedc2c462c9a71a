"""Op table of the ``.bnn`` format: codes, input counts, attributes and shape contracts.

Each op is one :class:`OpSpec`; its ``infer`` function checks the op's contract on the
input dtypes/shapes (PyTorch order) and returns the output dtype(s) and shape. The C++
loader (``csrc/runtime/graph.cc``) implements the same contracts; docs/format.md
section 8 is the specification both follow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

from bnnkit.format.spec import INT32_MAX, INT32_MIN

REQUIRED = object()
_INF = float("inf")


class ContractError(ValueError):
    """An op's contract is violated (the reader prefixes the node index and name)."""


@dataclass(frozen=True)
class Arg:
    """What the inference sees of one input: dtype, logical shape, constant or not."""

    dtype: str
    shape: tuple[int, ...]
    const: bool


@dataclass(frozen=True)
class OpSpec:
    """One op: code, name, input count range, attributes name -> (type, default), infer."""

    code: int
    name: str
    min_inputs: int
    max_inputs: int
    attrs: dict = field(default_factory=dict)
    infer: Callable = None


def _need(cond: bool, msg: str) -> None:
    if not cond:
        raise ContractError(msg)


def _dtype(arg: Arg, i: int, allowed: tuple[str, ...]) -> None:
    ok = arg.dtype in allowed or ("f32" in allowed and arg.dtype == "f16" and arg.const)
    _need(ok, f"input {i} has dtype {arg.dtype}, expected {' or '.join(allowed)}")


def _const(arg: Arg, i: int) -> None:
    _need(arg.const, f"input {i} must be a constant")


def _rank(arg: Arg, i: int, ranks: tuple[int, ...]) -> None:
    _need(len(arg.shape) in ranks, f"input {i} has shape {arg.shape}, expected rank {ranks}")


def _vector(args: list[Arg], first: int, channels: int, allow_one: bool = False) -> None:
    """Inputs ``first..`` must be f32 constants of shape (channels,) (or (1,))."""
    for i in range(first, len(args)):
        _dtype(args[i], i, ("f32",))
        _const(args[i], i)
        ok = args[i].shape == (channels,) or (allow_one and args[i].shape == (1,))
        _need(ok, f"input {i} has shape {args[i].shape}, expected ({channels},)")


def _pair(a: dict, key: str) -> tuple[int, int]:
    v = a[key]
    _need(len(v) == 2 and all(1 <= x <= 65535 for x in v), f"attribute '{key}' must be 2 ints in [1, 65535], got {v}")
    return int(v[0]), int(v[1])


def _pads(a: dict) -> tuple[int, int, int, int]:
    v = a["pad"]
    _need(len(v) == 4 and all(0 <= x <= 65535 for x in v), f"attribute 'pad' must be 4 ints in [0, 65535], got {v}")
    return tuple(int(x) for x in v)


def _spatial(h: int, w: int, k, s, d, p) -> tuple[int, int]:
    """Output size: floor((H + top + bottom - d*(K-1) - 1) / s) + 1, required >= 1."""
    out = []
    for size, kk, ss, dd, lo, hi in ((h, k[0], s[0], d[0], p[0], p[2]), (w, k[1], s[1], d[1], p[1], p[3])):
        span = size + lo + hi - dd * (kk - 1) - 1
        _need(span >= 0, f"window {kk} (dilation {dd}) larger than padded input {size + lo + hi}")
        out.append(span // ss + 1)
    return out[0], out[1]


def _transform_attrs(a: dict) -> None:
    _need(INT32_MIN <= a["acc_min"] <= a["acc_max"] <= INT32_MAX, "need int32 acc_min <= acc_max")
    _need(a["out_min"] <= a["out_max"], "need out_min <= out_max (not NaN)")


def _conv_common(args, a, binary: bool):
    x, w = args[0], args[1]
    _dtype(x, 0, ("bits",) if binary else ("f32",))
    _dtype(w, 1, ("bits",) if binary else ("f32", "i8"))
    _const(w, 1)
    _rank(x, 0, (4,))
    _rank(w, 1, (4,))
    g = a["groups"]
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    _need(g >= 1 and c % g == 0 and o % g == 0, f"groups {g} must divide C={c} and O={o}")
    _need(cg * g == c, f"weight has {cg} input channels per group, expected {c // g}")
    s, d, p = _pair(a, "stride"), _pair(a, "dilation"), _pads(a)
    ho, wo = _spatial(h, wd, (kh, kw), s, d, p)
    return (n, o, ho, wo), o


def _infer_bconv2d(args, a):
    shape, o = _conv_common(args, a, True)
    _need(a["pad_value"] in (0, 1), f"attribute 'pad_value' must be 0 or 1, got {a['pad_value']}")
    _transform_attrs(a)
    _vector(args, 2, o, allow_one=True)
    return ("f32", "bits"), shape


def _infer_bdense(args, a):
    x, w = args[0], args[1]
    for i in (0, 1):
        _dtype(args[i], i, ("bits",))
        _rank(args[i], i, (2,))
    _const(w, 1)
    _need(x.shape[1] == w.shape[1], f"input has K={x.shape[1]}, weight has K={w.shape[1]}")
    _transform_attrs(a)
    _vector(args, 2, w.shape[0], allow_one=True)
    return ("f32", "bits"), (x.shape[0], w.shape[0])


def _infer_pool(args, a, dtype: str):
    x = args[0]
    _dtype(x, 0, (dtype,))
    _rank(x, 0, (4,))
    k = _pair(a, "kernel")
    s = _pair(a, "stride") if a["stride"] else k
    p = _pads(a)
    _need(p[0] < k[0] and p[2] < k[0] and p[1] < k[1] and p[3] < k[1], "padding must be smaller than the kernel")
    ho, wo = _spatial(x.shape[2], x.shape[3], k, s, (1, 1), p)
    return (dtype,), (x.shape[0], x.shape[1], ho, wo)


def _float_weight_inputs(args, o: int) -> None:
    """After a float weight: [bias]; after an i8 weight: scale (O,) then [bias]."""
    if args[1].dtype == "i8":
        _need(len(args) >= 3, "an i8 weight needs a per-output-channel scale as input 2")
    else:
        _need(len(args) <= 3, f"{len(args)} inputs, expected 2..3 with an f32 weight (4 only with an i8 weight)")
    _vector(args, 2, o)


def _infer_conv2d(args, a):
    shape, o = _conv_common(args, a, False)
    _float_weight_inputs(args, o)
    return ("f32",), shape


def _infer_dense(args, a):
    x, w = args[0], args[1]
    _dtype(x, 0, ("f32",))
    _dtype(w, 1, ("f32", "i8"))
    for i in (0, 1):
        _rank(args[i], i, (2,))
    _const(w, 1)
    _need(x.shape[1] == w.shape[1], f"input has K={x.shape[1]}, weight has K={w.shape[1]}")
    _float_weight_inputs(args, w.shape[0])
    return ("f32",), (x.shape[0], w.shape[0])


def _per_channel(args, allow_one=False):
    x = args[0]
    _dtype(x, 0, ("f32",))
    _need(len(x.shape) >= 2, f"input 0 has shape {x.shape}, expected (N, C, ...)")
    _vector(args, 1, x.shape[1], allow_one)
    return ("f32",), x.shape


def _broadcastable(a: tuple, b: tuple) -> bool:
    if len(b) > len(a):
        return False
    return all(db in (1, da) for da, db in zip(a[len(a) - len(b):], b))


def _infer_binary(args, a):
    for i in (0, 1):
        _dtype(args[i], i, ("f32",))
    _need(_broadcastable(args[0].shape, args[1].shape),
          f"input 1 shape {args[1].shape} does not broadcast to input 0 shape {args[0].shape}")
    return ("f32",), args[0].shape


def _axis(axis: int, ndim: int) -> int:
    _need(-ndim <= axis < ndim, f"axis {axis} out of range for rank {ndim}")
    return axis % ndim


def _infer_concat(args, a):
    first = args[0].shape
    ax = _axis(a["axis"], len(first))
    total = 0
    for i, arg in enumerate(args):
        _dtype(arg, i, ("f32",))
        same = len(arg.shape) == len(first) and all(
            d == e for j, (d, e) in enumerate(zip(arg.shape, first)) if j != ax)
        _need(same, f"input {i} shape {arg.shape} does not match {first} outside axis {ax}")
        total += arg.shape[ax]
    _need(total <= (1 << 31) - 1, "concatenated axis too large")
    return ("f32",), first[:ax] + (total,) + first[ax + 1:]


def _infer_global(args, a):
    x = args[0]
    _dtype(x, 0, ("f32",))
    _rank(x, 0, (4,))
    _need(a["keepdims"] in (0, 1), "attribute 'keepdims' must be 0 or 1")
    n, c = x.shape[:2]
    return ("f32",), ((n, c, 1, 1) if a["keepdims"] else (n, c))


def _infer_unary(args, a):
    _dtype(args[0], 0, ("f32",))
    return ("f32",), args[0].shape


def _infer_hard_tanh(args, a):
    _need(a["min"] <= a["max"], "need min <= max (not NaN)")
    return _infer_unary(args, a)


def _infer_reshape(args, a):
    _dtype(args[0], 0, ("f32",))
    return ("f32",), None  # the declared output shape, same element count


def _infer_flatten(args, a):
    x = args[0]
    _dtype(x, 0, ("f32",))
    sd = _axis(a["start_dim"], len(x.shape))
    return ("f32",), x.shape[:sd] + (math.prod(x.shape[sd:]),)


def _infer_softmax(args, a):
    _dtype(args[0], 0, ("f32",))
    _axis(a["axis"], len(args[0].shape))
    return ("f32",), args[0].shape


def _infer_fake_quant(args, a):
    x = args[0]
    _dtype(x, 0, ("f32",))
    _need(INT32_MIN <= a["qmin"] < a["qmax"] <= INT32_MAX, "need int32 qmin < qmax")
    _need(INT32_MIN <= a["zero_point"] <= INT32_MAX, "zero_point must be an int32")
    if len(args) == 2:
        _need(len(x.shape) >= 2, "a per-channel scale needs an input of rank >= 2")
        _vector(args, 1, x.shape[1])
    else:
        s = a["scale"]
        _need(math.isfinite(s) and s > 0, f"attribute 'scale' must be finite and > 0, got {s}")
    return ("f32",), x.shape


def _infer_quantize(args, a):
    _dtype(args[0], 0, ("f32",))
    return ("bits",), args[0].shape


def _infer_dequantize(args, a):
    _dtype(args[0], 0, ("bits",))
    return ("f32",), args[0].shape


def _infer_logic(args, a):
    for i in (0, 1):
        _dtype(args[i], i, ("bits",))
    _need(args[0].shape == args[1].shape, f"inputs have shapes {args[0].shape} and {args[1].shape}, expected equal")
    return ("bits",), args[0].shape


def _infer_pad2d(args, a):
    x = args[0]
    _dtype(x, 0, ("f32", "bits"))
    _rank(x, 0, (4,))
    t, l, b, r = _pads(a)
    _need(a["mode"] in (0, 1), f"attribute 'mode' must be 0 (constant) or 1 (replicate), got {a['mode']}")
    v = a["value"]
    if x.dtype == "bits":
        _need(a["mode"] == 1 or v in (1.0, -1.0), f"a bits input pads with value +1 or -1, got {v}")
    else:
        _need(math.isfinite(v), f"attribute 'value' must be finite, got {v}")
    n, c, h, w = x.shape
    _need(h + t + b <= INT32_MAX and w + l + r <= INT32_MAX, "padded size too large")
    return (_kind(x),), (n, c, h + t + b, w + l + r)


def _kind(arg: Arg) -> str:
    """"bits" or "f32" (an f16 constant reads as f32)."""
    return "bits" if arg.dtype == "bits" else "f32"


def _channel_inputs(args) -> tuple[str, int]:
    """(dtype, total channels) of inputs of equal dtype and rank 2 or 4, equal outside axis 1."""
    first = args[0]
    _dtype(first, 0, ("f32", "bits"))
    _rank(first, 0, (2, 4))
    total = 0
    for i, arg in enumerate(args):
        _dtype(arg, i, ("f32", "bits"))
        _need(_kind(arg) == _kind(first), f"input {i} has dtype {arg.dtype}, expected {first.dtype} as input 0")
        same = len(arg.shape) == len(first.shape) and all(
            d == e for j, (d, e) in enumerate(zip(arg.shape, first.shape)) if j != 1)
        _need(same, f"input {i} shape {arg.shape} does not match {first.shape} outside axis 1")
        total += arg.shape[1]
    return _kind(first), total


def _infer_gather_channels(args, a):
    dtype, total = _channel_inputs(args)
    index = a["index"]
    _need(1 <= len(index), "attribute 'index' must not be empty")
    low = -1 if dtype == "f32" else 0
    for j, v in enumerate(index):
        _need(low <= v < total, f"index entry {j} is {v}, outside [{low}, {total})"
              + ("" if dtype == "f32" else " (a bits output has no zero channel)"))
    shape = args[0].shape
    return (dtype,), shape[:1] + (len(index),) + shape[2:]


def _infer_group_mean(args, a):
    x = args[0]
    _dtype(x, 0, ("f32",))
    _rank(x, 0, (2, 4))
    g = a["group"]
    _need(g >= 1 and x.shape[1] % g == 0, f"attribute 'group' {g} must be >= 1 and divide C={x.shape[1]}")
    return ("f32",), x.shape[:1] + (x.shape[1] // g,) + x.shape[2:]


def _infer_dynamic_fake_quant(args, a):
    x = args[0]
    _dtype(x, 0, ("f32",))
    _need(1 <= a["qmax"] <= 1 << 24, f"attribute 'qmax' must be in [1, 16777216], got {a['qmax']}")
    _need(a["signed"] in (0, 1), f"attribute 'signed' must be 0 or 1, got {a['signed']}")
    _need(a["per_sample"] in (0, 1), f"attribute 'per_sample' must be 0 or 1, got {a['per_sample']}")
    _need(not a["per_sample"] or len(x.shape) >= 2, "per_sample needs an input of rank >= 2")
    return ("f32",), x.shape


_CONV = {"stride": ("ints", [1, 1]), "pad": ("ints", [0, 0, 0, 0]),
         "dilation": ("ints", [1, 1]), "groups": ("int", 1)}
_TRANSFORM = {"acc_min": ("int", INT32_MIN), "acc_max": ("int", INT32_MAX),
              "out_min": ("float", -_INF), "out_max": ("float", _INF)}
_POOL = {"kernel": ("ints", REQUIRED), "stride": ("ints", []), "pad": ("ints", [0, 0, 0, 0])}

OPS = {spec.name: spec for spec in [
    OpSpec(1, "quantize", 1, 1, {}, _infer_quantize),
    OpSpec(2, "dequantize", 1, 1, {}, _infer_dequantize),
    OpSpec(3, "bconv2d", 2, 4, {**_CONV, "pad_value": ("int", 1), **_TRANSFORM}, _infer_bconv2d),
    OpSpec(4, "bdense", 2, 4, dict(_TRANSFORM), _infer_bdense),
    OpSpec(5, "bmaxpool2d", 1, 1, dict(_POOL), lambda args, a: _infer_pool(args, a, "bits")),
    OpSpec(6, "bxnor", 2, 2, {}, _infer_logic),
    OpSpec(7, "bor", 2, 2, {}, _infer_logic),
    OpSpec(8, "band", 2, 2, {}, _infer_logic),
    OpSpec(10, "conv2d", 2, 4, dict(_CONV), _infer_conv2d),
    OpSpec(11, "dense", 2, 4, {}, _infer_dense),
    OpSpec(12, "batch_norm", 3, 3, {}, lambda args, a: _per_channel(args)),
    OpSpec(13, "add", 2, 2, {}, _infer_binary),
    OpSpec(14, "mul", 2, 2, {}, _infer_binary),
    OpSpec(15, "concat", 2, 64, {"axis": ("int", 1)}, _infer_concat),
    OpSpec(16, "maxpool2d", 1, 1, dict(_POOL), lambda args, a: _infer_pool(args, a, "f32")),
    OpSpec(17, "avgpool2d", 1, 1, {**_POOL, "count_include_pad": ("int", 1)},
           lambda args, a: _infer_pool(args, a, "f32")),
    OpSpec(18, "global_avgpool", 1, 1, {"keepdims": ("int", 1)}, _infer_global),
    OpSpec(20, "relu", 1, 1, {}, _infer_unary),
    OpSpec(21, "relu6", 1, 1, {}, _infer_unary),
    OpSpec(22, "prelu", 2, 2, {}, lambda args, a: _per_channel(args, allow_one=True)),
    OpSpec(23, "rprelu", 4, 4, {}, lambda args, a: _per_channel(args)),
    OpSpec(24, "dprelu", 5, 5, {}, lambda args, a: _per_channel(args)),
    OpSpec(25, "hard_sigmoid", 1, 1, {}, _infer_unary),
    OpSpec(26, "sigmoid", 1, 1, {}, _infer_unary),
    OpSpec(27, "hard_tanh", 1, 1, {"min": ("float", -1.0), "max": ("float", 1.0)}, _infer_hard_tanh),
    OpSpec(30, "reshape", 1, 1, {}, _infer_reshape),
    OpSpec(31, "flatten", 1, 1, {"start_dim": ("int", 1)}, _infer_flatten),
    OpSpec(32, "softmax", 1, 1, {"axis": ("int", -1)}, _infer_softmax),
    OpSpec(33, "fake_quant", 1, 2, {"scale": ("float", 1.0), "qmin": ("int", REQUIRED),
                                    "qmax": ("int", REQUIRED), "zero_point": ("int", 0)},
           _infer_fake_quant),
    OpSpec(34, "pad2d", 1, 1, {"pad": ("ints", [0, 0, 0, 0]), "mode": ("int", 0), "value": ("float", 0.0)},
           _infer_pad2d),
    OpSpec(35, "gather_channels", 1, 64, {"index": ("ints", REQUIRED)}, _infer_gather_channels),
    OpSpec(36, "group_mean", 1, 1, {"group": ("int", REQUIRED)}, _infer_group_mean),
    OpSpec(37, "dynamic_fake_quant", 1, 1, {"qmax": ("int", REQUIRED), "signed": ("int", 1),
                                            "per_sample": ("int", 0)}, _infer_dynamic_fake_quant),
]}
OPS_BY_CODE = {spec.code: spec for spec in OPS.values()}


def get(name_or_code) -> OpSpec:
    """The :class:`OpSpec` for an op name or code; unknown ones list the known names."""
    table = OPS_BY_CODE if isinstance(name_or_code, int) else OPS
    if name_or_code not in table:
        raise ValueError(f"unknown op {name_or_code!r}; known ops: {', '.join(sorted(OPS))}")
    return table[name_or_code]
