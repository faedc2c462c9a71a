"""Pure-numpy writer of ``.bnn`` files (docs/format.md).

``write(path_or_None, model) -> bytes`` encodes a :class:`ModelFile` or a plain description::

    {"metadata": {"model.name": "tiny"},
     "tensors": [{"name": "x", "dtype": "f32", "shape": (1, 8, 4, 4)},
                 {"name": "w", "dtype": "bits", "shape": (16, 8, 3, 3), "data": w_pm1},
                 {"name": "y", "dtype": "f32"}],                   # shape inferred
     "nodes": [{"op": "bconv2d", "inputs": ["q", "w"], "outputs": ["y"], "attrs": {...}}],
     "inputs": ["x"], "outputs": ["y"]}

Tensors and node inputs/outputs may be named or indexed. A ``bits`` constant's data is
either its logical +-1 values (any real dtype, packed here) or the packed uint32 storage
array. Activation shapes and dtypes may be omitted; they are inferred with the op contracts
(a binary conv/dense output defaults to f32; give ``"dtype": "bits"`` for packed output).
The encoded bytes are validated with the reader before anything is written; files are
written atomically (temp file, fsync, ``os.replace``).
"""

from __future__ import annotations

import os
import struct
import tempfile

import numpy as np

from bnnkit import __version__
from bnnkit import bits as _bits
from bnnkit.format import ops as _ops
from bnnkit.format import spec as S
from bnnkit.format.model import FormatError, ModelFile, Node, Tensor
from bnnkit.format.reader import parse


def _string(s: str) -> bytes:
    raw = str(s).encode("utf-8")
    return struct.pack("<I", len(raw)) + raw


def _value_kind(value) -> str:
    if isinstance(value, (bool, int, np.integer)):
        return "int"
    if isinstance(value, (float, np.floating)):
        return "float"
    if isinstance(value, str):
        return "string"
    if not isinstance(value, (list, tuple, np.ndarray)):
        raise FormatError(f"value {value!r} of type {type(value).__name__} is not an int, float, str "
                          "or a list of them")
    items = list(value)
    if items and all(isinstance(v, str) for v in items):
        return "strings"
    if any(isinstance(v, (float, np.floating)) for v in items):
        return "floats"
    return "ints"


def _value(value, kind: str | None = None) -> bytes:
    """Encode a typed value; ``kind`` forces the type (e.g. an op's declared attribute type)."""
    kind = kind or _value_kind(value)
    head = struct.pack("<I", S.VALUE_TYPES[kind])
    if kind == "int":
        return head + struct.pack("<q", int(value))
    if kind == "float":
        return head + struct.pack("<d", float(value))
    if kind == "string":
        return head + _string(value)
    items = list(value)
    body = struct.pack("<I", len(items))
    if kind == "strings":
        return head + body + b"".join(_string(v) for v in items)
    return head + body + np.asarray(items, dtype="<i8" if kind == "ints" else "<f8").tobytes()


def _storage(t: Tensor) -> np.ndarray:
    """The stored array of a constant: cast, and for bits moved channels-last and packed."""
    data = np.asarray(t.data)
    store = S.storage_shape(t.dtype, t.shape)
    if t.dtype == "bits":
        if data.dtype == np.uint32 and data.shape == store:
            return np.ascontiguousarray(data, dtype="<u4")
        if data.shape != tuple(t.shape):
            raise FormatError(f"tensor '{t.name}': data shape {data.shape} is neither the logical "
                              f"shape {tuple(t.shape)} nor the packed shape {store}")
        moved = np.moveaxis(data, S.channel_axis(data.ndim), -1)
        return _bits.pack_bits(moved).astype("<u4")
    if data.shape != tuple(t.shape):
        raise FormatError(f"tensor '{t.name}': data shape {data.shape} != shape {tuple(t.shape)}")
    return np.ascontiguousarray(data.astype(S.NUMPY_DTYPES[t.dtype], copy=False))


def _tensor(d, where: str) -> Tensor:
    if isinstance(d, Tensor):
        return Tensor(d.name, d.dtype, None if d.shape is None else tuple(d.shape), d.data)
    unknown = set(d) - {"name", "dtype", "shape", "data"}
    if unknown:
        raise FormatError(f"{where}: unknown keys {sorted(unknown)}")
    data = d.get("data")
    shape = d.get("shape")
    if shape is None and data is not None and d.get("dtype", "f32") != "bits":
        shape = np.shape(data)
    dtype = d.get("dtype", "f32" if data is not None else None)
    if dtype is not None and dtype not in S.DTYPES:
        raise FormatError(f"{where}: unknown dtype {dtype!r}; known: {sorted(S.DTYPES)}")
    return Tensor(d["name"], dtype, None if shape is None else tuple(int(x) for x in shape), data)


def _resolve(ref, names: dict, where: str) -> int:
    if isinstance(ref, (int, np.integer)):
        return int(ref)
    if ref not in names:
        raise FormatError(f"{where}: no tensor named {ref!r}")
    return names[ref]


def _node(d, names: dict, where: str) -> Node:
    if isinstance(d, Node):
        d = {"op": d.op, "inputs": d.inputs, "outputs": d.outputs, "attrs": d.attrs, "name": d.name}
    _ops.get(d["op"])
    ins = [_resolve(r, names, where) for r in d["inputs"]]
    outs = [_resolve(r, names, where) for r in d["outputs"]]
    return Node(d["op"], ins, outs, dict(d.get("attrs", {})), d.get("name", ""))


def normalize(model) -> ModelFile:
    """A :class:`ModelFile` from a description dict (or a copy of a ModelFile), shapes inferred."""
    if isinstance(model, ModelFile):
        model = {"metadata": model.metadata, "tensors": model.tensors, "nodes": model.nodes,
                 "inputs": model.inputs, "outputs": model.outputs}
    tensors = [_tensor(t, f"tensor {i}") for i, t in enumerate(model["tensors"])]
    names = {t.name: i for i, t in enumerate(tensors)}
    nodes = [_node(n, names, f"node {k}") for k, n in enumerate(model.get("nodes", []))]
    ins = [_resolve(r, names, "inputs") for r in model["inputs"]]
    outs = [_resolve(r, names, "outputs") for r in model["outputs"]]
    meta = {"bnnkit.bit_convention": S.BIT_CONVENTION, "bnnkit.producer": f"bnnkit {__version__}"}
    meta.update(model.get("metadata", {}))
    result = ModelFile(meta, tensors, nodes, ins, outs)
    _infer_missing(result)
    return result


def _infer_missing(model: ModelFile) -> None:
    """Fill omitted activation shapes/dtypes in node order with the op contracts."""
    for k, node in enumerate(model.nodes):
        spec = _ops.get(node.op)
        out = model.tensors[node.outputs[0]] if node.outputs and node.outputs[0] < len(model.tensors) else None
        if out is None or (out.shape is not None and out.dtype is not None):
            continue
        try:
            args = [_ops.Arg(model.tensors[j].dtype, model.tensors[j].shape, model.tensors[j].constant)
                    for j in node.inputs]
            attrs = {key: node.attrs.get(key, dflt) for key, (_, dflt) in spec.attrs.items()}
            dtypes, shape = spec.infer(args, attrs)
        except (ValueError, TypeError, IndexError) as e:
            raise FormatError(f"node {k} '{node.name}' ({node.op}): cannot infer output: {e}") from None
        if out.dtype is None:
            out.dtype = dtypes[0]  # binary conv/dense: f32 unless "bits" is given
        if out.shape is None:
            if shape is None:
                raise FormatError(f"tensor '{out.name}': give its shape (output of {node.op})")
            out.shape = tuple(shape)


def _tensor_records(tensors: list) -> tuple[bytes, list]:
    recs, blobs, offset = [], [], 0
    for i, t in enumerate(tensors):
        if t.dtype is None or t.shape is None:
            raise FormatError(f"tensor {i} '{t.name}': dtype and shape are required")
        nbytes = 0
        if t.constant:
            blob = _storage(t).tobytes()
            offset = -(-offset // S.ALIGNMENT) * S.ALIGNMENT
            nbytes = len(blob)
            blobs.append((offset, blob))
        flags = S.FLAG_CONSTANT if t.constant else 0
        recs.append(_string(t.name) + struct.pack("<III", S.DTYPES[t.dtype], flags, len(t.shape))
                    + struct.pack(f"<{len(t.shape)}q", *t.shape)
                    + struct.pack("<QQ", offset if t.constant else 0, nbytes))
        offset += nbytes
    return b"".join(recs), blobs


def _node_record(node: Node) -> bytes:
    spec = _ops.get(node.op)
    out = [_string(node.name), struct.pack("<I", spec.code)]
    for idx in (node.inputs, node.outputs):
        out.append(struct.pack(f"<I{len(idx)}I", len(idx), *idx))
    out.append(struct.pack("<I", len(node.attrs)))
    for key, value in node.attrs.items():
        kind = spec.attrs[key][0] if key in spec.attrs else None
        out.append(_string(key) + _value(value, kind))
    return b"".join(out)


def encode(model: ModelFile) -> bytes:
    """The bytes of a file (unvalidated; :func:`write` validates)."""
    meta = b"".join(_string(k) + _value(v) for k, v in model.metadata.items())
    tensors, blobs = _tensor_records(model.tensors)
    nodes = b"".join(_node_record(n) for n in model.nodes)
    io = struct.pack(f"<{len(model.inputs)}I{len(model.outputs)}I", *model.inputs, *model.outputs)
    tables = meta + tensors + nodes + io
    data_offset = -(-(S.HEADER_SIZE + len(tables)) // S.ALIGNMENT) * S.ALIGNMENT
    data_size = max((off + len(b) for off, b in blobs), default=0)
    data = bytearray(data_size)
    for off, blob in blobs:
        data[off:off + len(blob)] = blob
    header = S.MAGIC + struct.pack("<IIIIIIIIQQ", S.FORMAT_VERSION, 0, len(model.metadata),
                                   len(model.tensors), len(model.nodes), len(model.inputs),
                                   len(model.outputs), 0, data_offset, data_size)
    pad = bytes(data_offset - S.HEADER_SIZE - len(tables))
    return header + tables + pad + bytes(data)


def write_atomic(path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` via a temp file in the same directory, fsync, os.replace."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".bnn-", suffix=".tmp", dir=directory)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp creates 0600; a model file is an ordinary file
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write(path, model) -> bytes:
    """Encode ``model`` (a ModelFile or description dict), validate it, write it to ``path``
    (unless None) and return the bytes."""
    payload = encode(normalize(model))
    parse(payload)
    if path is not None:
        write_atomic(path, payload)
    return payload
