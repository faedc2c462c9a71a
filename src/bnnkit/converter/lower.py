"""Lower a ``torch.export`` graph to the IR (:mod:`bnnkit.converter.ir`).

Each aten node becomes zero or more IR ops whose ops are the ``.bnn`` format's ops:

* **Constant folding** (:mod:`.passes.fold_constants`): a node whose tensor inputs are
  all constants (parameters, buffers, folded results) is evaluated with torch; weight
  quantizers disappear here and their 1-bit results are remembered as binary weights.
* **Quantizers are matched by name** (``bnnkit.<name>.default``), never by the shape of
  their implementation: a sign-type quantizer on an activation becomes ``quantize``
  (a ``bits`` value); ``rsign`` becomes ``add`` (its shift) then ``quantize``; k-bit
  quantizers with a fixed range become ``fake_quant``, those that take the range from
  the input (``bound=None``: max|x| or max x) ``dynamic_fake_quant``. Magnitude-aware
  activations raise.
* A ``conv2d``/``linear`` whose input is ``bits`` (possibly through ``constant_pad_nd``
  with value +1 or 0, which becomes ``pad`` + ``pad_value``) and whose weight is a
  binary constant ``s_o * sign(w)`` becomes ``bconv2d``/``bdense`` with the sign as the
  (later packed) weight and ``s_o`` as the multiplier (``magnitude_aware_sign``). Other
  pads (replicate, or a value the conv cannot take) become a ``pad2d`` op.
* Channel rearrangements (reshapes that split the channel axis, channel slices, stack,
  repeat, channel zero-padding, means over a channel axis) are kept as lazy views and
  become ``gather_channels`` / ``group_mean`` (:mod:`.lower_views`).
* ``where(x >= 0, pos, neg) * x`` (PokeBNN's DPReLU) becomes ``dprelu``.

Anything else raises :class:`ConversionError` naming the aten op, the module path
(``node.meta["nn_module_stack"]``) and what to change.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass

import numpy as np
import torch

from . import lower_views as views
from .ir import ConversionError, Graph, Value
from .lower_views import ChannelView
from .passes.fold_constants import fold_node

# Sign-type quantizers whose forward on activations is exactly sign(x) with sign(0) = +1.
SIGN_OPS = {"bnnkit.ste_sign.default", "bnnkit.approx_sign.default", "bnnkit.swish_sign.default"}
IDENTITY_OPS = {"aten.alias.default", "aten.clone.default", "aten.contiguous.default",
                "aten.detach.default", "bnnkit.noop.default", "aten.dropout.default",
                "aten.lift_fresh_copy.default"}


@dataclass
class PendingPad:
    """A ``constant_pad_nd`` result that only a following conv may consume (as its pad)."""

    value: Value
    pad: list  # [top, left, bottom, right]
    fill: float
    node: object


@dataclass
class PendingCompare:
    """``x >= 0``: only the condition of a ``where`` in a PReLU-type slope select."""

    x: Value
    node: object


@dataclass
class PendingSelect:
    """``where(x >= 0, pos, neg)`` with per-channel constants: only a slope multiplied by ``x``."""

    x: Value
    pos: np.ndarray
    neg: np.ndarray
    node: object


# Handlers that take channel views (lower_views) as arguments; every other handler gets
# 4-D views materialized and refuses channel-split (rank > 4) ones.
VIEW_AWARE = {"aten.reshape.default", "aten.view.default", "aten.unsqueeze.default", "aten.squeeze.dim",
              "aten.flatten.using_ints", "aten.unflatten.int", "aten.slice.Tensor", "aten.stack.default",
              "aten.cat.default", "aten.repeat.default", "aten.pad.default", "aten.constant_pad_nd.default",
              "aten.mean.dim", "aten.add.Tensor", "aten.sub.Tensor", "aten.mul.Tensor"} | IDENTITY_OPS


def module_path(node) -> tuple[str, str]:
    """(module path, module class) of the innermost module that produced ``node``."""
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return "(top level)", ""
    path, cls = list(stack.values())[-1]
    cls = cls if isinstance(cls, str) else getattr(cls, "__qualname__", str(cls))
    return path or "(top level)", cls.rsplit(".", 1)[-1]


def fail(node, msg: str) -> ConversionError:
    """A ConversionError naming the op and the module it comes from."""
    path, cls = module_path(node)
    where = f"module '{path}'" + (f" ({cls})" if cls else "")
    return ConversionError(f"cannot convert op '{node.target}' (node '{node.name}') in {where}: {msg}")


class Lowering:
    """State of one lowering: the IR graph, the value of each fx node, constant caches."""

    fail = staticmethod(fail)

    def __init__(self, ep):
        self.ep = ep
        self.g = Graph(inputs=[], outputs=[])
        self.env: dict = {}
        self.binary_weights: set = set()  # ids of constants produced by 1-bit weight quantizers
        self.int_weights: dict = {}  # id -> (q, s_o) of <= 8-bit symmetric_quant weights
        self._consts: dict = {}
        self._dequantized: dict = {}

    # ------------------------------------------------------------------ values
    def const(self, t: torch.Tensor, base: str) -> Value:
        """The IR constant of a torch tensor (one per tensor)."""
        key = id(t)
        if key not in self._consts:
            self._consts[key] = (t, self.g.const(base, t.detach().float().numpy()))
        return self._consts[key][1]

    def value(self, arg, node, want: str = "f32") -> Value:
        """An IR value for ``arg``: constants become IR constants; bits get a dequantize
        when a float op reads them."""
        if isinstance(arg, PendingPad):
            arg = self.pad_op(arg)
        if isinstance(arg, ChannelView):
            if arg.wide:
                raise fail(node, f"a channel-split tensor of shape {arg.shape} reaches an op that takes "
                           "only plain tensors; merge the channel axes back (flatten) first")
            arg = views.materialize(self, arg, node, want)
        if isinstance(arg, (PendingCompare, PendingSelect)):
            raise fail(arg.node, "comparisons and where are supported only as the slope select of a "
                       "PReLU-type activation, where(x >= 0, pos, neg) * x (bnnkit.nn.DPReLU)")
        if isinstance(arg, torch.Tensor):
            return self.const(arg, f"{node.name}_const")
        if isinstance(arg, (int, float)) and not isinstance(arg, bool):
            return self.g.const(f"{node.name}_scalar", np.full((1,), arg, np.float32))
        if not isinstance(arg, Value):
            raise fail(node, f"unsupported argument {arg!r}")
        if want == "f32" and arg.dtype == "bits":
            if id(arg) not in self._dequantized:
                self._dequantized[id(arg)] = self.g.add("dequantize", [arg], "f32", arg.shape,
                                                        name=f"{arg.name}_dequant")
            return self._dequantized[id(arg)]
        return arg

    def pad_op(self, p: PendingPad) -> Value:
        """A pad that no conv absorbed, as a ``pad2d`` op (constant mode)."""
        if p.value.dtype == "bits" and p.fill not in (1.0, -1.0):
            raise fail(p.node, f"a bits tensor can be padded with +1 or -1 outside a binary conv, not "
                       f"{p.fill}; use pad_value 1, or pad inside the conv")
        n, c, h, w = p.value.shape
        shape = (n, c, h + p.pad[0] + p.pad[2], w + p.pad[1] + p.pad[3])
        return self.g.add("pad2d", [p.value], p.value.dtype, shape, {"pad": p.pad, "mode": 0, "value": p.fill},
                          name=self.module_name(p.node))

    def module_name(self, node) -> str:
        return module_path(node)[0].replace("(top level)", node.name)

    def plain(self, node, a):
        """``a`` with channel views materialized (recursively in lists); wide ones refused."""
        if isinstance(a, ChannelView):
            return self.value(a, node, "any")
        if isinstance(a, (list, tuple)):
            return type(a)(self.plain(node, x) for x in a)
        return a

    def arg(self, a):
        """Map fx nodes inside ``a`` (nested lists/tuples) to their lowered values."""
        if isinstance(a, torch.fx.Node):
            return self.env[a]
        if isinstance(a, (list, tuple)):
            return type(a)(self.arg(x) for x in a)
        return a

    # ------------------------------------------------------------------ driver
    def run(self) -> Graph:
        tensors = _lifted_tensors(self.ep)
        for node in self.ep.graph.nodes:
            if node.op == "placeholder":
                self.env[node] = self.placeholder(node, tensors)
            elif node.op == "call_function":
                self.env[node] = self.call(node)
            elif node.op == "output":
                self.output(node)
            else:
                raise fail(node, f"unsupported fx node kind {node.op!r}")
        return self.g

    def placeholder(self, node, tensors: dict):
        if node.name in tensors:
            return tensors[node.name]
        val = node.meta.get("val")
        if not isinstance(val, torch.Tensor) or val.dtype != torch.float32:
            raise fail(node, "graph inputs must be float32 tensors")
        v = Value(self.g.unique("input"), "f32", tuple(int(d) for d in val.shape))
        self.g.inputs.append(v)
        return v

    def output(self, node) -> None:
        for a in node.args[0]:
            v = self.arg(a)
            if isinstance(v, (ChannelView, PendingPad)):
                v = self.value(v, node)
            if not isinstance(v, Value) or v.constant:
                raise fail(node, "a model output must be computed from the input, not a constant")
            self.g.outputs.append(self.value(v, node))

    def call(self, node):
        args, kwargs = self.arg(node.args), self.arg(node.kwargs)
        target = str(node.target)
        if node.target is operator.getitem:
            return args[0][args[1]]
        folded = fold_node(node, args, kwargs, self.binary_weights, self.int_weights)
        if folded is not None:
            return folded
        handler = HANDLERS.get(target)
        if handler is not None and target not in VIEW_AWARE:
            args, kwargs = self.plain(node, args), {k: self.plain(node, v) for k, v in kwargs.items()}
        if handler is None:
            raise fail(node, f"op not supported by the converter; supported ops: "
                       f"{', '.join(sorted(HANDLERS))}. Replace it with a supported layer or "
                       "compute it outside the model")
        return handler(self, node, *args, **kwargs)

    def emit(self, node, op, inputs, dtype="f32", attrs=None):
        """Append ``op`` with the output shape torch recorded for ``node``."""
        shape = tuple(int(d) for d in node.meta["val"].shape)
        return self.g.add(op, inputs, dtype, shape, attrs, name=self.module_name(node))


def _lifted_tensors(ep) -> dict:
    """placeholder name -> tensor for parameters, buffers and lifted constants."""
    sig, out = ep.graph_signature, {}
    for ph, fqn in sig.inputs_to_parameters.items():
        out[ph] = ep.state_dict[fqn]
    for ph, fqn in sig.inputs_to_buffers.items():
        out[ph] = ep.state_dict[fqn] if fqn in ep.state_dict else ep.constants[fqn]
    for ph, fqn in sig.inputs_to_lifted_tensor_constants.items():
        out[ph] = ep.constants[fqn]
    return {k: v.detach() for k, v in out.items()}


# ---------------------------------------------------------------------- quantizers


def _sign(lw: Lowering, node, x, *rest):
    if isinstance(x, Value) and x.dtype == "bits":
        return x  # sign of +-1 values is the identity
    x = lw.value(x, node)
    return lw.emit(node, "quantize", [x], "bits")


def _clipped_sign(lw, node, x, bound=3.0, half_scale=False):
    if half_scale:
        raise fail(node, "clipped_sign with half_scale=True outputs +-bound/2, which a bits "
                   "tensor cannot hold; use half_scale=False (a following batch-norm absorbs the scale)")
    return _sign(lw, node, x)


def _rsign(lw, node, x, shift):
    x = lw.value(x, node)
    if not isinstance(shift, torch.Tensor):
        raise fail(node, "the rsign shift must be a parameter (constant)")
    view = shift.reshape(1, -1, *([1] * (len(x.shape) - 2)))
    shifted = lw.g.add("add", [x, lw.const(view, f"{node.name}_shift")], "f32", x.shape,
                       name=module_path(node)[0])
    return lw.g.add("quantize", [shifted], "bits", x.shape, name=module_path(node)[0])


def _dynamic_quant(lw, node, x, qmax: int, signed: bool, per_sample: bool):
    """The range from the input itself (whole tensor, batch included, or per sample)."""
    x = lw.value(x, node)
    if per_sample and len(x.shape) < 2:
        raise fail(node, "a per-channel (per axis-0 slice) dynamic range needs an input of rank >= 2")
    attrs = {"qmax": qmax, "signed": int(signed), "per_sample": int(per_sample)}
    return lw.emit(node, "dynamic_fake_quant", [x], attrs=attrs)


def _symmetric_quant(lw, node, x, bits=8, per_channel=False, bound=None):
    qmax = 2 ** (bits - 1) - 1
    if bound is None:
        return _dynamic_quant(lw, node, x, qmax, True, per_channel)
    scale = float(np.float32(bound / qmax))
    return lw.emit(node, "fake_quant", [lw.value(x, node)], attrs={"scale": scale, "qmin": -qmax, "qmax": qmax})


def _unsigned_quant(lw, node, x, bits=8, bound=None):
    n = 2 ** bits - 1
    if bound is None:
        return _dynamic_quant(lw, node, x, n, False, False)
    scale = float(np.float32(np.float32(bound) / np.float32(n)))
    return lw.emit(node, "fake_quant", [lw.value(x, node)], attrs={"scale": scale, "qmin": 0, "qmax": n})


def _activation_only(reason: str):
    def handler(lw, node, *args, **kwargs):
        raise fail(node, reason)
    return handler


# ---------------------------------------------------------------------- conv / dense


def _pad4(pads: list, node) -> list:
    """torch pad list (W left, W right, H top, H bottom) -> format [top, left, bottom, right]."""
    pads = list(pads) + [0] * (4 - len(pads))
    if len(pads) != 4 or any(p < 0 for p in pads):
        raise fail(node, f"only non-negative padding of the two spatial axes is supported, got {pads}")
    return [pads[2], pads[0], pads[3], pads[1]]


def _constant_pad(lw, node, x, pad, value=0.0):
    if len(pad) > 4:
        return views.channel_pad(lw, node, x, list(pad), value)
    x = lw.plain(node, x)
    if not isinstance(x, Value) or len(x.shape) != 4:
        raise fail(node, "only 4-D activations can be padded")
    fill = float(value)
    if x.dtype == "bits" and fill not in (0.0, 1.0, -1.0):
        raise fail(node, f"a +-1 (bits) tensor can be padded with 1, 0 (in a binary conv) or -1, not {fill}")
    if not math.isfinite(fill):
        raise fail(node, f"padding value {fill} is not finite")
    return PendingPad(x, _pad4(pad, node), fill, node)


def _pad(lw, node, x, pad, mode="constant", value=None):
    if mode == "constant":
        return _constant_pad(lw, node, x, pad, 0.0 if value is None else value)
    x = lw.plain(node, x)
    if mode != "replicate" or not isinstance(x, Value) or len(x.shape) != 4 or len(pad) != 4:
        raise fail(node, f"padding mode {mode!r} of a {getattr(x, 'shape', '?')} tensor is not supported; "
                   "use constant or replicate padding of the two spatial axes of (N, C, H, W)")
    p = _pad4(pad, node)
    if not any(p):
        return x
    return lw.emit(node, "pad2d", [x], x.dtype, attrs={"pad": p, "mode": 1})


def _binary_weight(lw, node, w) -> tuple[np.ndarray, np.ndarray | None]:
    """(sign(w) as +-1, per-output-channel scale or None) of a binary weight constant."""
    if not isinstance(w, torch.Tensor) or id(w) not in lw.binary_weights:
        raise fail(node, "its input is binary (bits) but its weight does not come from a 1-bit "
                   "weight quantizer (ste_sign, magnitude_aware_sign, ...); set kernel_quantizer")
    arr = w.detach().float().numpy()
    sign = np.where(arr < 0, -1.0, 1.0).astype(np.float32)
    mags = np.abs(arr).reshape(arr.shape[0], -1)
    scale = mags[:, 0].copy()
    if not np.array_equal(mags, np.repeat(scale[:, None], mags.shape[1], 1)) or np.any(scale <= 0):
        raise fail(node, "the binary weight is not of the form s_o * sign(w) with s_o > 0 per output channel")
    return sign, (None if np.all(scale == 1.0) else scale)


def _transform_inputs(lw, node, scale, bias) -> list:
    out = []
    if scale is not None or bias is not None:
        o = (scale if scale is not None else bias.shape[0])
        m = scale if scale is not None else np.ones(o, np.float32)
        out.append(lw.g.const(f"{node.name}_multiplier", m))
    if bias is not None:
        out.append(lw.const(bias, f"{node.name}_bias"))
    return out


def _float_weight(lw, node, w, b) -> list:
    """[weight, bias?] of a float conv/dense, or [i8 weight, scale, bias?] for an integer weight."""
    bias = [lw.const(b, f"{node.name}_bias")] if b is not None else []
    if id(w) in lw.int_weights:
        q, s = lw.int_weights[id(w)]
        return [lw.g.const(f"{node.name}_weight", q, "i8"), lw.g.const(f"{node.name}_weight_scale", s)] + bias
    return [lw.const(w, f"{node.name}_weight")] + bias


def _conv2d(lw, node, x, w, b=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1):
    if isinstance(padding, str):
        raise fail(node, f"string padding {padding!r} is not supported; give explicit padding")
    pad = [padding[0], padding[1], padding[0], padding[1]] if len(padding) == 2 else [padding[0]] * 4
    fill = 0.0
    if isinstance(x, PendingPad) and (x.fill not in ((0.0, 1.0) if x.value.dtype == "bits" else (0.0,))
                                      or (any(pad) and x.fill != 0.0)):
        x = lw.pad_op(x)  # a pad the conv cannot take: a pad2d op, then the conv's own padding
    if isinstance(x, PendingPad):
        pad, fill, x = [a + c for a, c in zip(pad, x.pad)], x.fill, x.value
    if not isinstance(w, torch.Tensor):
        raise fail(node, "the conv weight must be a constant (a parameter, possibly through a quantizer)")
    attrs = {"stride": list(stride), "pad": pad, "dilation": list(dilation), "groups": int(groups)}
    if isinstance(x, Value) and x.dtype == "bits":
        sign, scale = _binary_weight(lw, node, w)
        wv = lw.g.const(f"{node.name}_weight", sign, "bits")
        attrs["pad_value"] = int(fill)
        return lw.emit(node, "bconv2d", [x, wv] + _transform_inputs(lw, node, scale, b), attrs=attrs)
    x = lw.value(x, node)
    return lw.emit(node, "conv2d", [x] + _float_weight(lw, node, w, b), attrs=attrs)


def _linear(lw, node, x, w, b=None):
    if not isinstance(w, torch.Tensor):
        raise fail(node, "the dense weight must be a constant")
    if not isinstance(x, Value) or len(x.shape) != 2:
        raise fail(node, "only (N, K) inputs are supported for linear; flatten first")
    if x.dtype == "bits":
        sign, scale = _binary_weight(lw, node, w)
        wv = lw.g.const(f"{node.name}_weight", sign, "bits")
        return lw.emit(node, "bdense", [x, wv] + _transform_inputs(lw, node, scale, b))
    return lw.emit(node, "dense", [x] + _float_weight(lw, node, w, b))


# ---------------------------------------------------------------------- batch norm


def bn_scale_shift(w, b, mean, var, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Inference batch norm as y = x * scale + shift, in float32 as PyTorch's CPU kernel:
    scale = w / sqrt(var + eps), shift = b - mean * scale rounded once (an FMA; float64
    here, where the product is exact) (Ioffe & Szegedy, arXiv 1502.03167)."""
    f = np.float32
    var = var.detach().float().numpy()
    invstd = f(1.0) / np.sqrt(var + f(eps))
    c = var.shape[0]
    w = np.ones(c, f) if w is None else w.detach().float().numpy()
    b = np.zeros(c, f) if b is None else b.detach().float().numpy()
    scale = (invstd * w).astype(f)
    shift = (b.astype(np.float64) - mean.detach().float().numpy().astype(np.float64) * scale).astype(f)
    return scale, shift


def _batch_norm(lw, node, x, w, b, mean, var, training, momentum, eps, *rest):
    if training:
        raise fail(node, "batch norm is in training mode; call model.eval() before converting")
    if mean is None or var is None:
        raise fail(node, "batch norm without running statistics (track_running_stats=False) "
                   "normalizes by batch statistics and cannot be folded")
    scale, shift = bn_scale_shift(w, b, mean, var, eps)
    x = lw.value(x, node)
    ins = [x, lw.g.const(f"{node.name}_scale", scale), lw.g.const(f"{node.name}_shift", shift)]
    return lw.emit(node, "batch_norm", ins)


def _bn_legit(lw, node, x, w, b, mean, var, momentum, eps):
    return (_batch_norm(lw, node, x, w, b, mean, var, False, momentum, eps), None, None)


# ---------------------------------------------------------------------- element-wise


def _binary(op: str, negate_b: bool = False):
    def handler(lw, node, a, b, alpha=1):
        if alpha != 1:
            raise fail(node, f"alpha={alpha} is not supported")
        if any(isinstance(v, ChannelView) and v.wide for v in (a, b)):
            return views.arith(lw, node, op, a, b, negate_b)
        a, b = lw.plain(node, a), lw.plain(node, b)
        if op == "mul" and (isinstance(a, PendingSelect) or isinstance(b, PendingSelect)):
            return _dprelu(lw, node, a, b)
        if negate_b:
            if isinstance(b, torch.Tensor):
                b = -b
            elif isinstance(b, (int, float)):
                b = -b
            else:
                b = lw.g.add("mul", [lw.value(b, node), lw.g.const(f"{node.name}_minus1", [-1.0])],
                             "f32", b.shape, name=module_path(node)[0])
        if not isinstance(a, Value) or (isinstance(b, Value) and len(b.shape) > len(a.shape)):
            a, b = b, a  # commutative: the activation (or the larger shape) goes first
        a, bv = lw.value(a, node), lw.value(b, node)
        out = tuple(int(d) for d in node.meta["val"].shape)
        if tuple(a.shape) != out:
            raise fail(node, f"shapes {a.shape} and {bv.shape} broadcast both ways; the format's "
                       f"'{op}' broadcasts only its second input")
        return lw.emit(node, op, [a, bv])
    return handler


def _dprelu(lw, node, a, b):
    """``where(x >= 0, pos, neg) * x`` -> dprelu(x, 0, pos, neg, 0) (shifts fold in later)."""
    sel, x = (a, b) if isinstance(a, PendingSelect) else (b, a)
    if x is not sel.x:
        raise fail(node, "where(x >= 0, pos, neg) must multiply the same x it compares "
                   "(a PReLU-type activation such as bnnkit.nn.DPReLU)")
    zeros = np.zeros(x.shape[1], np.float32)
    ins = [x] + [lw.g.const(f"{node.name}_{k}", v) for k, v in
                 (("shift_x", zeros), ("pos", sel.pos), ("neg", sel.neg), ("shift_y", zeros))]
    return lw.emit(node, "dprelu", ins)


def _ge(lw, node, x, other):
    x = lw.value(x, node)
    if isinstance(other, torch.Tensor) or other != 0 or len(x.shape) < 2:
        raise fail(node, f"comparison x >= {other!r} is supported only as x >= 0 in the slope select "
                   "where(x >= 0, pos, neg) * x of a PReLU-type activation (bnnkit.nn.DPReLU)")
    return PendingCompare(x, node)


def _slope(lw, node, t, c: int) -> np.ndarray:
    arr = t.detach().float().numpy() if isinstance(t, torch.Tensor) else np.float32(t)
    arr = np.asarray(arr, np.float32)
    shape = (1,) * (4 - arr.ndim) + arr.shape if arr.ndim <= 4 else arr.shape
    if len(shape) != 4 or shape[0] != 1 or shape[2:] != (1, 1) or shape[1] not in (1, c):
        raise fail(node, f"where(x >= 0, pos, neg) needs per-channel constant slopes of shape (1, {c}, 1, 1), "
                   f"got {arr.shape}")
    return np.broadcast_to(arr.reshape(-1), (c,)).astype(np.float32)


def _where(lw, node, cond, a, b):
    if not isinstance(cond, PendingCompare) or isinstance(a, Value) or isinstance(b, Value):
        raise fail(node, "where is supported only as the slope select where(x >= 0, pos, neg) * x of a "
                   "PReLU-type activation (bnnkit.nn.DPReLU), with constant pos and neg")
    c = cond.x.shape[1]
    return PendingSelect(cond.x, _slope(lw, node, a, c), _slope(lw, node, b, c), node)


def _unary(op: str, **fixed):
    def handler(lw, node, x, *args, **kwargs):
        return lw.emit(node, op, [lw.value(x, node)], attrs=dict(fixed))
    return handler


def _hardtanh(lw, node, x, lo=-1.0, hi=1.0):
    if (lo, hi) == (0.0, 6.0):
        return lw.emit(node, "relu6", [lw.value(x, node)])
    return lw.emit(node, "hard_tanh", [lw.value(x, node)], attrs={"min": float(lo), "max": float(hi)})


def _clamp(lw, node, x, lo=None, hi=None):
    lo = -math.inf if lo is None else lo
    hi = math.inf if hi is None else hi
    return _hardtanh(lw, node, x, lo, hi)


def _prelu(lw, node, x, w):
    if not isinstance(w, torch.Tensor):
        raise fail(node, "the PReLU slope must be a parameter")
    return lw.emit(node, "prelu", [lw.value(x, node), lw.const(w.reshape(-1), f"{node.name}_slope")])


def _softmax(lw, node, x, dim, half_to_float=False):
    return lw.emit(node, "softmax", [lw.value(x, node)], attrs={"axis": int(dim)})


def _identity(lw, node, x, *args, **kwargs):
    if str(node.target) == "aten.dropout.default" and len(args) > 1 and args[1]:
        raise fail(node, "dropout is in training mode; call model.eval()")
    return x


# ---------------------------------------------------------------------- pooling and shapes


def _ceil_extra(size: int, k: int, s: int, lo: int, hi: int) -> int:
    """Extra end padding that makes floor-mode pooling give PyTorch's ceil_mode size."""
    out = -(-(size + lo + hi - k) // s) + 1
    if (out - 1) * s >= size + lo:
        out -= 1
    return max((out - 1) * s + k - (size + lo + hi), 0)


def _pool_attrs(node, x, kernel, stride, padding, ceil_mode) -> tuple[dict, bool]:
    k = list(kernel) * (2 // len(kernel))
    s = list(stride) * (2 // len(stride)) if stride else k
    p = list(padding) * (2 // len(padding))
    pad = [p[0], p[1], p[0], p[1]]
    extended = False
    if ceil_mode:
        eh = _ceil_extra(x.shape[2], k[0], s[0], p[0], p[0])
        ew = _ceil_extra(x.shape[3], k[1], s[1], p[1], p[1])
        pad[2] += eh
        pad[3] += ew
        extended = bool(eh or ew)
    return {"kernel": k, "stride": s, "pad": pad}, extended


def _max_pool(lw, node, x, kernel, stride=(), padding=(0,), dilation=(1,), ceil_mode=False):
    if any(d != 1 for d in dilation):
        raise fail(node, "dilated max-pooling is not supported")
    attrs, _ = _pool_attrs(node, x, kernel, stride, padding, ceil_mode)
    if isinstance(x, Value) and x.dtype == "bits":
        return lw.emit(node, "bmaxpool2d", [x], "bits", attrs)
    return lw.emit(node, "maxpool2d", [lw.value(x, node)], attrs=attrs)


def _avg_pool(lw, node, x, kernel, stride=(), padding=(0,), ceil_mode=False,
              count_include_pad=True, divisor_override=None):
    if divisor_override is not None:
        raise fail(node, "avg_pool2d with divisor_override is not supported")
    x = lw.value(x, node)
    attrs, extended = _pool_attrs(node, x, kernel, stride, padding, ceil_mode)
    if extended and count_include_pad:
        raise fail(node, "ceil_mode with count_include_pad=True is not supported (PyTorch's divisor "
                   "then depends on the position); use count_include_pad=False or even sizes")
    attrs["count_include_pad"] = int(bool(count_include_pad))
    return lw.emit(node, "avgpool2d", [x], attrs=attrs)


def _adaptive_avg_pool(lw, node, x, output_size):
    x = lw.value(x, node)
    oh, ow = (list(output_size) * 2)[:2]
    if (oh, ow) == (1, 1):
        return lw.emit(node, "global_avgpool", [x], attrs={"keepdims": 1})
    h, w = x.shape[2], x.shape[3]
    if h % oh or w % ow:
        raise fail(node, f"adaptive pooling {h}x{w} -> {oh}x{ow} is not a plain average pool")
    k = [h // oh, w // ow]
    return lw.emit(node, "avgpool2d", [x], attrs={"kernel": k, "stride": k})


def _mean(lw, node, x, dims, keepdim=False, dtype=None):
    v = views.as_view(x)
    rank = len(v.shape) if v is not None else 0
    if v is not None and any(1 <= d % rank <= rank - 3 for d in dims):
        return views.mean(lw, node, x, dims, keepdim)
    x = lw.value(x, node)
    if len(x.shape) != 4 or sorted(d % 4 for d in dims) != [2, 3]:
        raise fail(node, f"mean over dims {dims} of a rank-{len(x.shape)} tensor is not supported "
                   "(only the spatial mean of (N, C, H, W))")
    return lw.emit(node, "global_avgpool", [x], attrs={"keepdims": int(bool(keepdim))})


def _flatten(lw, node, x, start=0, end=-1):
    view = views.reshape(lw, node, x)
    if view is not None:
        return view
    x = lw.value(x, node)
    if end % len(x.shape) == len(x.shape) - 1:
        return lw.emit(node, "flatten", [x], attrs={"start_dim": int(start)})
    return lw.emit(node, "reshape", [x])


def _reshape(lw, node, x, *args, **kwargs):
    view = views.reshape(lw, node, x)
    if view is not None:
        return view
    return lw.emit(node, "reshape", [lw.value(x, node)])


def _cat(lw, node, tensors, dim=0):
    view = views.cat(lw, node, tensors, dim)
    if view is not None:
        return view
    return lw.emit(node, "concat", [lw.value(t, node) for t in tensors], attrs={"axis": int(dim)})


HANDLERS = {
    **{name: _sign for name in SIGN_OPS},
    "bnnkit.clipped_sign.default": _clipped_sign,
    "bnnkit.rsign.default": _rsign,
    "bnnkit.symmetric_quant.default": _symmetric_quant,
    "bnnkit.unsigned_quant.default": _unsigned_quant,
    "bnnkit.magnitude_aware_sign.default": _activation_only(
        "magnitude_aware_sign on an activation scales by mean|x| of each input; use it as a "
        "kernel_quantizer and ste_sign for activations"),
    "bnnkit.ste_heaviside.default": _activation_only("ste_heaviside gives 0/1, not +-1; use ste_sign"),
    "bnnkit.ste_tern.default": _activation_only("ternary activations are not supported; use ste_sign"),
    "bnnkit.dorefa.default": _activation_only("DoReFa activations are not supported; use "
                                              "unsigned_quant with a bound or ste_sign"),
    **{name: _identity for name in IDENTITY_OPS},
    "aten.constant_pad_nd.default": _constant_pad,
    "aten.pad.default": _pad,
    "aten.conv2d.default": _conv2d,
    "aten.linear.default": _linear,
    "aten.batch_norm.default": _batch_norm,
    "aten._native_batch_norm_legit_no_training.default": _bn_legit,
    "aten.add.Tensor": _binary("add"),
    "aten.sub.Tensor": _binary("add", negate_b=True),
    "aten.mul.Tensor": _binary("mul"),
    "aten.relu.default": _unary("relu"),
    "aten.relu6.default": _unary("relu6"),
    "aten.hardtanh.default": _hardtanh,
    "aten.clamp.default": _clamp,
    "aten.hardsigmoid.default": _unary("hard_sigmoid"),
    "aten.sigmoid.default": _unary("sigmoid"),
    "aten.prelu.default": _prelu,
    "aten.softmax.int": _softmax,
    "aten._softmax.default": _softmax,
    "aten.max_pool2d.default": _max_pool,
    "aten.avg_pool2d.default": _avg_pool,
    "aten.adaptive_avg_pool2d.default": _adaptive_avg_pool,
    "aten.mean.dim": _mean,
    "aten.flatten.using_ints": _flatten,
    "aten.reshape.default": _reshape,
    "aten.view.default": _reshape,
    "aten.unsqueeze.default": _reshape,
    "aten.squeeze.dim": _reshape,
    "aten.cat.default": _cat,
    "aten.unflatten.int": _reshape,
    "aten.slice.Tensor": views.slice_,
    "aten.stack.default": views.stack,
    "aten.repeat.default": views.repeat,
    "aten.ge.Scalar": _ge,
    "aten.where.self": _where,
}


def lower(ep) -> Graph:
    """Lower an ``ExportedProgram`` to an IR :class:`Graph`."""
    return Lowering(ep).run()
