"""XNOR-Net (Rastegari et al., ECCV 2016, arXiv 1603.05279), Larq Zoo layout.

An AlexNet whose binary layers use ``ste_sign`` inputs and scaled binary weights
``a_o * sign(w)`` with ``a_o`` = mean|w| per output channel (``magnitude_aware_sign``;
Larq Zoo's ``xnor_weight_scale`` clips w to [-1, 1] first, which the weight clip 1
already guarantees), zero padding, no biases, and batch norm *before* each binary layer
(Keras ``scale=False``, momentum 0.9):

    float conv 96 11x11/4 -> BN -> ReLU -> max-pool -> BN
    bconv 256 5x5 -> max-pool -> BN -> bconv 384 3x3 -> BN -> bconv 384 3x3 -> BN
    -> bconv 256 3x3 -> max-pool -> BN -> bconv 4096 6x6 valid -> BN
    -> bconv 4096 1x1 -> BN -> ReLU -> flatten -> float dense (no bias)

Max-pools are 3x3 stride 2 'valid'. BN eps: 1e-5 (first), 1e-4, and 1e-3 (last), as the
reference. Larq Zoo (``larq_zoo/literature/xnornet.py``): 44.96 % top-1; Larq's summary
counts 62,387,104 parameters at 224x224 (docs: Keras' count 62,396,768).

Small inputs: below ``SMALL_INPUT`` pixels the first conv has stride 1 instead of 4, and
the 6x6 "dense as conv" layer shrinks to the final map size when that is below 6 (at
224x224 it is exactly 6, so the layer is a dense layer over the whole map).
"""

from __future__ import annotations

from torch import Tensor, nn

from bnnkit import nn as bnn
from bnnkit import quantizers

from ._blocks import batch_norm, check_input_size, conv_out, same_padding
from ._registry import register_model

SMALL_INPUT = 64
# (filters, kernel, max-pool after) of the binary convs before the 6x6 layer
BINARY_CONVS = ((256, 5, True), (384, 3, False), (384, 3, False), (256, 3, True))


def _bn(channels: int, eps: float = 1e-4) -> nn.Module:
    return batch_norm(channels, keras_momentum=0.9, eps=eps, scale=False)


def _bconv(in_ch: int, out_ch: int, kernel: int, padding: int) -> nn.Module:
    return bnn.QuantConv2d(
        in_ch, out_ch, kernel, padding=padding, bias=False,
        input_quantizer=quantizers.SteSign(), kernel_quantizer=quantizers.MagnitudeAwareSign(),
        pad_value=0.0, weight_clip=1.0,
    )


def _stem(input_size: int, in_channels: int) -> tuple[list[nn.Module], int]:
    stride = 4 if input_size >= SMALL_INPUT else 1
    before, after = same_padding(input_size, 11, stride)
    layers = [
        nn.ZeroPad2d((before, after, before, after)),
        nn.Conv2d(in_channels, 96, 11, stride=stride, bias=False),
        _bn(96, eps=1e-5), nn.ReLU(), nn.MaxPool2d(3, stride=2), _bn(96),
    ]
    size = -(-input_size // stride)  # the stem conv is 'same': ceil(size / stride)
    size = conv_out(size, 3, 2, layer="features.4 (max-pool 3x3 after the stem)")
    return layers, size


def _features(input_size: int, in_channels: int) -> tuple[list[nn.Module], int]:
    layers, size = _stem(input_size, in_channels)
    channels = 96
    for out, kernel, pool in BINARY_CONVS:
        layers.append(_bconv(channels, out, kernel, kernel // 2))
        if pool:
            layers.append(nn.MaxPool2d(3, stride=2))
            size = conv_out(size, 3, 2, layer=f"features.{len(layers) - 1} (max-pool 3x3)")
        layers.append(_bn(out))
        channels = out
    return layers, size


class XNORNet(nn.Module):
    """XNOR-Net: float stem, binary AlexNet body, float dense head."""

    def __init__(self, num_classes: int = 1000, input_size: int = 224, in_channels: int = 3):
        super().__init__()
        layers, size = _features(input_size, in_channels)
        kernel = min(6, size)
        out = conv_out(size, kernel, layer="features (6x6 binary conv)")
        layers += [_bconv(256, 4096, kernel, 0), _bn(4096)]
        layers += [_bconv(4096, 4096, 1, 0), _bn(4096, eps=1e-3)]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.ReLU(), nn.Flatten(), nn.Linear(4096 * out * out, num_classes, bias=False)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))


@register_model
def xnornet(num_classes: int = 1000, input_size: int = 224, *, in_channels: int = 3) -> XNORNet:
    """XNOR-Net (Larq Zoo); 44.96 % top-1."""
    check_input_size(input_size, "xnornet")
    return XNORNet(num_classes=num_classes, input_size=input_size, in_channels=in_channels)
