"""Cost analysis of a model: ``summary(model, input_size) -> ModelProfile``.

The numbers are computed once, by forward hooks on one forward pass of a zero input
(batch as given, under ``torch.no_grad`` in eval mode, on the model's own device — a model
built under ``torch.device("meta")`` is profiled without allocating memory), into plain
dataclasses (:class:`LayerProfile`, :class:`ModelProfile`). Rendering is separate:
``profile.render()`` / ``str(profile)`` give a terminal table in the style of Larq's
``lq.models.summary``, ``profile.to_dict()`` / ``profile.to_json()`` machine-readable output.

Conventions (Larq 0.14 and PokeBNN, arXiv 2112.00133):

* A layer's weight precision is its kernel quantizer's ``precision`` and its input
  precision its input quantizer's (32 bits when there is none).
* **MAC precision** = max(input bits, weight bits): a binary kernel without an input
  quantizer counts as 32-bit MACs (Larq). Batch-norm, biases, pooling, activations and
  residual adds count 0 MACs. MACs are per sample (divided by the batch size).
* **Parameters**: PyTorch parameters (trainable iff ``requires_grad``), except that a
  batch-norm with running statistics counts as its 2·C moving mean/variance,
  non-trainable, its gamma/beta being folded into them (Larq fuses beta with the moving
  mean and gamma with the moving variance). Quantized kernels are stored at their weight
  precision, everything else at 32 bits; **memory** = sum of bits (binary weights packed
  at 1 bit), shown in KiB/MiB under Larq's labels "kB"/"MB".
* **CPU-ops** (Bi-Real Net, arXiv 1808.00278, and ReActNet: OPs = BOPs / 64 + FLOPs):
  binary MACs / 64 + all other MACs.
* **ACE** (PokeBNN): sum over conv/dense MACs of weight bits x input bits, an
  unquantized (>= 32-bit) operand counted as ``unquantized_bits`` (16, i.e. bf16).
* **Peak activation memory** (per sample): a liveness approximation over the forward
  order of the profiled layers. Every tensor a layer outputs is live from that layer's
  step to the last step that consumes it; a tensor made by untracked code (e.g. a
  functional residual add) is live from the step of its first consumer; sizes are the
  storage sizes (fp32: 4 bytes an element); the peak is the largest sum over one step.
  Temporaries inside one layer and the allocator's reuse are ignored.
* **Energy**: :mod:`bnnkit.energy` (Horowitz ISSCC 2014, 45 nm; every constant sourced).

A leaf module with parameters that is none of conv/dense/norm/known activation or
quantizer is counted at full precision with 0 MACs and named in an
:class:`UnknownLayerWarning`; nothing is dropped silently.
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
import weakref
from dataclasses import dataclass, field

import torch
from torch import nn

from . import energy as _energy

FLOAT_BITS = 32
BINARY_BITS = 1

# Parametric modules with 0 MACs under the conventions above, by class name (so bnnkit.nn
# and user copies of these activations are recognised without importing them).
KNOWN_ZERO_MAC_TYPES = {"PReLU", "DPReLU", "RPReLU", "LearnableBias"}
_NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)


class UnknownLayerWarning(UserWarning):
    """A layer the summary does not know was counted as full precision with 0 MACs."""


def register_zero_mac_type(cls_or_name) -> None:
    """Declare a parametric module type (class or class name) as a known 0-MAC layer."""
    KNOWN_ZERO_MAC_TYPES.add(cls_or_name if isinstance(cls_or_name, str) else cls_or_name.__name__)


# --------------------------------------------------------------------------- profiles


def _fmt_pair(pair: tuple[int, int]) -> str:
    return f"w{pair[0]}a{pair[1]}"


@dataclass
class LayerProfile:
    """Costs of one layer (a conv/dense with its quantizers, a norm, or a leaf module).

    ``params`` maps bits -> number of stored values; ``macs`` maps (weight bits, input
    bits) -> MACs per sample; ``ace`` uses the profile's ``unquantized_bits``.
    """

    name: str
    type: str
    kind: str  # conv | linear | norm | activation | quantizer | op | unknown
    input_precision: int | None = None
    weight_precision: int | None = None
    input_shape: tuple[int, ...] | None = None
    output_shape: tuple[int, ...] | None = None
    params: dict[int, int] = field(default_factory=dict)
    trainable: int = 0
    non_trainable: int = 0
    macs: dict[tuple[int, int], int] = field(default_factory=dict)
    ace: int = 0
    calls: int = 0
    input_elements: int = 0  # per sample, summed over calls (conv/dense only)
    output_elements: int = 0

    @property
    def num_params(self) -> int:
        return self.trainable + self.non_trainable

    @property
    def memory_bits(self) -> int:
        """sum over bit widths of bits x values (binary weights packed at 1 bit)."""
        return sum(b * n for b, n in self.params.items())

    def macs_by_precision(self) -> dict[int, int]:
        """MACs keyed by max(weight bits, input bits) (Larq)."""
        out: dict[int, int] = {}
        for (w, a), n in self.macs.items():
            out[max(w, a)] = out.get(max(w, a), 0) + n
        return out

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["params"] = {str(b): n for b, n in sorted(self.params.items())}
        d["macs"] = {_fmt_pair(p): n for p, n in sorted(self.macs.items())}
        d["memory_bits"] = self.memory_bits
        return d


def _sum_dicts(dicts) -> dict:
    """Key-wise sum of dicts of counts."""
    total: dict = {}
    for d in dicts:
        for k, v in d.items():
            total[k] = total.get(k, 0) + v
    return total


@dataclass
class ModelProfile:
    """Whole-model costs; every total is derived from ``layers`` (see the module docstring)."""

    name: str
    input_shape: tuple[int, ...]
    layers: list[LayerProfile]
    unquantized_bits: int = 16
    peak_activation_bytes: int = 0
    energy: _energy.EnergyEstimate | None = None
    unknown_layers: list[str] = field(default_factory=list)

    # -- parameters and memory
    @property
    def total_params(self) -> int:
        return sum(lp.num_params for lp in self.layers)

    @property
    def trainable_params(self) -> int:
        return sum(lp.trainable for lp in self.layers)

    @property
    def non_trainable_params(self) -> int:
        return sum(lp.non_trainable for lp in self.layers)

    def params_by_bits(self) -> dict[int, int]:
        return dict(sorted(_sum_dicts(lp.params for lp in self.layers).items()))

    @property
    def memory_bits(self) -> int:
        return sum(lp.memory_bits for lp in self.layers)

    @property
    def memory_bytes(self) -> float:
        return self.memory_bits / 8

    @property
    def fp32_bytes(self) -> int:
        """Size if every stored value were a 32-bit float (Larq's "Float-32 Equivalent")."""
        return self.total_params * 4

    @property
    def int8_bytes(self) -> float:
        """Values wider than 8 bits counted at 8 bits, the others at their own width
        (Larq's "Model size (8-bit FP weights)")."""
        return sum(n * min(b, 8) for b, n in self.params_by_bits().items()) / 8

    @property
    def compression_ratio(self) -> float:
        """memory / fp32-equivalent memory (Larq's "Compression Ratio of Memory")."""
        return self.memory_bytes / self.fp32_bytes if self.fp32_bytes else 0.0

    # -- operations
    def macs_by_pair(self) -> dict[tuple[int, int], int]:
        return dict(sorted(_sum_dicts(lp.macs for lp in self.layers).items()))

    def macs_by_precision(self) -> dict[int, int]:
        return dict(sorted(_sum_dicts(lp.macs_by_precision() for lp in self.layers).items()))

    @property
    def total_macs(self) -> int:
        return sum(self.macs_by_pair().values())

    @property
    def binary_macs(self) -> int:
        return self.macs_by_precision().get(BINARY_BITS, 0)

    @property
    def binary_mac_fraction(self) -> float:
        return self.binary_macs / self.total_macs if self.total_macs else 0.0

    @property
    def cpu_ops(self) -> float:
        """Binary MACs / 64 + all other MACs (Bi-Real Net, ReActNet)."""
        return self.binary_macs / 64 + (self.total_macs - self.binary_macs)

    @property
    def ace(self) -> int:
        return sum(lp.ace for lp in self.layers)

    def ace_by_kind(self) -> dict[str, int]:
        """ACE split into ``conv`` and ``linear`` (dense) layers, as PokeBNN reports it."""
        return _sum_dicts({lp.kind: lp.ace} for lp in self.layers if lp.ace)

    # -- output
    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "input_shape": list(self.input_shape),
            "layers": [lp.to_dict() for lp in self.layers],
            "totals": self._totals(),
            "unknown_layers": list(self.unknown_layers),
        }

    def _totals(self) -> dict:
        return {
            "params": self.total_params,
            "trainable_params": self.trainable_params,
            "non_trainable_params": self.non_trainable_params,
            "params_by_bits": {str(b): n for b, n in self.params_by_bits().items()},
            "memory_bits": self.memory_bits,
            "memory_bytes": self.memory_bytes,
            "fp32_bytes": self.fp32_bytes,
            "int8_bytes": self.int8_bytes,
            "compression_ratio": self.compression_ratio,
            "macs_by_precision": {str(b): n for b, n in self.macs_by_precision().items()},
            "macs_by_pair": {_fmt_pair(p): n for p, n in self.macs_by_pair().items()},
            "binary_mac_fraction": self.binary_mac_fraction,
            "cpu_ops": self.cpu_ops,
            "ace": self.ace,
            "ace_by_kind": self.ace_by_kind(),
            "unquantized_bits": self.unquantized_bits,
            "peak_activation_bytes": self.peak_activation_bytes,
            "energy": self.energy.to_dict() if self.energy else None,
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def render(self) -> str:
        """The terminal table: one row per layer, a total row, then the model totals."""
        return render(self)

    def __str__(self) -> str:
        return self.render()


# --------------------------------------------------------------------------- layer kinds


def _is_quantizer(m: nn.Module) -> bool:
    return hasattr(m, "precision") and hasattr(m, "op_name")


def _kind_of(m: nn.Module) -> str | None:
    """The kind of a module that forms one profiled unit, or None for a container."""
    if isinstance(m, (nn.modules.conv._ConvNd,)):
        return "conv"
    if isinstance(m, nn.Linear):
        return "linear"
    if isinstance(m, _NORM_TYPES):
        return "norm"
    if _is_quantizer(m):
        return "quantizer"
    if type(m).__name__ in KNOWN_ZERO_MAC_TYPES:
        return "activation"
    if not any(True for _ in m.children()):
        return "unknown" if any(True for _ in m.parameters(recurse=False)) else "op"
    return None


def _units(model: nn.Module) -> list[tuple[str, nn.Module, str]]:
    """(name, module, kind) of every profiled unit in definition order.

    A conv/dense/norm/activation/quantizer is one unit including its children (its
    quantizers); a container contributes a unit of kind ``unknown`` for parameters it
    holds directly (never dropped), and its children are walked. A module reachable under
    several names is profiled once, under its first name.
    """
    out: list[tuple[str, nn.Module, str]] = []
    seen: set[int] = set()

    def walk(prefix: str, m: nn.Module) -> None:
        if id(m) in seen:
            return
        seen.add(id(m))
        kind = _kind_of(m)
        if kind is not None:
            out.append((prefix or type(m).__name__, m, kind))
            return
        if any(True for _ in m.parameters(recurse=False)):
            out.append((prefix or type(m).__name__, m, "unknown"))
        for name, child in m.named_children():
            walk(f"{prefix}.{name}" if prefix else name, child)

    walk("", model)
    return out


# --------------------------------------------------------------------------- precisions


def _quantizer_bits(q) -> int:
    """Bits of a quantizer's output: its ``precision``, 32 for None or an untagged callable."""
    if q is None:
        return FLOAT_BITS
    bits = getattr(q, "precision", None)
    return int(bits) if bits is not None else FLOAT_BITS


def _precision(m: nn.Module, which: str) -> int:
    """``which`` in {"input", "kernel"}: the layer's ``<which>_precision`` attribute, else
    the precision of its ``<which>_quantizer``, else 32."""
    bits = getattr(m, f"{which}_precision", None)
    if bits is not None:
        return int(bits)
    return _quantizer_bits(getattr(m, f"{which}_quantizer", None))


def _params_of(m: nn.Module, kind: str, own_only: bool) -> tuple[dict[int, int], int, int]:
    """(bits -> count, trainable, non-trainable) of a unit's stored values."""
    bits: dict[int, int] = {}
    trainable = non_trainable = 0
    kernel_bits = _precision(m, "kernel") if kind in ("conv", "linear") else FLOAT_BITS
    folded = kind == "norm" and getattr(m, "running_mean", None) is not None
    for pname, p in m.named_parameters(recurse=not own_only):
        if folded:
            continue  # gamma/beta fold into the moving statistics (Larq)
        b = kernel_bits if pname == "weight" else FLOAT_BITS
        bits[b] = bits.get(b, 0) + p.numel()
        if p.requires_grad:
            trainable += p.numel()
        else:
            non_trainable += p.numel()
    if folded:
        stats = m.running_mean.numel() + m.running_var.numel()
        bits[FLOAT_BITS] = bits.get(FLOAT_BITS, 0) + stats
        non_trainable += stats
    return bits, trainable, non_trainable


def _layer_macs(m: nn.Module, kind: str, x: torch.Tensor, y: torch.Tensor, batch: int) -> int:
    """MACs per sample of one call: conv = outputs x (C_in / groups) x prod(kernel);
    transposed conv = inputs x (C_out / groups) x prod(kernel); dense = outputs x in_features."""
    if kind == "linear":
        return y.numel() // batch * m.in_features
    kernel = math.prod(m.kernel_size)
    if getattr(m, "transposed", False):
        return x.numel() // batch * (m.out_channels // m.groups) * kernel
    return y.numel() // batch * (m.in_channels // m.groups) * kernel


def _ace_bits(bits: int, unquantized_bits: int) -> int:
    return unquantized_bits if bits >= FLOAT_BITS else bits


# --------------------------------------------------------------------------- profiling


class _Liveness:
    """Peak of live tensor bytes over the forward order (see the module docstring)."""

    def __init__(self):
        self.step = 0
        self.entries: list[list] = []  # [weakref, bytes, produced, last_use]
        self.by_id: dict[int, list] = {}  # id -> entry of the live tensor with that id

    def _entry(self, t: torch.Tensor, produced: int) -> list:
        e = self.by_id.get(id(t))
        if e is None or e[0]() is not t:  # new tensor (an id may be reused after a free)
            e = [weakref.ref(t), t.numel() * t.element_size(), produced, produced]
            self.by_id[id(t)] = e
            self.entries.append(e)
        return e

    def use(self, tensors) -> None:
        for t in tensors:
            self._entry(t, self.step)[3] = self.step

    def produce(self, tensors) -> None:
        for t in tensors:
            self._entry(t, self.step)[3] = self.step
        self.step += 1

    def peak(self) -> int:
        live = [0] * (self.step + 1)
        for _, size, first, last in self.entries:
            for s in range(first, last + 1):
                live[s] += size
        return max(live, default=0)


def _tensors(obj) -> list[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [t for o in obj for t in _tensors(o)]
    if isinstance(obj, dict):
        return [t for o in obj.values() for t in _tensors(o)]
    return []


class _Recorder:
    """Forward hooks filling one :class:`LayerProfile` per unit."""

    def __init__(self, units, batch: int, unquantized_bits: int):
        self.batch, self.unq = batch, unquantized_bits
        self.profiles = {id(m): self._profile(n, m, k) for n, m, k in units}
        self.liveness = _Liveness()
        self.order: list[int] = []

    @staticmethod
    def _profile(name: str, m: nn.Module, kind: str) -> LayerProfile:
        own_only = kind == "unknown" and any(True for _ in m.children())
        bits, tr, ntr = _params_of(m, kind, own_only)
        lp = LayerProfile(name, type(m).__name__, kind, params=bits, trainable=tr, non_trainable=ntr)
        if kind in ("conv", "linear"):
            lp.input_precision, lp.weight_precision = _precision(m, "input"), _precision(m, "kernel")
        return lp

    def pre_hook(self, m, args):
        self.liveness.use(_tensors(args))

    def hook(self, m, args, out):
        lp = self.profiles[id(m)]
        if lp.calls == 0:
            self.order.append(id(m))
        lp.calls += 1
        ins, outs = _tensors(args), _tensors(out)
        lp.input_shape = tuple(ins[0].shape) if ins else None
        lp.output_shape = tuple(outs[0].shape) if outs else None
        if lp.kind in ("conv", "linear") and ins and outs:
            self._count(m, lp, ins[0], outs[0])
        self.liveness.produce(outs)

    def _count(self, m, lp: LayerProfile, x, y) -> None:
        n = _layer_macs(m, lp.kind, x, y, self.batch)
        pair = (lp.weight_precision, lp.input_precision)
        lp.macs[pair] = lp.macs.get(pair, 0) + n
        lp.ace += n * _ace_bits(pair[0], self.unq) * _ace_bits(pair[1], self.unq)
        lp.input_elements += x.numel() // self.batch
        lp.output_elements += y.numel() // self.batch

    def ordered(self) -> list[LayerProfile]:
        called = [self.profiles[i] for i in self.order]
        return called + [p for p in self.profiles.values() if p.calls == 0]


class _CallStack:
    """Pre/post hooks on every module, so a failing forward can name the innermost layer."""

    def __init__(self, model: nn.Module):
        self.stack: list[tuple[str, nn.Module]] = []
        self.names = {id(m): n or type(m).__name__ for n, m in model.named_modules()}

    def push(self, m, args):
        self.stack.append((self.names.get(id(m), type(m).__name__), m))

    def pop(self, m, args, out):
        if self.stack and self.stack[-1][1] is m:
            self.stack.pop()


def _input_shape(input_size) -> tuple[int, ...]:
    """An int s -> (1, 3, s, s); a sequence of positive ints -> itself (batch first)."""
    if isinstance(input_size, bool):
        raise TypeError(f"input_size must be an int or a sequence of ints, got {input_size!r}")
    if isinstance(input_size, int):
        input_size = (1, 3, input_size, input_size)
    try:
        shape = tuple(int(d) for d in input_size)
    except TypeError:
        raise TypeError(f"input_size must be an int or a sequence of ints, got {input_size!r}") from None
    if len(shape) < 2 or any(d < 1 for d in shape) or shape != tuple(input_size):
        raise ValueError(f"input_size must be (batch, channels, ...) of positive ints, got {input_size!r}")
    return shape


def _device_of(model: nn.Module) -> torch.device:
    for t in list(model.parameters()) + list(model.buffers()):
        return t.device
    return torch.device("cpu")


def _run(model: nn.Module, x: torch.Tensor, units, batch: int, unq: int) -> _Recorder:
    rec, calls = _Recorder(units, batch, unq), _CallStack(model)
    handles = [m.register_forward_pre_hook(calls.push) for m in model.modules()]
    handles += [m.register_forward_hook(calls.pop) for m in model.modules()]
    for _, m, _ in units:
        handles += [m.register_forward_pre_hook(rec.pre_hook), m.register_forward_hook(rec.hook)]
    modes = {m: m.training for m in model.modules()}
    try:
        model.eval()
        rec.liveness.produce([x])
        with torch.no_grad():
            rec.liveness.use(_tensors(model(x)))
    except NotImplementedError as e:
        name, m = calls.stack[-1] if calls.stack else (type(model).__name__, model)
        raise NotImplementedError(
            f"summary: layer '{name}' ({type(m).__name__}) cannot run on device {x.device}: {e}"
        ) from e
    except (RuntimeError, ValueError, IndexError, TypeError) as e:
        name, m = calls.stack[-1] if calls.stack else (type(model).__name__, model)
        raise ValueError(
            f"summary: an input of shape {tuple(x.shape)} does not fit layer '{name}' "
            f"({type(m).__name__}): {e}"
        ) from e
    finally:
        for h in handles:
            h.remove()
        for m, mode in modes.items():
            m.training = mode
    return rec


def _warn_unknown(profiles: list[LayerProfile]) -> list[str]:
    unknown = [f"{lp.name} ({lp.type})" for lp in profiles if lp.kind == "unknown"]
    if unknown:
        warnings.warn(
            f"summary: {len(unknown)} layer(s) of a type the summary does not know were "
            f"counted as full precision ({FLOAT_BITS}-bit parameters, 0 MACs): {', '.join(unknown)}",
            UnknownLayerWarning,
            stacklevel=3,
        )
    return unknown


def _activation_bits(profiles: list[LayerProfile]) -> int:
    """Activation traffic of the energy model: conv/dense inputs at their input precision,
    outputs at 32 bits."""
    return sum(
        lp.input_elements * lp.input_precision + lp.output_elements * FLOAT_BITS
        for lp in profiles
        if lp.kind in ("conv", "linear")
    )


def summary(
    model: nn.Module,
    input_size=(1, 3, 224, 224),
    *,
    unquantized_bits: int = 16,
    energy_table: _energy.EnergyTable | None = None,
    name: str | None = None,
) -> ModelProfile:
    """Profile ``model`` on one forward pass of a zero input of shape ``input_size``.

    Args:
        model: any ``nn.Module``; run on its own device (``meta`` works) in eval mode,
            under ``torch.no_grad``; its training flags are restored afterwards.
        input_size: an int ``s`` for ``(1, 3, s, s)``, or a full shape, batch first.
        unquantized_bits: bits an unquantized operand counts as in ACE (PokeBNN: 16).
        energy_table: constants of the energy model (default Horowitz 45 nm).
        name: shown in the table's title (default: the model's class name).

    Raises ``ValueError`` naming the innermost layer when the input does not fit the model,
    and warns (:class:`UnknownLayerWarning`) about layers it counts as full precision.
    """
    if isinstance(unquantized_bits, bool) or not isinstance(unquantized_bits, int) or unquantized_bits < 1:
        raise ValueError(f"unquantized_bits must be a positive int, got {unquantized_bits!r}")
    shape = _input_shape(input_size)
    units = _units(model)
    x = torch.zeros(shape, device=_device_of(model), dtype=_dtype_of(model))
    rec = _run(model, x, units, shape[0], unquantized_bits)
    layers = rec.ordered()
    table = energy_table or _energy.HOROWITZ_45NM
    profile = ModelProfile(
        name=name or type(model).__name__,
        input_shape=shape,
        layers=layers,
        unquantized_bits=unquantized_bits,
        peak_activation_bytes=rec.liveness.peak() // shape[0],
    )
    profile.energy = _energy.estimate(profile.macs_by_pair(), profile.memory_bits, _activation_bits(layers), table)
    profile.unknown_layers = _warn_unknown(layers)
    return profile


def _dtype_of(model: nn.Module) -> torch.dtype:
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float32


def summary_for_model_name(
    name: str, input_size: int = 224, num_classes: int = 1000, *, in_channels: int = 3, device="meta", **kwargs
) -> ModelProfile:
    """Build zoo model ``name`` (on ``device``, default ``meta``: no weights are allocated)
    and profile it at ``(1, in_channels, input_size, input_size)``; ``kwargs`` go to
    :func:`summary`. An unknown name raises ``KeyError`` listing close matches."""
    from . import models

    with torch.device(device):
        model = models.create(name, num_classes=num_classes, input_size=input_size,
                              in_channels=in_channels)
    return summary(model, (1, in_channels, input_size, input_size), name=name, **kwargs)


# --------------------------------------------------------------------------- rendering
# Sizes in KiB / MiB under Larq's labels "kB" / "MB"; counts with SI prefixes.

KIB, MIB = 1024, 1024 * 1024


def _si(n: float) -> str:
    """13234088 -> '13.23 M' (k, M, G, T: powers of 1000)."""
    for div, unit in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.2f} {unit}"
    return f"{n:.0f}" if float(n).is_integer() else f"{n:.2f}"


def _mb(nbytes: float) -> str:
    """Bytes in MiB ("MB"), or in KiB ("kB") below 1 MiB."""
    return f"{nbytes / MIB:.2f} MB" if nbytes >= MIB else f"{nbytes / KIB:.2f} kB"


def _shape(shape) -> str:
    return "-" if shape is None else " ".join(["-1", *map(str, shape[1:])])


def _layer_columns(p: ModelProfile) -> tuple[list[int], list[tuple[int, int]]]:
    """Bit widths present among parameters, and (weight bits, input bits) pairs among MACs."""
    return list(p.params_by_bits()), list(p.macs_by_pair())


def _layer_row(lp: LayerProfile, pbits: list[int], mpairs: list[tuple[int, int]]) -> list[str]:
    return [
        lp.name,
        lp.type,
        "-" if lp.input_precision is None or lp.input_precision >= FLOAT_BITS else str(lp.input_precision),
        _shape(lp.output_shape),
        *(str(lp.params.get(b, 0)) for b in pbits),
        f"{lp.memory_bits / 8 / KIB:.2f}",
        *(str(lp.macs.get(pair, 0)) for pair in mpairs),
        str(lp.ace),
    ]


def _total_row(p: ModelProfile, pbits: list[int], mpairs: list[tuple[int, int]]) -> list[str]:
    params, macs = p.params_by_bits(), p.macs_by_pair()
    return [
        "Total",
        "",
        "",
        "",
        *(str(params.get(b, 0)) for b in pbits),
        f"{p.memory_bits / 8 / KIB:.2f}",
        *(str(macs.get(pair, 0)) for pair in mpairs),
        str(p.ace),
    ]


def _box(title: str, rows: list[list[str]], header_rows: int, right: set[int], footer_rows: int = 0) -> str:
    """A Larq-style box: '+title---+', '| cells |' rows, rules under the header and above
    the footer; columns in ``right`` are right-aligned."""
    ncol = max(len(r) for r in rows)
    rows = [r + [""] * (ncol - len(r)) for r in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(ncol)]

    def line(r):
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))]
        return "| " + "  ".join(cells) + " |"

    inner = sum(widths) + 2 * (ncol - 1) + 2
    top = "+" + title + "-" * max(inner - len(title), 0) + "+"
    rule = "+" + "-" * max(inner, len(title)) + "+"
    body = [line(r) for r in rows]
    cut = len(rows) - footer_rows
    out = [top, *body[:header_rows], *([rule] if header_rows else []), *body[header_rows:cut]]
    if footer_rows:
        out += [rule, *body[cut:]]
    return "\n".join([*out, rule])


def render_layers(p: ModelProfile) -> str:
    """The per-layer table; MAC columns are (weight bits, input bits) pairs, e.g. w1a32."""
    pbits, mpairs = _layer_columns(p)
    header = ["Layer", "Type", "Input prec.", "Outputs", *(f"# {b}-bit" for b in pbits), "Memory"]
    header += [f"{_fmt_pair(pair)} MACs" for pair in mpairs] + ["ACE"]
    header2 = ["", "", "(bit)", "", *("x 1" for _ in pbits), "(kB)", *("" for _ in mpairs), ""]
    rows = [header, header2] + [_layer_row(lp, pbits, mpairs) for lp in p.layers]
    rows.append(_total_row(p, pbits, mpairs))
    right = set(range(4, len(header)))
    return _box(f"{p.name} stats", rows, header_rows=2, right=right, footer_rows=1)


def _stat_rows(p: ModelProfile) -> list[list[str]]:
    rows = [
        ["Total params", _si(p.total_params), str(p.total_params)],
        ["Trainable params", _si(p.trainable_params), str(p.trainable_params)],
        ["Non-trainable params", _si(p.non_trainable_params), str(p.non_trainable_params)],
        ["Model size", _mb(p.memory_bytes), f"{p.memory_bits} bits"],
        ["Model size (8-bit FP weights)", _mb(p.int8_bytes), f"{p.int8_bytes:.0f} bytes"],
        ["Float-32 equivalent", _mb(p.fp32_bytes), f"{p.fp32_bytes} bytes"],
        ["Compression ratio of memory", f"{p.compression_ratio:.4f}", "size / fp32 size"],
        ["Number of MACs", _si(p.total_macs), str(p.total_macs)],
    ]
    rows += [[f"  {b}-bit MACs", _si(n), str(n)] for b, n in p.macs_by_precision().items()]
    rows += [
        ["Ratio of MACs that are binarized", f"{p.binary_mac_fraction:.4f}", "1-bit MACs / MACs"],
        ["CPU ops", _si(p.cpu_ops), "1-bit MACs / 64 + other MACs"],
        ["ACE", _si(p.ace), f"sum MACs x w bits x a bits, float as {p.unquantized_bits}x{p.unquantized_bits}"],
    ]
    rows += [[f"  ACE {k}", _si(v), str(v)] for k, v in sorted(p.ace_by_kind().items())]
    rows.append(["Peak activation memory", _mb(p.peak_activation_bytes), "liveness over layer outputs"])
    if p.energy is not None:
        e = p.energy
        source = f"table {e.table}: {e.source}"
        rows.append(["Energy estimate", f"{e.total_pj / 1e6:.2f} uJ", source])
        rows += [
            [f"  {k}", f"{v / 1e6:.2f} uJ", ""]
            for k, v in (("compute", e.compute_pj), ("weights", e.weights_pj), ("activations", e.activations_pj))
        ]
    return rows


def render(p: ModelProfile) -> str:
    """The layer table followed by the model totals (Larq's two boxes)."""
    totals = _box(f"{p.name} summary", _stat_rows(p), header_rows=0, right={1})
    return render_layers(p) + "\n" + totals
