"""Quantized layers: drop-in subclasses of ``nn.Conv1d``, ``nn.Conv2d`` and ``nn.Linear``.

Each layer takes the arguments of the torch layer it replaces (see the torch docs) plus
the keyword-only options of Larq's quantized layers:

* ``input_quantizer`` / ``kernel_quantizer``: anything :func:`bnnkit.quantizers.get`
  accepts (None, an alias such as ``"ste_sign"``, a callable or a module). Modules are
  registered as submodules.
* ``pad_value``: the value the (quantized) input is padded with, one of 0, +1, -1, or
  None meaning +1.0 when the input quantizer is binary (precision 1) -- Larq's
  "one-padding", which keeps the padded input binary so the packed kernel needs no
  correction -- and 0.0 otherwise. (A binary quantizer whose outputs are not +-1, e.g.
  ``ClippedSign(half_scale=True)``, still defaults to +1: pass ``pad_value`` explicitly.)
  With ``padding_mode="zeros"`` and any padding, the forward pads explicitly
  (``torch.constant_pad_nd(x_q, pads, pad_value)``, i.e. ``F.pad`` in constant mode: one
  ``aten.constant_pad_nd`` node in ``torch.export`` graphs) and then convolves with
  padding 0. Other padding modes (reflect, replicate, circular) behave as in torch and
  ignore ``pad_value``.
* ``weight_clip``: a Larq-style kernel constraint ``w <- clip(w, -c, c)`` on the latent
  (real-valued) weights, e.g. 1.25 as in QuickNet. It is not applied by the forward:
  call :func:`apply_weight_clips_` (or ``layer.apply_weight_clip_()``) after every
  optimizer step, as Keras applies constraints after each update; the bnnkit trainer
  does this.

Forward: ``y = op(input_quantizer(x), kernel_quantizer(weight)) + bias``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import quantizers as q
from ..quantizers._base import check_int, check_positive

PAD_VALUES = (0.0, 1.0, -1.0)


def _resolve_pad_value(pad_value, input_quantizer) -> float:
    """The effective pad value: the given one, or +1 for a binary input quantizer else 0."""
    if pad_value is None:
        return 1.0 if q.precision_of(input_quantizer) == 1 else 0.0
    if isinstance(pad_value, bool) or not isinstance(pad_value, (int, float)):
        raise TypeError(f"pad_value must be one of 0, 1, -1 or None, got {pad_value!r}")
    if float(pad_value) not in PAD_VALUES:
        raise ValueError(f"pad_value must be one of 0, 1, -1 or None, got {pad_value!r}")
    return float(pad_value)


class QuantizedLayerMixin:
    """What the quantized layers share: quantizers, pad value, weight clip, precisions.

    Public attributes: ``input_quantizer``, ``kernel_quantizer`` (module, callable or
    None), ``pad_value`` (float), ``weight_clip`` (float or None); properties
    ``input_precision``, ``kernel_precision`` (bits, 32 when unquantized) and
    ``is_binary`` (both are 1).
    """

    weight: Tensor

    def _init_quantization(self, input_quantizer, kernel_quantizer, pad_value, weight_clip):
        self.input_quantizer = q.get(input_quantizer)
        self.kernel_quantizer = q.get(kernel_quantizer)
        self.pad_value = _resolve_pad_value(pad_value, self.input_quantizer)
        self.weight_clip = check_positive("weight_clip", weight_clip, allow_none=True)

    @property
    def input_precision(self) -> int:
        return q.precision_of(self.input_quantizer)

    @property
    def kernel_precision(self) -> int:
        return q.precision_of(self.kernel_quantizer)

    @property
    def is_binary(self) -> bool:
        return self.input_precision == 1 and self.kernel_precision == 1

    def quantize_input(self, x: Tensor) -> Tensor:
        """``input_quantizer(x)``, or ``x`` without an input quantizer."""
        return x if self.input_quantizer is None else self.input_quantizer(x)

    def quantized_weight(self) -> Tensor:
        """``kernel_quantizer(weight)``, or the weight without a kernel quantizer."""
        w = self.weight
        return w if self.kernel_quantizer is None else self.kernel_quantizer(w)

    @torch.no_grad()
    def apply_weight_clip_(self) -> None:
        """Clamp the latent weight into [-weight_clip, weight_clip] in place (no-op if None)."""
        if self.weight_clip is not None:
            self.weight.clamp_(-self.weight_clip, self.weight_clip)

    def _quant_repr(self) -> str:
        parts = [f"input_quantizer={_name(self.input_quantizer)}"]
        parts.append(f"kernel_quantizer={_name(self.kernel_quantizer)}")
        parts.append(f"pad_value={self.pad_value}")
        if self.weight_clip is not None:
            parts.append(f"weight_clip={self.weight_clip}")
        return ", ".join(parts)


def _name(quantizer) -> str:
    """A short name for repr: the op name, a function name, or None."""
    if quantizer is None:
        return "None"
    op = getattr(quantizer, "op_name", "")
    return op.split("::")[-1] if op else getattr(quantizer, "__name__", type(quantizer).__name__)


def apply_weight_clips_(model: nn.Module) -> int:
    """Apply every quantized layer's ``weight_clip`` in ``model`` in place.

    Call it after each optimizer step (the trainer does); it runs under ``no_grad`` and
    returns the number of layers that have a clip.
    """
    count = 0
    for module in model.modules():
        if isinstance(module, QuantizedLayerMixin) and module.weight_clip is not None:
            module.apply_weight_clip_()
            count += 1
    return count


class _QuantConvNd(QuantizedLayerMixin):
    """Forward of the quantized convs (mixed into the ``nn.ConvNd`` subclasses)."""

    _conv: Callable

    def forward(self, x: Tensor) -> Tensor:
        x = self.quantize_input(x)
        w = self.quantized_weight()
        if self.padding_mode != "zeros":
            return self._conv_forward(x, w, self.bias)
        pads = self._reversed_padding_repeated_twice
        if any(pads):
            x = torch.constant_pad_nd(x, list(pads), self.pad_value)
        return self._conv(x, w, self.bias, self.stride, 0, self.dilation, self.groups)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, {self._quant_repr()}"


class QuantConv1d(_QuantConvNd, nn.Conv1d):
    """``nn.Conv1d`` with quantized input and kernel; see the module docstring."""

    _conv = staticmethod(F.conv1d)

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, padding_mode="zeros", device=None,
                 dtype=None, *, input_quantizer=None, kernel_quantizer=None,
                 pad_value=None, weight_clip=None):  # fmt: skip
        nn.Conv1d.__init__(self, in_channels, out_channels, kernel_size, stride, padding,
                           dilation, groups, bias, padding_mode, device, dtype)  # fmt: skip
        self._init_quantization(input_quantizer, kernel_quantizer, pad_value, weight_clip)


class QuantConv2d(_QuantConvNd, nn.Conv2d):
    """``nn.Conv2d`` with quantized input and kernel; see the module docstring."""

    _conv = staticmethod(F.conv2d)

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, padding_mode="zeros", device=None,
                 dtype=None, *, input_quantizer=None, kernel_quantizer=None,
                 pad_value=None, weight_clip=None):  # fmt: skip
        nn.Conv2d.__init__(self, in_channels, out_channels, kernel_size, stride, padding,
                           dilation, groups, bias, padding_mode, device, dtype)  # fmt: skip
        self._init_quantization(input_quantizer, kernel_quantizer, pad_value, weight_clip)


class QuantDepthwiseConv2d(QuantConv2d):
    """Depthwise ``QuantConv2d``: ``groups = channels``, ``channels * depth_multiplier`` outputs.

    The weight has shape (channels * depth_multiplier, 1, kH, kW), as torch's depthwise
    convolution (Larq/Keras ``DepthwiseConv2D`` keeps (kH, kW, channels, multiplier)).
    """

    def __init__(self, channels, kernel_size, depth_multiplier=1, stride=1, padding=0,
                 dilation=1, bias=True, padding_mode="zeros", device=None, dtype=None, *,
                 input_quantizer=None, kernel_quantizer=None, pad_value=None,
                 weight_clip=None):  # fmt: skip
        multiplier = check_int("depth_multiplier", depth_multiplier, 1, 1 << 20)
        super().__init__(channels, channels * multiplier, kernel_size, stride, padding,
                         dilation, channels, bias, padding_mode, device, dtype,
                         input_quantizer=input_quantizer, kernel_quantizer=kernel_quantizer,
                         pad_value=pad_value, weight_clip=weight_clip)  # fmt: skip
        self.depth_multiplier = multiplier


class QuantLinear(QuantizedLayerMixin, nn.Linear):
    """``nn.Linear`` with quantized input and kernel.

    ``pad_value`` is accepted (and validated) so one keyword dict can configure convs and
    dense layers alike, but a dense layer has nothing to pad.
    """

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None, *,
                 input_quantizer=None, kernel_quantizer=None, pad_value=None,
                 weight_clip=None):  # fmt: skip
        nn.Linear.__init__(self, in_features, out_features, bias, device, dtype)
        self._init_quantization(input_quantizer, kernel_quantizer, pad_value, weight_clip)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(self.quantize_input(x), self.quantized_weight(), self.bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, {self._quant_repr()}"
