"""Several optimizers over disjoint parameter sets as one ``torch.optim.Optimizer``.

A binarized network mixes binary weights (trained by :class:`~bnnkit.optim.Bop`) with
real-valued ones (biases, batch-norm, float first/last layers, learnable shifts; trained
by Adam or SGD). :func:`split_parameters` separates them the way Larq's
``Bop.is_binary_variable`` does (a kernel whose quantizer has ``precision == 1``), and
:class:`CaseOptimizer` (after Larq's ``CaseOptimizer``) steps both as one optimizer that
LR schedulers, checkpoints and ``zero_grad`` treat like any other.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn
from torch.optim import Optimizer

from .bop import Bop, Hyper

__all__ = ["CaseOptimizer", "split_parameters", "make_bop_optimizer", "is_binary_module"]


def is_binary_module(module: nn.Module) -> bool:
    """True when ``module.kernel_quantizer.precision == 1`` and it has a ``weight``."""
    quantizer = getattr(module, "kernel_quantizer", None)
    precision = getattr(quantizer, "precision", None)
    return precision == 1 and isinstance(getattr(module, "weight", None), nn.Parameter)


def _split_named(model: nn.Module):
    """(binary, other) lists of ``(name, parameter)``; each parameter appears once."""
    binary_ids = {
        id(m.weight) for m in model.modules() if is_binary_module(m)
    }
    binary, other = [], []
    for name, param in model.named_parameters():  # de-duplicates shared parameters
        (binary if id(param) in binary_ids else other).append((name, param))
    return binary, other


def split_parameters(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """Split ``model``'s parameters into ``(binary_params, other_params)``.

    The binary parameters are the ``weight`` of every module whose ``kernel_quantizer``
    has ``precision == 1`` (bnnkit.nn's binary ``QuantConv*``/``QuantLinear``; Larq's
    ``Bop.is_binary_variable``). Everything else (biases, batch-norm, float or k-bit
    layers, learnable quantizer shifts) is in ``other_params``. Together they are
    ``model.parameters()``: each parameter exactly once (shared ones included once), in
    the model's order.
    """
    binary, other = _split_named(model)
    return [p for _, p in binary], [p for _, p in other]


def _describe(param: torch.Tensor) -> str:
    return f"{type(param).__name__} of shape {tuple(param.shape)}"


def _check_disjoint(optimizers: tuple[Optimizer, ...]) -> None:
    owner: dict[int, int] = {}
    for index, optimizer in enumerate(optimizers):
        for group in optimizer.param_groups:
            for param in group["params"]:
                first = owner.setdefault(id(param), index)
                if first != index:
                    raise ValueError(
                        "CaseOptimizer: a parameter "
                        f"({_describe(param)}) is in optimizer {first} "
                        f"({type(optimizers[first]).__name__}) and in optimizer {index} "
                        f"({type(optimizer).__name__}); parameter sets must be disjoint"
                    )


class CaseOptimizer(Optimizer):
    """Steps several optimizers over disjoint parameter sets as one optimizer.

    ``CaseOptimizer(bop, adam)`` behaves like a single ``torch.optim.Optimizer``:

    - :meth:`step` evaluates ``closure`` (if given) once, then steps every optimizer in
      order without a closure (optimizers that need one, such as LBFGS, are not supported);
    - :meth:`zero_grad` forwards to every optimizer;
    - ``param_groups`` is the concatenation of the optimizers' own group dicts (the same
      objects), so ``torch.optim.lr_scheduler`` schedulers change Adam's/SGD's ``lr``
      directly. Bop groups carry an ``lr`` that Bop ignores (see :class:`Bop`).
      ``defaults`` is empty, so ``OneCycleLR``/``CyclicLR`` need ``cycle_momentum=False``;
    - :meth:`state_dict` is ``{"optimizers": [each optimizer's state_dict()]}`` plus
      their class names; :meth:`load_state_dict` checks those and loads each in turn;
    - ``state`` is a read-only merged view of the optimizers' per-parameter state.

    Raises ``ValueError`` when a parameter belongs to more than one optimizer and
    ``TypeError`` when an argument is not a ``torch.optim.Optimizer``.
    """

    def __init__(self, *optimizers: Optimizer):
        if not optimizers:
            raise ValueError("CaseOptimizer needs at least one optimizer")
        for index, optimizer in enumerate(optimizers):
            if not isinstance(optimizer, Optimizer):
                raise TypeError(
                    f"CaseOptimizer: argument {index} is {type(optimizer).__name__}, "
                    "not a torch.optim.Optimizer"
                )
        _check_disjoint(optimizers)
        self.optimizers = list(optimizers)
        # Sets up torch's hook tables and step profiling; the empty group goes nowhere
        # because param_groups below is a view of the optimizers' groups.
        super().__init__([{"params": []}], {})

    # A live view, so groups added to an inner optimizer later are seen too.
    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return [group for opt in self.optimizers for group in opt.param_groups]

    @param_groups.setter
    def param_groups(self, value) -> None:
        if value:
            raise AttributeError("CaseOptimizer.param_groups is a view; edit the inner optimizers")

    @property
    def state(self) -> dict[torch.Tensor, Any]:
        merged: dict[torch.Tensor, Any] = {}
        for optimizer in self.optimizers:
            merged.update(optimizer.state)
        return merged

    @state.setter
    def state(self, value) -> None:
        if value:
            raise AttributeError("CaseOptimizer.state is a view; edit the inner optimizers")

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Not supported: add the group to one of ``self.optimizers`` instead."""
        if param_group.get("params"):
            raise NotImplementedError(
                "CaseOptimizer.add_param_group: add the group to one of its optimizers"
            )

    def step(self, closure: Callable[[], Any] | None = None):
        """Evaluate ``closure`` once (with grad enabled), then step every optimizer."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for optimizer in self.optimizers:
            optimizer.step()
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of every optimizer's parameters."""
        for optimizer in self.optimizers:
            optimizer.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        """``{"classes": [names], "optimizers": [state_dict(), ...]}``."""
        return {
            "classes": [type(opt).__name__ for opt in self.optimizers],
            "optimizers": [opt.state_dict() for opt in self.optimizers],
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a :meth:`state_dict` made by a CaseOptimizer of the same optimizers."""
        if not isinstance(state_dict, dict) or "optimizers" not in state_dict:
            raise ValueError("CaseOptimizer.load_state_dict: not a CaseOptimizer state_dict")
        classes = [type(opt).__name__ for opt in self.optimizers]
        saved = state_dict.get("classes", classes)
        if list(saved) != classes or len(state_dict["optimizers"]) != len(classes):
            raise ValueError(
                f"CaseOptimizer.load_state_dict: checkpoint holds optimizers {list(saved)}, "
                f"this CaseOptimizer has {classes}"
            )
        for optimizer, inner in zip(self.optimizers, state_dict["optimizers"]):
            optimizer.load_state_dict(inner)

    def __getstate__(self) -> dict[str, Any]:
        return {"optimizers": self.optimizers, "defaults": self.defaults}

    def __repr__(self) -> str:
        inner = ",\n".join("  " + repr(opt).replace("\n", "\n  ") for opt in self.optimizers)
        return f"CaseOptimizer(\n{inner}\n)"


_OTHER_OPTIMIZERS: dict[str, type[Optimizer]] = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
}


def _other_optimizer(other: str | Callable[..., Optimizer]) -> Callable[..., Optimizer]:
    if callable(other):
        return other
    if isinstance(other, str) and other.lower() in _OTHER_OPTIMIZERS:
        return _OTHER_OPTIMIZERS[other.lower()]
    raise ValueError(
        f"make_bop_optimizer: unknown optimizer {other!r}; known: "
        f"{sorted(_OTHER_OPTIMIZERS)} or a callable params -> Optimizer"
    )


def make_bop_optimizer(
    model: nn.Module,
    gamma: Hyper = 1e-4,
    threshold: Hyper = 1e-8,
    other: str | Callable[..., Optimizer] = "adam",
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    **other_kwargs: Any,
) -> CaseOptimizer:
    """Bop on ``model``'s binary weights plus Adam/AdamW/SGD on the rest, as one optimizer.

    ``other`` is ``"adam"``, ``"adamw"``, ``"sgd"`` or a callable
    ``(params, lr=..., weight_decay=..., **other_kwargs) -> Optimizer``; ``weight_decay``
    applies only to the non-binary parameters (Bop's weights are +-1). Parameters are
    passed as ``(name, tensor)`` pairs, so errors name them. Raises ``ValueError`` when
    the model has no binary weight (see :func:`split_parameters`).
    """
    binary, rest = _split_named(model)
    if not binary:
        raise ValueError(
            "make_bop_optimizer: the model has no binary weight (no module whose "
            "kernel_quantizer has precision == 1)"
        )
    build = _other_optimizer(other)
    optimizers: list[Optimizer] = [Bop(binary, gamma=gamma, threshold=threshold)]
    if rest:
        optimizers.append(build(rest, lr=lr, weight_decay=weight_decay, **other_kwargs))
    return CaseOptimizer(*optimizers)

