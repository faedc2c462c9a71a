"""Binary AlexNet (Hubara et al., "Binarized Neural Networks", NeurIPS 2016), Larq Zoo.

Every conv and dense layer has ``ste_sign`` binary weights (weight clip 1); every one but
the first also binarizes its input with ``ste_sign``; convs pad with zeros (Larq's
default), no biases. Each layer is ``layer -> [max-pool 3x3 stride 2] -> BN`` with
batch norm without scale (Keras ``scale=False``, momentum 0.9, eps 1e-3):

    conv 64 11x11/4 +pool, conv 192 5x5 +pool, conv 384 3x3, conv 384 3x3,
    conv 256 3x3 +pool, flatten, dense 4096, dense 4096, dense num_classes (+BN, logits)

Layout from Larq Zoo ``larq_zoo/literature/binary_alex_net.py``; 36.30 % top-1 (Larq
Zoo), 41.1 % with Bop (Bop paper). Larq's summary counts 61,848,720 parameters at
224x224 (its docs quote Keras' count, 61,859,192, which adds each BN's beta).

Small inputs: below ``SMALL_INPUT`` pixels the first conv has stride 1 instead of 4
(the three max-pools alone take 32x32 to 3x3); the 11x11/4 'same' conv pads like
TensorFlow (e.g. 3 before and 4 after at 224).
"""

from __future__ import annotations

from torch import Tensor, nn

from ._blocks import (batch_norm, check_input_size, conv_out, larq_binary_conv, larq_binary_dense,
                      same_padding)
from ._registry import register_model

SMALL_INPUT = 64
FEATURES = ((64, 11, True), (192, 5, True), (384, 3, False), (384, 3, False), (256, 3, True))


def _bn(channels: int, dims: int = 2) -> nn.Module:
    return batch_norm(channels, keras_momentum=0.9, eps=1e-3, scale=False, dims=dims)


def _feature_layers(input_size: int, in_channels: int) -> tuple[list[nn.Module], int]:
    """The five conv blocks and the final spatial size; raises naming a too-small layer."""
    stride = 4 if input_size >= SMALL_INPUT else 1
    before, after = same_padding(input_size, 11, stride)
    layers: list[nn.Module] = [nn.ZeroPad2d((before, after, before, after))]
    size, channels = -(-input_size // stride), in_channels
    for i, (out, kernel, pool) in enumerate(FEATURES):
        layers.append(larq_binary_conv(channels, out, kernel, stride=stride if i == 0 else 1,
                                       padding=0 if i == 0 else kernel // 2, first=i == 0))
        if pool:
            layers.append(nn.MaxPool2d(3, stride=2))
            where = f"features.{len(layers) - 1} (max-pool 3x3 after conv {i + 1})"
            size = conv_out(size, 3, 2, layer=where)
        layers.append(_bn(out))
        channels = out
    return layers, size


class BinaryAlexNet(nn.Module):
    """Binary AlexNet: five binary conv blocks and three binary dense blocks."""

    def __init__(self, num_classes: int = 1000, input_size: int = 224, in_channels: int = 3):
        super().__init__()
        layers, size = _feature_layers(input_size, in_channels)
        self.features = nn.Sequential(*layers)
        flat = FEATURES[-1][0] * size * size
        self.classifier = nn.Sequential(
            nn.Flatten(),
            larq_binary_dense(flat, 4096), _bn(4096, dims=1),
            larq_binary_dense(4096, 4096), _bn(4096, dims=1),
            larq_binary_dense(4096, num_classes), _bn(num_classes, dims=1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))


@register_model
def binary_alexnet(num_classes: int = 1000, input_size: int = 224, *,
                   in_channels: int = 3) -> BinaryAlexNet:
    """Binary AlexNet (Larq Zoo); 36.30 % top-1 (Adam), 41.1 % (Bop)."""
    check_input_size(input_size, "binary_alexnet")
    return BinaryAlexNet(num_classes=num_classes, input_size=input_size, in_channels=in_channels)
