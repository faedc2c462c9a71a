"""A small helper to build ``.bnn`` model descriptions in code (used by the converter and tests).

    b = Builder(name="tiny")
    x = b.input("x", (1, 8, 6, 6))
    w = b.const("w", weights_pm1, "bits")                 # logical (O, I, KH, KW) +-1 values
    y = b.op("bconv2d", [b.op("quantize", [x]), w], {"pad": [1, 1, 1, 1]}, dtype="bits")
    b.output(b.op("dequantize", [y]))
    data = b.write("tiny.bnn")                             # validated, atomic; returns bytes

Activation shapes are inferred by the writer from the op contracts (docs/format.md).
"""

from __future__ import annotations

import numpy as np

from bnnkit.format.writer import write


class Builder:
    """Accumulates tensors and nodes in file order; names must be unique."""

    def __init__(self, name: str | None = None, metadata: dict | None = None):
        self.tensors, self.nodes, self.inputs, self.outputs = [], [], [], []
        self.metadata = dict(metadata or {})
        if name is not None:
            self.metadata["model.name"] = name

    def input(self, name: str, shape) -> str:
        """A graph input (f32, PyTorch order)."""
        self.tensors.append({"name": name, "dtype": "f32", "shape": tuple(shape)})
        self.inputs.append(name)
        return name

    def const(self, name: str, data, dtype: str = "f32") -> str:
        """A constant; for ``bits`` give the logical +-1 values (packed on write)."""
        data = np.asarray(data)
        self.tensors.append({"name": name, "dtype": dtype, "shape": data.shape, "data": data})
        return name

    def op(self, op: str, inputs, attrs=None, dtype=None, shape=None, name=None) -> str:
        """Adds a node; returns its output tensor's name (``name`` names node and output)."""
        out = name or f"t{len(self.tensors)}"
        self.tensors.append({"name": out, "dtype": dtype, "shape": shape})
        self.nodes.append({"op": op, "inputs": list(inputs), "outputs": [out], "attrs": dict(attrs or {}),
                           "name": name or f"n{len(self.nodes)}_{op}"})
        return out

    def output(self, name: str) -> None:
        self.outputs.append(name)

    def desc(self) -> dict:
        """The description dict accepted by :func:`bnnkit.format.write`."""
        return {"metadata": dict(self.metadata), "tensors": self.tensors, "nodes": self.nodes,
                "inputs": self.inputs, "outputs": self.outputs}

    def write(self, path=None) -> bytes:
        """Validated bytes of the file (also written atomically to ``path`` if given)."""
        return write(path, self.desc())
