"""Losses: cross-entropy with label smoothing, and knowledge distillation.

Distillation (Hinton, Vinyals & Dean 2015, arXiv 1503.02531) as used by ReActNet and the
Larq Zoo QuickNet recipe: with temperature ``T`` and weight ``alpha``::

    L = alpha * T^2 * KL(softmax(z_t / T) || softmax(z_s / T)) + (1 - alpha) * CE(z_s, y)

(the ``T^2`` keeps the gradient scale of the soft term independent of ``T``). The teacher
runs in eval mode without gradients.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ClassificationLoss(nn.Module):
    """Cross-entropy (with ``label_smoothing``), optionally mixed with distillation."""

    def __init__(self, label_smoothing: float = 0.0, teacher: nn.Module | None = None,
                 alpha: float = 0.9, temperature: float = 4.0):
        super().__init__()
        self.label_smoothing, self.alpha, self.temperature = label_smoothing, alpha, temperature
        self.teacher = teacher.eval().requires_grad_(False) if teacher is not None else None

    def train(self, mode: bool = True):
        super().train(mode)
        if self.teacher is not None:
            self.teacher.eval()
        return self

    def forward(self, logits: torch.Tensor, target: torch.Tensor,
                inputs: torch.Tensor | None = None) -> torch.Tensor:
        ce = F.cross_entropy(logits.float(), target, label_smoothing=self.label_smoothing)
        if self.teacher is None:
            return ce
        with torch.no_grad():
            teacher_logits = self.teacher(inputs).float()
        return self.alpha * kd_loss(logits.float(), teacher_logits, self.temperature) + \
            (1.0 - self.alpha) * ce


def kd_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """``T^2 * KL(softmax(teacher/T) || softmax(student/T))``, averaged over the batch."""
    t = temperature
    return F.kl_div(F.log_softmax(student / t, dim=1), F.log_softmax(teacher / t, dim=1),
                    reduction="batchmean", log_target=True) * (t * t)
