"""Optimizers for binarized networks: Bop, a case optimizer, and the flip-ratio metric.

- :class:`Bop` (Helwegen et al. 2019, arXiv 1906.02107) flips binary weights, with
  Larq 0.14's exact update and tie behaviour;
- :func:`split_parameters` separates a model's binary weights from the rest;
- :class:`CaseOptimizer` steps several optimizers as one ``torch.optim.Optimizer``;
  :func:`make_bop_optimizer` builds Bop + Adam/SGD for a model;
- :class:`FlipRatio` measures the fraction of weights flipped per update.
"""

from .bop import Bop, StepDecay
from .case import CaseOptimizer, is_binary_module, make_bop_optimizer, split_parameters
from .flip_ratio import FlipRatio

__all__ = [
    "Bop",
    "StepDecay",
    "CaseOptimizer",
    "split_parameters",
    "make_bop_optimizer",
    "is_binary_module",
    "FlipRatio",
]
