"""Bi-Real Net 18 (Liu et al., ECCV 2018, arXiv 1808.00278), Larq Zoo literature layout.

Every binary 3x3 conv has its own real-valued shortcut: ``x + BN(bconv3x3(x))`` (so the
real activations flow around each binarization), with ``approx_sign`` on the input
(gradient ``2 - 2|x|`` on [-1, 1]), ``magnitude_aware_sign`` on the kernel (per output
channel mean|w| times sign(w)), weight clip 1 and zero padding (Larq's default
``pad_values=0``). Downsampling: the binary conv has stride 2 and the shortcut is average
pool 2x2 -> float 1x1 conv -> BN.

Layout (Larq Zoo ``larq_zoo/literature/birealnet.py``): 7x7 float conv 64 stride 2 ->
BN -> max-pool 3x3 stride 2; 4 blocks of 64, then 3 x (one downsampling block that
doubles the channels + 3 blocks); global average pool -> dense with bias. Batch norms use
Keras momentum 0.8 and eps 1e-3. 16 binary convs + stem + dense = 18 layers.
Reported: 56.4 % top-1 (paper); Larq's summary counts 11,689,512 parameters at 224x224.
"""

from __future__ import annotations

from torch import Tensor, nn

from bnnkit import nn as bnn
from bnnkit import quantizers

from ._blocks import GlobalAvgPool, RealShortcutBlock, batch_norm, check_input_size, conv_out
from ._registry import register_model


def _bn(channels: int) -> nn.Module:
    return batch_norm(channels, keras_momentum=0.8, eps=1e-3)


def _block(in_channels: int, out_channels: int) -> RealShortcutBlock:
    conv = bnn.QuantConv2d(
        in_channels,
        out_channels,
        3,
        stride=1 if in_channels == out_channels else 2,
        padding=1,
        bias=False,
        input_quantizer=quantizers.ApproxSign(),
        kernel_quantizer=quantizers.MagnitudeAwareSign(),
        pad_value=0.0,
        weight_clip=1.0,
    )
    return RealShortcutBlock(conv, _bn, in_channels, out_channels)


class BiRealNet(nn.Module):
    """Bi-Real Net: float stem, 16 binary convs each with a real shortcut, float head."""

    def __init__(self, num_classes: int = 1000, filters: int = 64, in_channels: int = 3):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, filters, 7, stride=2, padding=3, bias=False),
            _bn(filters),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
        blocks, channels = [], filters
        for stage in range(4):
            out = channels if stage == 0 else 2 * channels
            blocks.append(_block(channels, out))
            blocks += [_block(out, out) for _ in range(3)]
            channels = out
        self.body = nn.Sequential(*blocks)
        self.head = nn.Sequential(GlobalAvgPool(), nn.Linear(channels, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(self.stem(x)))


def _check_sizes(input_size: int) -> None:
    size = conv_out(input_size, 7, 2, 3, layer="stem.0 (7x7 conv, stride 2)")
    size = conv_out(size, 3, 2, 1, layer="stem.2 (max-pool 3x3, stride 2)")
    for stage in (1, 2, 3):
        size = conv_out(size, 3, 2, 1, layer=f"body.{4 * stage} (binary 3x3 conv, stride 2)")


@register_model
def birealnet18(
    num_classes: int = 1000, input_size: int = 224, *, in_channels: int = 3
) -> BiRealNet:
    """Bi-Real Net 18 (Larq Zoo literature variant); 56.4 % top-1 reported."""
    _check_sizes(check_input_size(input_size, "birealnet18"))
    return BiRealNet(num_classes=num_classes, in_channels=in_channels)
