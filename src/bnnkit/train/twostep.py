"""ReActNet's two-step training (Liu et al., ECCV 2020, arXiv 2003.03488, Sec. 4.1).

Step 1 trains with binary activations and real-valued weights; step 2 starts from the
step-1 weights and binarizes the weights too. bnnkit's quantized layers carry their
weight binarizer in ``module.kernel_quantizer`` (and activation binarizers elsewhere), so
step 1 is simply: every layer's ``kernel_quantizer`` set to ``None`` (the layer then uses
its latent float weight as is) and restored for step 2. During step 1 no parameter is
binary, so the optimizer is Adam/SGD for all of them; step 2 builds the configured
optimizer (e.g. Bop + Adam, whose first Bop step binarizes the latent weights by sign).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from torch import nn


def kernel_quantized_modules(model: nn.Module) -> list[nn.Module]:
    """Modules that have a (non-None) ``kernel_quantizer``."""
    return [m for m in model.modules() if getattr(m, "kernel_quantizer", None) is not None]


def strip_kernel_quantizers(model: nn.Module) -> list[tuple[nn.Module, object]]:
    """Set every ``kernel_quantizer`` to None; return ``(module, quantizer)`` to restore."""
    saved = [(m, m.kernel_quantizer) for m in kernel_quantized_modules(model)]
    for module, _ in saved:
        module.kernel_quantizer = None
    return saved


def restore_kernel_quantizers(saved: list[tuple[nn.Module, object]]) -> None:
    for module, quantizer in saved:
        module.kernel_quantizer = quantizer


@contextmanager
def float_weights(model: nn.Module) -> Iterator[int]:
    """Within the block the model's weights are not binarized; yields how many were stripped."""
    saved = strip_kernel_quantizers(model)
    try:
        yield len(saved)
    finally:
        restore_kernel_quantizers(saved)
