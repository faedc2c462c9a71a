"""QuickNet, QuickNet-Small and QuickNet-Large (Larq Zoo "sota", v1.0 weights layout).

Layout (Larq Zoo ``larq_zoo/sota/quicknet.py``; facts only, our own code):

* stem, /4, full precision: 3x3 conv F/4 stride 2 -> BN -> ReLU -> depthwise 3x3
  stride 2 -> BN (no scale, no centre) -> 1x1 conv F -> BN (F = first section's filters);
* sections of residual blocks ``x + BN(ReLU(bconv3x3(x)))`` where ``bconv3x3`` has
  ``ste_sign(clip 1.25)`` on its input and kernel, weight clip 1.25, one-padding, no bias;
* a full-precision transition when the channel count changes: ReLU -> max-pool 2x2
  stride 1 (valid) -> frozen blur-pool 3x3 stride 2 -> 1x1 conv -> BN;
* head: ReLU -> global average pool -> dense with bias.

Batch norms in blocks and transitions use Keras momentum 0.9 and eps 1e-5; the stem's use
Keras' defaults (0.99, 1e-3), as the reference. Stride-2 'same' convs are padded
symmetrically (TensorFlow pads (0, 1) on even inputs): shapes, parameters and MACs are
identical.

Reference numbers at 224x224, 1000 classes (Larq Zoo): 12,655,688 / 13,234,088 /
23,342,248 parameters (counted as :func:`~bnnkit.models._blocks.larq_parameter_count`);
top-1 59.4 / 63.3 / 66.9 %.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from bnnkit import nn as bnn
from bnnkit import quantizers

from ._blocks import BlurPool, GlobalAvgPool, batch_norm, check_input_size, conv_out
from ._registry import register_model

CLIP = 1.25  # ste_sign clip value and weight clip of every binary conv


def _block_bn(channels: int) -> nn.Module:
    return batch_norm(channels, keras_momentum=0.9, eps=1e-5)


class QuickNetBlock(nn.Module):
    """``x + BN(ReLU(bconv3x3(x)))``: a binary 3x3 conv with an identity shortcut."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = bnn.QuantConv2d(
            channels,
            channels,
            3,
            padding=1,
            bias=False,
            input_quantizer=quantizers.SteSign(clip_value=CLIP),
            kernel_quantizer=quantizers.SteSign(clip_value=CLIP),
            pad_value=1.0,
            weight_clip=CLIP,
        )
        self.act = nn.ReLU()
        self.bn = _block_bn(channels)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.bn(self.act(self.conv(x)))


def _stem(in_channels: int, filters: int) -> nn.Sequential:
    """Full-precision stem, output stride 4 (Larq Zoo ``stem_module``)."""
    if filters % 4:
        raise ValueError(f"QuickNet: first section's filters must divide by 4, got {filters}")
    quarter = filters // 4
    return nn.Sequential(
        nn.Conv2d(in_channels, quarter, 3, stride=2, padding=1, bias=False),
        batch_norm(quarter),
        nn.ReLU(),
        nn.Conv2d(quarter, quarter, 3, stride=2, padding=1, groups=quarter, bias=False),
        batch_norm(quarter, scale=False, center=False),
        nn.Conv2d(quarter, filters, 1, bias=False),
        batch_norm(filters),
    )


def _transition(in_channels: int, filters: int, stride: int) -> nn.Sequential:
    """ReLU -> max-pool(stride, stride 1) -> blur-pool(stride) -> 1x1 conv -> BN."""
    return nn.Sequential(
        nn.ReLU(),
        nn.MaxPool2d(stride, stride=1),
        BlurPool(in_channels, stride=stride),
        nn.Conv2d(in_channels, filters, 1, bias=False),
        _block_bn(filters),
    )


def _check_sizes(input_size: int, blocks: Sequence[int], filters: Sequence[int]) -> None:
    """Walk the spatial size through the network; raise naming the first layer too big."""
    size = conv_out(input_size, 3, 2, 1, layer="stem.0 (3x3 conv, stride 2)")
    size = conv_out(size, 3, 2, 1, layer="stem.3 (depthwise 3x3, stride 2)")
    channels = filters[0]
    for i, (n, f) in enumerate(zip(blocks, filters)):
        if f != channels and n > 0:
            stride = 1 if i == 0 else 2
            where = f"transition {i} (max-pool {stride}x{stride})"
            size = conv_out(size, stride, 1, 0, layer=where)
            size = conv_out(size, 3, stride, 1, layer=f"transition {i} (blur-pool)")
            channels = f


class QuickNet(nn.Module):
    """QuickNet: float stem, binary residual sections with float transitions, float head."""

    def __init__(
        self,
        section_blocks: Sequence[int],
        section_filters: Sequence[int],
        num_classes: int = 1000,
        in_channels: int = 3,
    ):
        super().__init__()
        if len(section_blocks) != len(section_filters):
            raise ValueError("QuickNet: section_blocks and section_filters differ in length")
        self.stem = _stem(in_channels, section_filters[0])
        layers: list[nn.Module] = []
        channels = section_filters[0]
        for i, (n, filters) in enumerate(zip(section_blocks, section_filters)):
            for j in range(n):
                if filters != channels:
                    layers.append(_transition(channels, filters, 1 if (i == 0 or j != 0) else 2))
                    channels = filters
                layers.append(QuickNetBlock(channels))
        self.body = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.ReLU(), GlobalAvgPool(), nn.Linear(channels, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(self.stem(x)))


def _create_quicknet(
    blocks: Sequence[int],
    filters: Sequence[int],
    num_classes: int,
    input_size: int,
    *,
    in_channels: int = 3,
) -> QuickNet:
    _check_sizes(check_input_size(input_size, "QuickNet"), blocks, filters)
    return QuickNet(blocks, filters, num_classes=num_classes, in_channels=in_channels)


@register_model
def quicknet_small(num_classes: int = 1000, input_size: int = 224, **kwargs) -> QuickNet:
    """QuickNet-Small: blocks (4, 4, 4, 4), filters (32, 64, 256, 512); 59.4 % top-1."""
    return _create_quicknet((4, 4, 4, 4), (32, 64, 256, 512), num_classes, input_size, **kwargs)


@register_model
def quicknet(num_classes: int = 1000, input_size: int = 224, **kwargs) -> QuickNet:
    """QuickNet: blocks (4, 4, 4, 4), filters (64, 128, 256, 512); 63.3 % top-1."""
    return _create_quicknet((4, 4, 4, 4), (64, 128, 256, 512), num_classes, input_size, **kwargs)


@register_model
def quicknet_large(num_classes: int = 1000, input_size: int = 224, **kwargs) -> QuickNet:
    """QuickNet-Large: blocks (6, 8, 12, 6), filters (64, 128, 256, 512); 66.9 % top-1."""
    return _create_quicknet((6, 8, 12, 6), (64, 128, 256, 512), num_classes, input_size, **kwargs)


@register_model
def quicknet_tiny(num_classes: int = 10, input_size: int = 28, **kwargs) -> QuickNet:
    """A bnnkit variant for small images (28-32 px, e.g. Fashion-MNIST): blocks (2, 2),
    filters (64, 128), the QuickNet stem, transition and head. Not a Larq Zoo model."""
    return _create_quicknet((2, 2), (64, 128), num_classes, input_size, **kwargs)
