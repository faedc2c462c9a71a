"""Binary ResNet-E 18 (Bethge et al., "Back to Simplicity", arXiv 1906.08637), Larq Zoo.

ResNet-18 with every 3x3 conv binary (``ste_sign`` clip 1.25 on input and kernel,
weight clip 1.25, zero padding) and a shortcut around each single conv instead of each
pair: ``x + BN(bconv3x3(x))``; the downsampling shortcut is average pool 2x2 -> float
1x1 conv -> BN. Stem: 7x7 float conv 64 stride 2 -> BN -> ReLU -> max-pool 3x3 stride 2
-> BN; for inputs smaller than 50 pixels the reference uses a single 3x3 float conv
(stride 1, no BN) instead, and so do we. Head: ReLU -> global average pool -> dense.
Batch norms: Keras momentum 0.9, eps 1e-5.

Larq Zoo (``larq_zoo/literature/resnet_e.py``): 58.32 % top-1; its summary counts
11,689,640 parameters at 224x224 (the docs quote Keras' count, 11,699,368).
"""

from __future__ import annotations

from torch import Tensor, nn

from bnnkit import nn as bnn
from bnnkit import quantizers

from ._blocks import GlobalAvgPool, RealShortcutBlock, batch_norm, check_input_size, conv_out
from ._registry import register_model

CLIP = 1.25
SMALL_INPUT = 50  # below this the reference uses a 3x3 stride-1 stem


def _bn(channels: int) -> nn.Module:
    return batch_norm(channels, keras_momentum=0.9, eps=1e-5)


def _block(in_channels: int, out_channels: int, stride: int) -> RealShortcutBlock:
    conv = bnn.QuantConv2d(
        in_channels,
        out_channels,
        3,
        stride=stride,
        padding=1,
        bias=False,
        input_quantizer=quantizers.SteSign(clip_value=CLIP),
        kernel_quantizer=quantizers.SteSign(clip_value=CLIP),
        pad_value=0.0,
        weight_clip=CLIP,
    )
    return RealShortcutBlock(conv, _bn, in_channels, out_channels)


def _stem(in_channels: int, filters: int, small: bool) -> nn.Sequential:
    if small:
        return nn.Sequential(nn.Conv2d(in_channels, filters, 3, padding=1, bias=False))
    return nn.Sequential(
        nn.Conv2d(in_channels, filters, 7, stride=2, padding=3, bias=False),
        _bn(filters),
        nn.ReLU(),
        nn.MaxPool2d(3, stride=2, padding=1),
        _bn(filters),
    )


class BinaryResNetE(nn.Module):
    """Binary ResNet-E: stages of single-conv residual blocks (each ResNet block doubled)."""

    def __init__(self, blocks=(2, 2, 2, 2), filters=(64, 128, 256, 512), num_classes=1000,
                 in_channels=3, small_input=False):
        super().__init__()
        self.stem = _stem(in_channels, filters[0], small_input)
        layers, channels = [], filters[0]
        for stage, (n, f) in enumerate(zip(blocks, filters)):
            for i in range(2 * n):
                layers.append(_block(channels, f, 2 if (stage > 0 and i == 0) else 1))
                channels = f
        self.body = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.ReLU(), GlobalAvgPool(), nn.Linear(channels, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(self.stem(x)))


def _check_sizes(input_size: int, small: bool) -> None:
    size = input_size
    if not small:
        size = conv_out(size, 7, 2, 3, layer="stem.0 (7x7 conv, stride 2)")
        size = conv_out(size, 3, 2, 1, layer="stem.3 (max-pool 3x3, stride 2)")
    for stage in (1, 2, 3):
        size = conv_out(size, 3, 2, 1, layer=f"body.{4 * stage} (binary 3x3 conv, stride 2)")


@register_model
def binary_resnet_e18(num_classes: int = 1000, input_size: int = 224, *,
                      in_channels: int = 3) -> BinaryResNetE:
    """Binary ResNet-E 18 (Larq Zoo); 58.32 % top-1 on ImageNet."""
    small = check_input_size(input_size, "binary_resnet_e18") < SMALL_INPUT
    _check_sizes(input_size, small)
    return BinaryResNetE(num_classes=num_classes, in_channels=in_channels, small_input=small)
