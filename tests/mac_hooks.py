"""An independent MAC count for the zoo tests: forward hooks on every conv / dense layer."""

from __future__ import annotations

import torch
from torch import nn

from bnnkit.nn import QuantizedLayerMixin


def count_macs(model: nn.Module, size: int) -> dict[int, int]:
    """MACs by precision over one 1-image forward (on meta tensors).

    Every ``nn.Conv2d``/``nn.Linear``: ``out_elements * in_channels / groups * kh * kw``;
    1-bit when it is a bnnkit quantized layer with binary input and kernel, else 32-bit
    (Larq: a binary kernel with a real input is a 32-bit MAC).
    """
    macs = {1: 0, 32: 0}

    def hook(module, args, out):
        bits = 1 if isinstance(module, QuantizedLayerMixin) and module.is_binary else 32
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1]
            per_output = module.in_channels // module.groups * k
        else:
            per_output = module.in_features
        macs[bits] += out[0].numel() * per_output

    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    handles = [m.register_forward_hook(hook) for m in layers]
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, size, size, device="meta"))
    for h in handles:
        h.remove()
    return macs
