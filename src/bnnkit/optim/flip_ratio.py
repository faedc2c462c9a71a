"""The flip ratio of binary weights (Larq's ``larq.metrics.FlipRatio``).

After each optimizer update the ratio is

    flips / N,  flips = #{i : sign(w_i) != sign(w_i^previous)},  N = total number of weights

over all the given tensors together, with sign(0) = +1. The first update only records
the signs (there is nothing to compare with), as in Larq; :attr:`FlipRatio.value` is the
mean of the ratios of the later updates (Larq's ``result()``). The Bop paper
(arXiv 1906.02107) uses it to watch how many weights flip as gamma and tau change.
"""

from __future__ import annotations

from typing import Iterable

import torch
from torch import nn

__all__ = ["FlipRatio"]


def _tensors(params) -> list[torch.Tensor]:
    """Tensors from a module (its binary weights), tensors, (name, tensor) or groups."""
    if isinstance(params, nn.Module):
        from .case import split_parameters

        return split_parameters(params)[0]
    if isinstance(params, torch.Tensor):
        return [params]
    out: list[torch.Tensor] = []
    for item in params:
        if isinstance(item, dict):
            out.extend(_tensors(item["params"]))
        else:
            out.append(item[1] if isinstance(item, tuple) else item)
    return out


class FlipRatio:
    """Fraction of binary weights whose sign changed since the previous :meth:`update`.

    Args:
        params: the binary weights to watch: tensors, ``(name, tensor)`` pairs,
            param-group dicts, or an ``nn.Module`` (its binary weights, as chosen by
            :func:`bnnkit.optim.split_parameters`).

    Call :meth:`update` after each optimizer step (or :meth:`attach` it to the
    optimizer). It returns this update's ratio, or ``None`` on the first update.
    """

    def __init__(self, params: Iterable[torch.Tensor] | nn.Module):
        self.params = _tensors(params)
        if not self.params:
            raise ValueError("FlipRatio: no parameters to watch")
        self.size = sum(p.numel() for p in self.params)
        self.reset()

    def reset(self) -> None:
        """Forget everything: the next update is a first update again."""
        self._previous: list[torch.Tensor] | None = None
        self.total = 0.0
        self.count = 0
        self.last: float | None = None

    def _signs(self) -> list[torch.Tensor]:
        return [p.detach() >= 0 for p in self.params]

    def update(self) -> float | None:
        """Record the current signs; return the flip ratio since the last update."""
        current = self._signs()
        previous, self._previous = self._previous, current
        if previous is None:
            return None
        flips = sum(int((a != b).sum()) for a, b in zip(current, previous))
        self.last = flips / self.size
        self.total += self.last
        self.count += 1
        return self.last

    @property
    def value(self) -> float | None:
        """Mean flip ratio over the updates after the first; ``None`` before the second."""
        return self.total / self.count if self.count else None

    def attach(self, optimizer: torch.optim.Optimizer):
        """Call :meth:`update` after every ``optimizer.step()``; returns the hook handle."""
        return optimizer.register_step_post_hook(lambda *_: self.update())
