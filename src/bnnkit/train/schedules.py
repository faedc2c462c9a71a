"""Per-step schedules for the learning rate and Bop's gamma / threshold.

Each schedule is a pure function of the global optimizer step, so a resumed run only has
to know the step: nothing else needs saving. With ``W`` warm-up steps and ``T`` total steps,

* warm-up: ``f(s) = (s + 1) / W`` for ``s < W`` (linear, never exactly 0);
* cosine (Loshchilov & Hutter 2017, SGDR without restarts):
  ``f(s) = r + (1 - r) * (1 + cos(pi * (s - W) / (T - W))) / 2`` with ``r = min_lr / lr``;
* step: ``f(s) = factor ** floor(s / every)``;
* constant: ``f(s) = 1``.

:class:`GroupScheduler` writes ``base * f(step)`` into a key (``lr``, ``gamma``,
``threshold``) of some optimizer param groups before each step.
"""

from __future__ import annotations

import math
from typing import Callable


def warmup_cosine(total: int, warmup: int = 0, floor: float = 0.0) -> Callable[[int], float]:
    """Linear warm-up over ``warmup`` steps then cosine decay to ``floor`` at step ``total``."""
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        span = max(1, total - warmup)
        t = min(1.0, (step - warmup) / span)
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * t))
    return f


def warmup_step(every: int, factor: float, warmup: int = 0) -> Callable[[int], float]:
    """Linear warm-up then ``factor ** (step // every)`` (``every`` in steps)."""
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return factor ** (step // max(1, every))
    return f


def constant(warmup: int = 0) -> Callable[[int], float]:
    """1 after an optional linear warm-up."""
    return warmup_step(every=1, factor=1.0, warmup=warmup)


class GroupScheduler:
    """Set ``group[key] = base * factor(step)`` in each of ``groups`` (bases read once)."""

    def __init__(self, groups: list[dict], key: str, factor: Callable[[int], float]):
        self.groups, self.key, self.factor = groups, key, factor
        self.bases = [float(g[key]) for g in groups]

    def apply(self, step: int) -> float:
        """Write the values for ``step``; returns the factor."""
        f = self.factor(step)
        for group, base in zip(self.groups, self.bases):
            group[self.key] = base * f
        return f

    def state_dict(self) -> dict:
        return {"key": self.key, "bases": list(self.bases)}

    def load_state_dict(self, state: dict) -> None:
        if state["key"] != self.key or len(state["bases"]) != len(self.bases):
            raise ValueError(f"schedule state for {state['key']!r} x{len(state['bases'])} does "
                             f"not fit {self.key!r} x{len(self.bases)}")
        self.bases = [float(b) for b in state["bases"]]
