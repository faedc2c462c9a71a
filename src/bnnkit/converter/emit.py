"""Emit an IR graph as a ``.bnn`` file (via :mod:`bnnkit.format`).

Tensors are listed in order: graph inputs, then for each op its not-yet-listed constant
inputs and its output. ``bits`` constants hold +-1 values and are packed by the format
writer (channels-last, 32 per word: docs/format.md section 5). With
``float_weights="f16"`` the weights of float ``conv2d``/``dense`` ops are stored as
IEEE half (the runtime widens them at load; results change by the f16 rounding). Integer
weights (``i8`` with a per-output-channel scale, from k <= 8-bit weight quantizers) are
stored as they are: they are exact.
"""

from __future__ import annotations

import hashlib

import numpy as np

from bnnkit import format as fmt
from bnnkit.format import ops as _ops
from bnnkit.format.writer import normalize

from .ir import Graph, Value

F16_WEIGHT_OPS = ("conv2d", "dense")


def _record(v: Value, dtype: str | None = None) -> dict:
    rec = {"name": v.name, "dtype": dtype or v.dtype, "shape": tuple(v.shape)}
    if v.constant:
        data = v.data.astype(np.float16) if rec["dtype"] == "f16" else v.data
        rec["data"] = data
    return rec


def _content_key(rec: dict) -> tuple:
    """dtype, shape and a digest of the values (a digest, not a copy of every weight)."""
    data = np.ascontiguousarray(rec["data"])
    return rec["dtype"], rec["shape"], str(data.dtype), hashlib.blake2b(data.tobytes(), digest_size=16).digest()


def to_model_file(g: Graph, *, metadata: dict | None = None, float_weights: str = "f32") -> fmt.ModelFile:
    """The :class:`bnnkit.format.ModelFile` of ``g`` (shapes and dtypes as in the IR)."""
    tensors, index, same = [], {}, {}

    def ref(v: Value, dtype=None) -> int:
        # Constants with the same dtype, shape and values are stored once (e.g. the
        # multipliers of batch-norms still at their initial statistics).
        if id(v) not in index:
            rec = _record(v, dtype)
            key = _content_key(rec) if v.constant else None
            if key is not None and key in same and np.array_equal(tensors[same[key]]["data"], rec["data"]):
                index[id(v)] = same[key]
            else:
                index[id(v)] = len(tensors)
                tensors.append(rec)
                if key is not None:
                    same[key] = index[id(v)]
        return index[id(v)]

    for v in g.inputs:
        ref(v)
    nodes = []
    for op in g.ops:
        ins = []
        for k, v in enumerate(op.inputs):
            half = float_weights == "f16" and op.op in F16_WEIGHT_OPS and k == 1 and v.constant and v.dtype == "f32"
            ins.append(ref(v, "f16" if half else None))
        nodes.append({"op": op.op, "inputs": ins, "outputs": [ref(op.output)],
                      "attrs": _non_default(op.op, op.attrs), "name": op.name})
    desc = {"metadata": dict(metadata or {}), "tensors": tensors, "nodes": nodes,
            "inputs": [index[id(v)] for v in g.inputs], "outputs": [index[id(v)] for v in g.outputs]}
    return normalize(desc)


def _is_default(spec: dict, key: str, value) -> bool:
    if key not in spec or spec[key][1] is _ops.REQUIRED:
        return False
    default = spec[key][1]
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple)) and list(value) == list(default)
    return not isinstance(value, (list, tuple)) and value == default


def _non_default(op_name: str, attrs: dict) -> dict:
    """``attrs`` without those equal to the format's defaults (readers fill them in)."""
    spec = _ops.get(op_name).attrs
    return {k: v for k, v in attrs.items() if not _is_default(spec, k, v)}


def emit(g: Graph, path=None, **kwargs) -> bytes:
    """Encode ``g``, validate it with the format's reader, write ``path`` atomically if given."""
    return fmt.write(path, to_model_file(g, **kwargs))
