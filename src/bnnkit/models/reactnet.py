"""ReActNet-A (Liu et al., "ReActNet", ECCV 2020, arXiv 2003.03488).

A binary MobileNet-v1: the depthwise 3x3 / pointwise 1x1 pairs become two *full* binary
convs (3x3 C->C, then 1x1), each with a real shortcut, RSign before it and RPReLU after
the add (facts from the authors' code, ``liuzechun/ReActNet``, ``reactnet.py``):

    y  = RPReLU1( BN1(bconv3x3_s(RSign1(x))) + pool_s(x) )      pool: avg 2x2 if s = 2
    z  = RPReLU2( BN2(bconv1x1(RSign2(y))) + y )                 C_out = C
    z  = RPReLU2( BN2(bconv1x1(RSign2(y))) + cat(y, y) )         C_out = 2C

RSign is ``sign(x + b_c)`` with a learnable per-channel shift and the ApproxSign
gradient; RPReLU is ``PReLU(x - g_c) + z_c`` (shift -> PReLU -> shift). When the channels
double, the reference runs two 1x1 binary convs C->C on the same binarized input, each
with its BN and the shortcut ``y``, and concatenates them; here that is one 1x1 conv
C->2C with one 2C-channel BN and the shortcut ``cat(y, y)``: identical outputs and
parameter count, one binary layer. Binary weights: ``magnitude_aware_sign`` (mean|w| per
output channel times sign(w), STE clipped at 1), as ``HardBinaryConv``. Binary convs pad
with zeros, as the reference's ``F.conv2d(..., padding=1)`` on signs.

Stem: float 3x3 conv 32 stride 2 -> BN. Head: global average pool -> dense with bias.
Stage widths 32, 64, 128, 128, 256, 256, 512 x 6, 1024 x 2 (a block downsamples when the
width changes, except 32 -> 64). Binary MACs at 224x224: 4,816,896,000. Reported top-1
69.4 % (distilled from ResNet-34, two-step training).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from bnnkit import nn as bnn
from bnnkit import quantizers

from ._blocks import GlobalAvgPool, check_input_size, conv_out
from ._registry import register_model

STAGE_WIDTHS = (32, 64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024)


def _bconv(in_channels: int, out_channels: int, kernel: int, stride: int = 1) -> nn.Module:
    return bnn.QuantConv2d(
        in_channels,
        out_channels,
        kernel,
        stride=stride,
        padding=kernel // 2,
        bias=False,
        input_quantizer=quantizers.RSign(in_channels),
        kernel_quantizer=quantizers.MagnitudeAwareSign(),
        pad_value=0.0,
    )


class ReActBlock(nn.Module):
    """One ReActNet-A block: binary 3x3 (stride ``stride``) then binary 1x1 (C -> C or 2C)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        if out_channels not in (in_channels, 2 * in_channels):
            raise ValueError(
                "ReActBlock: out_channels must be in_channels or twice it, "
                f"got {in_channels} -> {out_channels}"
            )
        self.conv3x3 = _bconv(in_channels, in_channels, 3, stride)
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.pool = nn.Identity()
        if stride == 2:
            self.pool = nn.AvgPool2d(2, stride=2, ceil_mode=True, count_include_pad=False)
        self.act1 = bnn.RPReLU(in_channels)
        self.conv1x1 = _bconv(in_channels, out_channels, 1)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.act2 = bnn.RPReLU(out_channels)
        self.repeat = out_channels // in_channels

    def forward(self, x: Tensor) -> Tensor:
        y = self.act1(self.bn1(self.conv3x3(x)) + self.pool(x))
        shortcut = y if self.repeat == 1 else torch.cat([y] * self.repeat, dim=1)
        return self.act2(self.bn2(self.conv1x1(y)) + shortcut)


def _strides(widths) -> list[int]:
    """Stride of each block: 2 where the width changes, except into 64 (ReActNet code)."""
    return [2 if (w != p and w != 64) else 1 for p, w in zip(widths, widths[1:])]


class ReActNetA(nn.Module):
    """ReActNet-A: float stem, 13 binary blocks, float head."""

    def __init__(self, num_classes: int = 1000, widths=STAGE_WIDTHS, in_channels: int = 3):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, widths[0], 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]),
        )
        self.body = nn.Sequential(
            *(ReActBlock(p, w, s) for p, w, s in zip(widths, widths[1:], _strides(widths)))
        )
        self.head = nn.Sequential(GlobalAvgPool(), nn.Linear(widths[-1], num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(self.stem(x)))


def _check_sizes(input_size: int) -> None:
    size = conv_out(input_size, 3, 2, 1, layer="stem.0 (3x3 conv, stride 2)")
    for i, stride in enumerate(_strides(STAGE_WIDTHS)):
        if stride == 2:
            size = conv_out(size, 3, 2, 1, layer=f"body.{i}.conv3x3 (binary 3x3, stride 2)")


@register_model
def reactnet_a(
    num_classes: int = 1000, input_size: int = 224, *, in_channels: int = 3
) -> ReActNetA:
    """ReActNet-A (MobileNet-v1 layout, RSign, RPReLU); 69.4 % top-1 reported."""
    _check_sizes(check_input_size(input_size, "reactnet_a"))
    return ReActNetA(num_classes=num_classes, in_channels=in_channels)
