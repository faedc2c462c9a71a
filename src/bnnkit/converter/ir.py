"""The converter's intermediate representation: a list of ops over SSA values.

The IR's ops are exactly the ops of the ``.bnn`` format (docs/format.md section 8), so
emitting a file is a renaming: every pass rewrites a :class:`Graph` into a
:class:`Graph` whose ops the runtime can run. A :class:`Value` is an activation (``data``
None, produced by one op or a graph input) or a constant (``data`` a numpy array in the
logical PyTorch-order shape; ``bits`` constants hold +-1 values and are packed at emit).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


class ConversionError(ValueError):
    """A model (or an option) cannot be converted; the message names the op, the module
    path and what to change."""


@dataclass(eq=False)
class Value:
    """One tensor: ``dtype`` is ``"f32"``, ``"bits"`` or (integer conv/dense weights, data
    held as float32 integers) ``"i8"``; ``shape`` in PyTorch order."""

    name: str
    dtype: str
    shape: tuple
    data: np.ndarray | None = None
    producer: "Op | None" = None

    @property
    def constant(self) -> bool:
        return self.data is not None


@dataclass(eq=False)
class Op:
    """One node: a format op name, input values, one output value, attributes; ``name`` is
    the module path it came from (used in errors and profiles)."""

    op: str
    inputs: list
    output: Value
    attrs: dict = field(default_factory=dict)
    name: str = ""


@dataclass
class Graph:
    """Ops in execution order, the graph inputs and outputs."""

    inputs: list
    outputs: list
    ops: list = field(default_factory=list)
    _names: set = field(default_factory=set)

    def unique(self, base: str) -> str:
        """A tensor name not used yet, derived from ``base``."""
        base = base or "t"
        name, k = base, 1
        while name in self._names:
            k += 1
            name = f"{base}_{k}"
        self._names.add(name)
        return name

    def const(self, base: str, data, dtype: str = "f32") -> Value:
        """A new constant value (float data stored as float32)."""
        arr = np.asarray(data, dtype=np.float32)
        return Value(self.unique(base), dtype, tuple(arr.shape), arr)

    def add(self, op: str, inputs: list, dtype: str, shape: tuple, attrs=None, name="") -> Value:
        """Append ``op`` and return its new output value."""
        out = Value(self.unique(name or op), dtype, tuple(int(d) for d in shape))
        node = Op(op, list(inputs), out, dict(attrs or {}), name)
        out.producer = node
        self.ops.append(node)
        return out

    def consumers(self, value: Value) -> list:
        """The ops that read ``value`` (an op reading it twice appears once)."""
        return [op for op in self.ops if any(v is value for v in op.inputs)]

    def is_output(self, value: Value) -> bool:
        return any(v is value for v in self.outputs)

    def replace_uses(self, old: Value, new: Value) -> None:
        """Make every reader of ``old`` (ops and graph outputs) read ``new``."""
        for op in self.ops:
            op.inputs = [new if v is old else v for v in op.inputs]
        self.outputs = [new if v is old else v for v in self.outputs]

    def remove(self, op: Op) -> None:
        self.ops = [o for o in self.ops if o is not op]

    def only_consumer(self, value: Value) -> Op | None:
        """The single op reading ``value``, or None (several readers, or a graph output)."""
        users = self.consumers(value)
        if len(users) != 1 or self.is_output(value):
            return None
        return users[0]

    def op_counts(self) -> dict:
        """{op name: count}, for reports and tests."""
        counts: dict = {}
        for op in self.ops:
            counts[op.op] = counts.get(op.op, 0) + 1
        return counts
