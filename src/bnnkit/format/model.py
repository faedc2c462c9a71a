"""In-memory form of a ``.bnn`` file: :class:`ModelFile` with :class:`Tensor` and :class:`Node`."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bnnkit import bits as _bits
from bnnkit.format.spec import channel_axis


class FormatError(ValueError):
    """A ``.bnn`` file (or a model description) breaks the format; the message names the field."""


@dataclass
class Tensor:
    """A tensor record. ``data`` is the stored array of a constant (bits: packed uint32 words,
    channels-last, see docs/format.md section 5) or None for an activation."""

    name: str
    dtype: str
    shape: tuple
    data: np.ndarray | None = None

    @property
    def constant(self) -> bool:
        return self.data is not None

    def numpy(self) -> np.ndarray:
        """The logical values in PyTorch order (``bits`` unpacked to float32 +-1)."""
        if self.data is None:
            raise ValueError(f"tensor '{self.name}' is an activation and has no data")
        if self.dtype != "bits":
            return self.data.reshape(self.shape)
        axis = channel_axis(len(self.shape))
        values = _bits.unpack_bits(self.data, self.shape[axis])
        return np.moveaxis(values, -1, axis)


@dataclass
class Node:
    """A node record: op name, input/output tensor indices, attributes, optional name."""

    op: str
    inputs: list
    outputs: list
    attrs: dict = field(default_factory=dict)
    name: str = ""


@dataclass
class ModelFile:
    """A whole ``.bnn`` file: metadata, tensor table, nodes and graph inputs/outputs."""

    metadata: dict
    tensors: list
    nodes: list
    inputs: list
    outputs: list

    def index(self, name: str) -> int:
        """Index of the tensor called ``name``."""
        for i, t in enumerate(self.tensors):
            if t.name == name:
                return i
        raise KeyError(f"no tensor named {name!r}")

    def tensor(self, name: str) -> Tensor:
        return self.tensors[self.index(name)]

    @property
    def input_names(self) -> list:
        return [self.tensors[i].name for i in self.inputs]

    @property
    def output_names(self) -> list:
        return [self.tensors[i].name for i in self.outputs]
