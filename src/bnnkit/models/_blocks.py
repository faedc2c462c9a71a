"""Small pieces shared by the model families: batch norm with Keras options, a frozen
blur pool, global pooling, spatial-size bookkeeping and Larq's parameter count.

Keras -> PyTorch batch-norm translation. Keras updates ``moving = m * moving + (1 - m) *
batch``; PyTorch updates ``running = (1 - p) * running + p * batch``, so ``p = 1 - m``.
Keras defaults are ``m = 0.99, eps = 1e-3`` (PyTorch: ``p = 0.1, eps = 1e-5``); every
family passes its reference's values explicitly.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from bnnkit import nn as bnn
from bnnkit import quantizers

# ----------------------------------------------------------------------------- batch norm


def batch_norm(
    channels: int,
    *,
    keras_momentum: float = 0.99,
    eps: float = 1e-3,
    scale: bool = True,
    center: bool = True,
    dims: int = 2,
) -> _BatchNorm:
    """A ``BatchNorm{1,2}d`` with Keras' ``momentum``, ``scale`` and ``center`` options.

    ``scale=False`` keeps gamma fixed at 1 and ``center=False`` keeps beta fixed at 0: the
    fixed one becomes a buffer (not a parameter), so the layer still lowers to one
    ``batch_norm`` op and the converter folds it like any other. Both False gives
    ``affine=False``.
    """
    cls = nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d
    bn = cls(channels, eps=eps, momentum=1.0 - keras_momentum, affine=scale or center)
    if bn.affine and not scale:
        _freeze_as_buffer(bn, "weight", torch.ones(channels))
    if bn.affine and not center:
        _freeze_as_buffer(bn, "bias", torch.zeros(channels))
    return bn


def larq_binary_conv(in_ch: int, out_ch: int, kernel: int, *, stride: int = 1, padding: int = 0,
                     first: bool = False) -> nn.Module:
    """The Larq Zoo "literature" binary conv (BinaryNet, Binary AlexNet): ste_sign on the
    input (not on the first layer, which sees the image) and the kernel, zero padding,
    no bias, latent weights clipped to [-1, 1]."""
    return bnn.QuantConv2d(
        in_ch, out_ch, kernel, stride=stride, padding=padding, bias=False,
        input_quantizer=None if first else quantizers.SteSign(),
        kernel_quantizer=quantizers.SteSign(), pad_value=0.0, weight_clip=1.0,
    )


def larq_binary_dense(in_features: int, out_features: int) -> nn.Module:
    """The binary dense layer of the same models: ste_sign input and kernel, no bias, clip 1."""
    return bnn.QuantLinear(
        in_features, out_features, bias=False, input_quantizer=quantizers.SteSign(),
        kernel_quantizer=quantizers.SteSign(), weight_clip=1.0,
    )


def _freeze_as_buffer(module: nn.Module, name: str, value: Tensor) -> None:
    delattr(module, name)
    module.register_buffer(name, value)


# ----------------------------------------------------------------------------- pooling


class BlurPool(nn.Conv2d):
    r"""Frozen depthwise 3x3 blur, stride ``stride``, 'same' padding (Zhang 2019).

    Kernel: ``k = [1, 2, 1] (x) [1, 2, 1] / 16`` in every channel (Larq Zoo QuickNet's
    ``blurpool_initializer``). The kernel is a parameter with ``requires_grad=False``
    (Keras ``trainable=False``), so it is counted but never trained.

    Reference: R. Zhang, "Making Convolutional Networks Shift-Invariant Again", ICML 2019.
    """

    def __init__(self, channels: int, stride: int = 2):
        super().__init__(
            channels, channels, 3, stride=stride, padding=1, groups=channels, bias=False
        )
        self.weight.requires_grad_(False)

    def reset_parameters(self) -> None:
        k = torch.tensor([1.0, 2.0, 1.0])
        kernel = torch.outer(k, k) / 16.0
        with torch.no_grad():
            self.weight.copy_(kernel.expand_as(self.weight))


class GlobalAvgPool(nn.Module):
    """(N, C, H, W) -> (N, C): the mean over H and W, for any input size."""

    def forward(self, x: Tensor) -> Tensor:
        return torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)


# ----------------------------------------------------------------------------- sizes


def conv_out(size: int, kernel: int, stride: int = 1, padding: int = 0, *, layer: str) -> int:
    """Output size of a conv/pool, ``floor((size + 2p - k) / s) + 1``.

    Raises ``ValueError`` naming ``layer`` when the (padded) input is smaller than the
    kernel, i.e. when the model cannot take an input this small.
    """
    if size + 2 * padding < kernel:
        raise ValueError(
            f"input too small: layer {layer!r} gets a {size}x{size} feature map "
            f"(padding {padding}) but its window is {kernel}x{kernel}; use a larger input_size"
        )
    return (size + 2 * padding - kernel) // stride + 1


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's 'same' padding (before, after) of one axis: output ``ceil(size / s)``.

    ``total = max((ceil(size / s) - 1) * s + k - size, 0)``, ``before = total // 2`` and
    the odd pixel goes after, as TensorFlow does.
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def check_input_size(input_size: int, model: str) -> int:
    """Return ``input_size`` after checking it is a positive int."""
    if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size < 1:
        raise ValueError(f"{model}: input_size must be a positive int, got {input_size!r}")
    return input_size


# ----------------------------------------------------------------------------- counting


def larq_parameter_count(model: nn.Module) -> int:
    """The "Total params" of Larq's ``lq.models.summary`` for the equivalent Keras model.

    Larq counts every weight (trainable or not, e.g. QuickNet's frozen blur kernel) except
    that a batch-norm layer counts ``2 * C`` (its moving mean and variance; gamma and beta
    are folded into the previous layer) whatever its ``scale``/``center``. Here: all
    parameters, minus the affine parameters of batch-norm layers, plus their
    ``running_mean`` and ``running_var``. ``num_batches_tracked`` is not counted.

    This reproduces Larq Zoo's QuickNet totals (12,655,688 / 13,234,088 / 23,342,248) and
    its summary snapshots (e.g. Bi-RealNet 11,689,512). Larq Zoo docs for some older
    models (XNOR-Net 62,396,768, Binary AlexNet 61,859,192) quote Keras'
    ``count_params()`` instead, which adds ``beta`` (and ``gamma``) of each batch norm.
    """
    skip = set()
    total = 0
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            skip.update(id(p) for p in module.parameters(recurse=False))
            if module.running_mean is not None:
                total += module.running_mean.numel() + module.running_var.numel()
    return total + sum(p.numel() for p in model.parameters() if id(p) not in skip)


def keras_parameter_count(model: nn.Module) -> int:
    """Keras' ``count_params()``: every parameter plus batch-norm moving statistics."""
    stats = sum(
        m.running_mean.numel() + m.running_var.numel()
        for m in model.modules()
        if isinstance(m, _BatchNorm) and m.running_mean is not None
    )
    return sum(p.numel() for p in model.parameters()) + stats


# ----------------------------------------------------------------------------- blocks


class RealShortcutBlock(nn.Module):
    r"""``BN(bconv3x3(x)) + shortcut(x)``: one binary conv with a real-valued shortcut.

    The block of Bi-Real Net and Binary ResNet-E. ``shortcut`` is the identity when the
    shape is kept, else ``avgpool 2x2 -> 1x1 float conv -> BN`` (Larq Zoo literature
    models). ``conv`` is a :class:`bnnkit.nn.QuantConv2d`; ``make_bn(c)`` builds the norms.
    The average pool uses ``ceil_mode`` without counting padding, which equals Keras'
    'same'/'valid' 2x2 pooling on even sizes and keeps odd sizes consistent with the
    stride-2 conv (``ceil(n / 2)``).
    """

    def __init__(self, conv: nn.Conv2d, make_bn, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = conv
        self.bn = make_bn(out_channels)
        self.shortcut = nn.Identity()
        if in_channels != out_channels or conv.stride != (1, 1):
            self.shortcut = nn.Sequential(
                nn.AvgPool2d(2, stride=2, ceil_mode=True, count_include_pad=False),
                nn.Conv2d(in_channels, out_channels, 1, bias=False),
                make_bn(out_channels),
            )

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(self.conv(x)) + self.shortcut(x)
