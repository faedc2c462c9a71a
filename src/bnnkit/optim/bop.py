"""Bop, the binary optimizer (Helwegen et al., "Latent Weights Do Not Exist: Rethinking
Binarized Neural Network Optimization", NeurIPS 2019, arXiv 1906.02107).

Bop keeps no latent real-valued weights. Each binary weight ``w`` (exactly +1 or -1) has
an exponential moving average ``m`` of its gradient, and the weight flips when that
average is large enough and points the same way as the weight::

    m <- m + gamma * (g - m)                           (m starts at 0)
    w <- sign(-sign(w * m - threshold) * w)            sign(0) = +1 in the outer sign

This is exactly Larq 0.14's ``Bop._resource_apply_dense`` (``tf.sign`` inside, whose
sign(0) is 0, and ``larq.math.sign`` outside, whose sign(0) is +1). Reading it case by
case for ``w`` in {-1, +1}:

- ``w * m > threshold`` (strictly): the weight flips, ``w <- -w``;
- ``w * m < threshold``: the weight is kept;
- ``w * m == threshold`` exactly (the tie): the inner sign is 0, so the weight becomes
  **+1 whatever it was** (a -1 weight turns into +1; a +1 weight stays +1).

A real-valued weight given to Bop is binarized by the same formula on its first update:
it becomes ``sign(w)`` (or ``-sign(w)`` when ``w * m > threshold``), with 0 -> +1.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Callable, Union

import torch
from torch.optim import Optimizer

__all__ = ["Bop", "StepDecay", "Hyper"]

#: A hyper-parameter: a number, or a callable ``step -> number`` (see :class:`Bop`).
Hyper = Union[float, Callable[[int], float]]

# Written in place of a callable hyper-parameter in ``state_dict()``; a callable cannot be
# stored in a checkpoint that ``torch.load(weights_only=True)`` can read.
SCHEDULE_MARK = "<schedule>"
_SCHEDULED = ("gamma", "threshold")


class StepDecay:
    """A picklable step schedule: ``initial * factor ** (step // every)``.

    The Bop paper decays gamma by 0.1 every 100 epochs (arXiv 1906.02107, CIFAR-10);
    with ``n`` optimizer steps per epoch that is ``StepDecay(1e-4, 0.1, 100 * n)``.
    """

    def __init__(self, initial: float, factor: float, every: int):
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"StepDecay: every must be a positive int, got {every!r}")
        self.initial, self.factor, self.every = float(initial), float(factor), every

    def __call__(self, step: int) -> float:
        return self.initial * self.factor ** (step // self.every)

    def __repr__(self) -> str:
        return f"StepDecay({self.initial!r}, {self.factor!r}, {self.every!r})"


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_value(name: str, value: Any, where: str) -> float:
    """Validate one hyper-parameter value: gamma in (0, 1], threshold >= 0, finite."""
    if not _is_number(value):
        raise TypeError(f"Bop: {name} must be a real number{where}, got {value!r}")
    value = float(value)
    if name == "gamma" and not 0.0 < value <= 1.0:
        raise ValueError(f"Bop: gamma must be in (0, 1]{where}, got {value!r}")
    if name == "threshold" and not (math.isfinite(value) and value >= 0.0):
        raise ValueError(f"Bop: threshold must be finite and >= 0{where}, got {value!r}")
    return value


def _check_hyper(name: str, value: Any) -> None:
    """Validate a hyper-parameter as given: a callable schedule, or a valid number."""
    if not callable(value):
        _check_value(name, value, "")


def _resolve(name: str, value: Hyper, step: int) -> float:
    """The hyper-parameter's value at ``step`` (a schedule's result is validated)."""
    if callable(value):
        return _check_value(name, value(step), f" (schedule result at step {step})")
    return float(value)


def _binary_sign(x: torch.Tensor) -> torch.Tensor:
    """+1 where x >= 0 else -1 (larq.math.sign; sign(0) = +1), in x's dtype."""
    return torch.where(x >= 0, 1.0, -1.0).to(x.dtype)


def _param_name(group: dict, index: int, group_index: int, param: torch.Tensor) -> str:
    names = group.get("param_names")
    if names is not None:
        return repr(names[index])
    return f"param_groups[{group_index}]['params'][{index}] (shape {tuple(param.shape)})"


class Bop(Optimizer):
    r"""Bop, the binary optimizer (arXiv 1906.02107), with Larq 0.14's exact update.

    For every parameter with a gradient ``g``::

        m <- m + gamma * (g - m)                  (m starts at 0)
        w <- sign(-sign(w * m - threshold) * w)   (outer sign(0) = +1)

    so a weight flips when ``w * m > threshold`` strictly, is kept when
    ``w * m < threshold``, and becomes +1 (whatever it was) on the exact tie
    ``w * m == threshold``. Weights stay exactly +-1 in their float dtype.

    Args:
        params: binary weights (tensors or param-group dicts; named ``(name, tensor)``
            pairs make error messages name the parameter). Use
            :func:`bnnkit.optim.split_parameters` to pick them out of a model.
        gamma: adaptivity rate in (0, 1], or a schedule ``step -> gamma``.
        threshold: flip threshold >= 0, or a schedule ``step -> threshold``.

    Param groups may override ``gamma`` and ``threshold``.

    **Schedules.** A callable is called once per group per :meth:`step` with
    ``group["step"]``, the number of ``step()`` calls this group has completed before
    the current one (0 on the first call; as Keras' ``iterations`` that Larq reads). The
    counter advances on every ``step()``, even for a group whose parameters had no
    gradient, and is saved by :meth:`state_dict`. A schedule's value is checked like a
    constant's (gamma in (0, 1], finite threshold >= 0); a bad one raises ``ValueError``
    naming the step. :class:`StepDecay` is a picklable step schedule.

    **Learning rate.** Every group carries an ``lr`` entry (0.0 by default) that Bop
    ignores: it exists only so ``torch.optim.lr_scheduler`` schedulers, which read and
    write ``lr`` in every group, can drive a :class:`CaseOptimizer` holding Bop. An LR
    scheduler therefore never changes Bop's updates; schedule ``gamma``/``threshold``.

    **Non-binary tensors.** A parameter's first update binarizes it (Larq's behaviour;
    real values become +-1 by the formula above). After that Bop's own updates only
    write +-1, so a parameter that holds any other value at a later step was changed by
    something else (another optimizer, weight decay, user code, a checkpoint of latent
    weights; a quantized layer's ``weight_clip`` below 1): :meth:`step` raises
    ``ValueError`` naming it and changes no weight.
    Non-floating-point parameters are rejected with ``TypeError`` when added, and a
    non-finite initial weight with ``ValueError`` on the first update.

    **NaN/inf gradients** raise ``FloatingPointError`` naming the parameter; all checks
    run before any weight or momentum is written, so a failed step changes nothing.

    **Checkpoints.** :meth:`state_dict` holds each parameter's momentum and each
    group's step counter. A callable hyper-parameter is stored as the string
    ``"<schedule>"``; :meth:`load_state_dict` then keeps the schedule of the optimizer
    being loaded into, which must have one for that entry.
    """

    def __init__(self, params, gamma: Hyper = 1e-4, threshold: Hyper = 1e-8):
        _check_hyper("gamma", gamma)
        _check_hyper("threshold", threshold)
        super().__init__(params, dict(gamma=gamma, threshold=threshold, lr=0.0))

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group (see ``torch.optim.Optimizer``); validates its hyper-parameters."""
        for name in _SCHEDULED:
            if name in param_group:
                _check_hyper(name, param_group[name])
        params = param_group["params"]
        if not isinstance(params, set):  # torch rejects sets (unordered) itself
            params = [params] if isinstance(params, torch.Tensor) else list(params)
        for param in params:
            tensor = param[1] if isinstance(param, tuple) else param
            if isinstance(tensor, torch.Tensor) and not tensor.is_floating_point():
                raise TypeError(f"Bop: parameters must be floating point, got {tensor.dtype}")
        super().add_param_group({**param_group, "params": params})
        self.param_groups[-1].setdefault("step", 0)

    # -- the update ----------------------------------------------------------------

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None):
        """One Bop update of every parameter that has a gradient; returns closure()."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        plans = [self._plan_group(i, group) for i, group in enumerate(self.param_groups)]
        for group, (gamma, threshold, params) in zip(self.param_groups, plans):
            binary = [p for p in params if "momentum" in self.state[p]]
            for param in params:
                if "momentum" not in self.state[param]:
                    self._first_update(param, gamma, threshold)
            if binary:
                self._update_binary(binary, gamma, threshold)
            group["step"] += 1
        return loss

    def _plan_group(self, group_index: int, group: dict):
        """Resolve a group's hyper-parameters and check its parameters (writes nothing).

        The checks are quick reductions with one host sync for the whole group; only when
        one fails are the tensors checked exactly, one by one, to name the culprit.
        """
        gamma = _resolve("gamma", group["gamma"], group["step"])
        threshold = _resolve("threshold", group["threshold"], group["step"])
        indexed = [(i, p) for i, p in enumerate(group["params"]) if p.grad is not None]
        for index, param in indexed:
            if param.grad.is_sparse:
                name = _param_name(group, index, group_index, param)
                raise RuntimeError(f"Bop does not support sparse gradients (parameter {name})")
        if not indexed:
            return gamma, threshold, []
        params = [p for _, p in indexed]
        # Quick tests, exact where they pass: a sum is finite only if every element is
        # (a sum of finite values that overflows only sends us to the exact checks), and
        # |w| == 1 everywhere <=> min |w| == max |w| == 1 (NaN compares unequal).
        sums = [p.grad.sum() for p in params]
        extremes = []
        for p in params:
            if "momentum" in self.state.get(p, {}):
                lo, hi = torch.aminmax(p.abs())
                extremes += [lo - 1, hi - 1]
            else:
                sums.append(p.sum())
        ok = bool(torch.isfinite(torch.stack(sums)).all()
                  and (not extremes or not torch.stack(extremes).any()))
        if not ok:
            for index, param in indexed:
                self._check_param(param, _param_name(group, index, group_index, param))
        return gamma, threshold, params

    def _check_param(self, param: torch.Tensor, name: str) -> None:
        """The per-tensor form of the checks in :meth:`_plan_group` (raises on failure)."""
        if not torch.isfinite(param.grad).all():
            raise FloatingPointError(
                f"Bop: the gradient of parameter {name} contains NaN or inf; "
                "no weight was changed (fix the loss or skip this step)"
            )
        if "momentum" not in self.state.get(param, {}):
            if not torch.isfinite(param).all():
                raise ValueError(f"Bop: parameter {name} has non-finite initial values")
            return
        bad = int((param.abs() != 1).sum())
        if bad:
            raise ValueError(
                f"Bop: parameter {name} holds {bad} value(s) that are not +-1 although "
                "Bop already binarized it; it was changed outside Bop (weight decay, "
                "another optimizer, user code?). Bop only optimizes binary weights."
            )

    def _first_update(self, param: torch.Tensor, gamma: float, threshold: float) -> None:
        """A parameter's first update: it may hold real values, which it binarizes."""
        m = torch.zeros_like(param, memory_format=torch.preserve_format)
        self.state[param]["momentum"] = m
        m.add_(param.grad.to(m.dtype) - m, alpha=gamma)
        param.copy_(_binary_sign(-torch.sign(param * m - threshold) * param))

    def _update_binary(self, params: list[torch.Tensor], gamma: float, threshold: float) -> None:
        """The update of already binary (+-1) weights, batched over the list.

        The same arithmetic as :meth:`_first_update`; with w = +-1 the product
        x = sign(w * m - threshold) * w lies in {-1, 0, 1}, and sign(-x) with
        sign(0) = +1 is 1 - 2 * max(x, 0).
        """
        ms = [self.state[p]["momentum"] for p in params]
        grads = [p.grad if p.grad.dtype == m.dtype else p.grad.to(m.dtype)
                 for p, m in zip(params, ms)]
        torch._foreach_add_(ms, torch._foreach_sub(grads, ms), alpha=gamma)
        x = torch._foreach_mul(params, ms)
        torch._foreach_sub_(x, threshold)
        torch._foreach_sign_(x)
        torch._foreach_mul_(x, params)
        torch._foreach_clamp_min_(x, 0.0)
        torch._foreach_mul_(x, -2.0)
        torch._foreach_add_(x, 1.0)
        torch._foreach_copy_(params, x)

    # -- checkpoints ---------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """``torch.optim.Optimizer.state_dict()`` with schedules replaced by a marker."""
        sd = super().state_dict()
        for group in sd["param_groups"]:
            for name in _SCHEDULED:
                if callable(group[name]):
                    group[name] = SCHEDULE_MARK
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a :meth:`state_dict`; marked schedules keep this optimizer's callables."""
        saved = state_dict["param_groups"]
        if len(saved) != len(self.param_groups):
            raise ValueError(
                f"Bop.load_state_dict: the checkpoint has {len(saved)} param groups, "
                f"this optimizer has {len(self.param_groups)}"
            )
        keep = [self._schedules_to_keep(i, g) for i, g in enumerate(saved)]
        super().load_state_dict(state_dict)
        for group, schedules in zip(self.param_groups, keep):
            group.update(schedules)
            group.setdefault("step", 0)

    def _schedules_to_keep(self, index: int, saved_group: dict) -> dict[str, Any]:
        kept = {}
        for name in _SCHEDULED:
            value = saved_group.get(name)
            if value == SCHEDULE_MARK:
                current = self.param_groups[index][name]
                if not callable(current):
                    raise ValueError(
                        f"Bop.load_state_dict: param group {index} was saved with a "
                        f"schedule for {name}; construct this Bop with the same schedule"
                    )
                kept[name] = current
            else:
                _check_hyper(name, value)
        return kept
