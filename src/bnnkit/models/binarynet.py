"""BinaryNet for CIFAR-10 (Courbariaux, Hubara et al., arXiv 1602.02830), the VGG-style
network of the Bop paper's CIFAR-10 table (Helwegen et al., arXiv 1906.02107).

    128C3 - 128C3 - MP2 - 256C3 - 256C3 - MP2 - 512C3 - 512C3 - MP2 - 1024FC - 1024FC - 10FC

Every layer has ``ste_sign`` binary weights (weight clip 1) and no bias, and is followed
by batch norm without scale (Keras ``scale=False``, default momentum 0.99, eps 1e-3);
max-pools sit between a conv and its BN. Every layer but the first binarizes its input
with ``ste_sign``; the first conv sees the real image and is 'valid' (32 -> 30), the
others are 'same' with zero padding. The output is the last BN's (logits; the reference's
softmax belongs to the loss).

Layout: ``plumerai/rethinking-bnn-optimization`` ``models/binarynet.py`` (hparams
``bop``: filters 128, dense units 1024), also Larq's "BinaryNet on CIFAR-10" example.
Larq's summary at 32x32, 10 classes: 10,352,000 binary + 7,700 float parameters
(10,359,700). Bop paper: 91.3 % top-1 with Bop, 90.9 % with Adam on latent weights.
"""

from __future__ import annotations

from torch import Tensor, nn

from ._blocks import batch_norm, check_input_size, conv_out, larq_binary_conv, larq_binary_dense
from ._registry import register_model

CONVS = ((128, False), (128, True), (256, False), (256, True), (512, False), (512, True))


def _bn(channels: int, dims: int = 2) -> nn.Module:
    return batch_norm(channels, keras_momentum=0.99, eps=1e-3, scale=False, dims=dims)


def _features(input_size: int, in_channels: int) -> tuple[list[nn.Module], int]:
    layers: list[nn.Module] = []
    size = conv_out(input_size, 3, layer="features.0 (first 3x3 conv, valid)")
    channels = in_channels
    for i, (out, pool) in enumerate(CONVS):
        layers.append(larq_binary_conv(channels, out, 3, padding=0 if i == 0 else 1, first=i == 0))
        if pool:
            layers.append(nn.MaxPool2d(2, stride=2))
            size = conv_out(size, 2, 2, layer=f"features.{len(layers) - 1} (max-pool 2x2)")
        layers.append(_bn(out))
        channels = out
    return layers, size


class BinaryNet(nn.Module):
    """VGG-style BinaryNet: six binary convs, three binary dense layers, BN after each."""

    def __init__(self, num_classes: int = 10, input_size: int = 32, in_channels: int = 3,
                 dense_units: int = 1024):
        super().__init__()
        layers, size = _features(input_size, in_channels)
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            larq_binary_dense(CONVS[-1][0] * size * size, dense_units), _bn(dense_units, dims=1),
            larq_binary_dense(dense_units, dense_units), _bn(dense_units, dims=1),
            larq_binary_dense(dense_units, num_classes), _bn(num_classes, dims=1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))


@register_model
def binarynet_cifar(num_classes: int = 1000, input_size: int = 224, *,
                    in_channels: int = 3) -> BinaryNet:
    """BinaryNet (Bop paper, CIFAR-10); build it with ``num_classes=10, input_size=32``.

    Its first dense layer grows with the input (512 * s * s inputs, s = 3 at 32x32).
    """
    check_input_size(input_size, "binarynet_cifar")
    return BinaryNet(num_classes=num_classes, input_size=input_size, in_channels=in_channels)
