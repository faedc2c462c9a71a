"""Quantized layers and the activations/blocks binary networks use (``bnnkit.nn``).

Layers subclass the torch layers they replace and add ``input_quantizer``,
``kernel_quantizer``, ``pad_value`` and ``weight_clip`` (see :mod:`bnnkit.nn.layers`).
"""

from .activations import (
    DPReLU,
    HardTanh,
    LeakyTanh,
    LearnableBias,
    RPReLU,
    hard_tanh,
    leaky_tanh,
)
from .layers import (
    PAD_VALUES,
    QuantConv1d,
    QuantConv2d,
    QuantDepthwiseConv2d,
    QuantizedLayerMixin,
    QuantLinear,
    apply_weight_clips_,
)

__all__ = [
    "DPReLU",
    "HardTanh",
    "LeakyTanh",
    "LearnableBias",
    "PAD_VALUES",
    "QuantConv1d",
    "QuantConv2d",
    "QuantDepthwiseConv2d",
    "QuantLinear",
    "QuantizedLayerMixin",
    "RPReLU",
    "apply_weight_clips_",
    "hard_tanh",
    "leaky_tanh",
]
