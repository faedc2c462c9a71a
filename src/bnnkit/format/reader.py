"""Pure-numpy reader of ``.bnn`` files with the native loader's validation (docs/format.md §7).

``read(path_or_bytes) -> ModelFile``; every problem raises :class:`FormatError` (a
``ValueError``) naming the part, index and field.
"""

from __future__ import annotations

import math
import os
import struct

import numpy as np

from bnnkit.format import ops as _ops
from bnnkit.format import spec as S
from bnnkit.format.model import FormatError, ModelFile, Node, Tensor

_MIN_META, _MIN_TENSOR, _MIN_NODE = 12, 40, 20


class _Cursor:
    """Bounds-checked little-endian reads from a bytes-like buffer."""

    def __init__(self, buf: memoryview):
        self.buf, self.pos = buf, 0

    def take(self, n: int, what: str) -> memoryview:
        if n > len(self.buf) - self.pos:
            raise FormatError(f"truncated file: {what} at byte {self.pos} needs {n} bytes, "
                              f"file has {len(self.buf)}")
        self.pos += n
        return self.buf[self.pos - n:self.pos]

    def unpack(self, fmt: str, what: str):
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt), what))[0]

    def u32(self, what):
        return self.unpack("I", what)

    def count(self, what: str, limit: int, min_size: int) -> int:
        n = self.u32(what)
        if n > limit or n * min_size > len(self.buf) - self.pos:
            raise FormatError(f"{what} {n} exceeds the limit {limit} or the remaining file size")
        return n

    def string(self, what: str) -> str:
        n = self.u32(f"{what} length")
        if n > S.MAX_STRING:
            raise FormatError(f"{what}: string length {n} exceeds {S.MAX_STRING}")
        try:
            return bytes(self.take(n, what)).decode("utf-8")
        except UnicodeDecodeError:
            raise FormatError(f"{what}: not valid UTF-8") from None

    def value(self, what: str):
        code = self.u32(f"{what} type")
        kind = S.VALUE_TYPE_NAMES.get(code)
        if kind is None:
            raise FormatError(f"{what}: unknown value type {code} (known: {sorted(S.VALUE_TYPE_NAMES)})")
        if kind in ("int", "float"):
            return kind, self.unpack("q" if kind == "int" else "d", what)
        if kind == "string":
            return kind, self.string(what)
        n = self.count(f"{what} count", S.MAX_ARRAY, 4 if kind == "strings" else 8)
        if kind == "strings":
            return kind, [self.string(f"{what}[{i}]") for i in range(n)]
        arr = np.frombuffer(self.take(8 * n, what), dtype="<i8" if kind == "ints" else "<f8")
        return kind, [int(v) for v in arr] if kind == "ints" else [float(v) for v in arr]


def _header(cur: _Cursor) -> dict:
    if bytes(cur.take(8, "magic")) != S.MAGIC:
        raise FormatError(f"bad magic: not a .bnn file (expected {S.MAGIC!r})")
    version = cur.u32("version")
    if version > S.FORMAT_VERSION:
        raise FormatError(f"format version {version} is newer than this runtime supports ({S.FORMAT_VERSION})")
    if version == 0:
        raise FormatError("format version 0 is invalid")
    h = {k: cur.u32(k) for k in ("flags", "n_metadata", "n_tensors", "n_nodes", "n_inputs", "n_outputs", "reserved")}
    h["data_offset"] = cur.unpack("Q", "data_offset")
    h["data_size"] = cur.unpack("Q", "data_size")
    for key in ("flags", "reserved"):
        if h[key]:
            raise FormatError(f"header {key} must be 0, got {h[key]}")
    limits = {"n_metadata": S.MAX_METADATA, "n_tensors": S.MAX_TENSORS, "n_nodes": S.MAX_NODES,
              "n_inputs": S.MAX_GRAPH_IO, "n_outputs": S.MAX_GRAPH_IO}
    for key, limit in limits.items():
        lo = 1 if key in ("n_inputs", "n_outputs") else 0
        if not lo <= h[key] <= limit:
            raise FormatError(f"header {key} {h[key]} outside [{lo}, {limit}]")
    return h


def _metadata(cur: _Cursor, n: int) -> dict:
    if n * _MIN_META > len(cur.buf) - cur.pos:
        raise FormatError(f"n_metadata {n} exceeds the remaining file size")
    meta = {}
    for i in range(n):
        key = cur.string(f"metadata {i} key")
        if key in meta:
            raise FormatError(f"metadata {i}: duplicate key {key!r}")
        meta[key] = cur.value(f"metadata {i} '{key}'")
    for key, kind in S.REQUIRED_METADATA.items():
        if key not in meta or meta[key][0] != kind:
            raise FormatError(f"metadata: required key {key!r} of type {kind} missing")
    if meta["bnnkit.bit_convention"][1] != S.BIT_CONVENTION:
        raise FormatError(f"metadata 'bnnkit.bit_convention' is {meta['bnnkit.bit_convention'][1]!r}, "
                          f"this runtime supports {S.BIT_CONVENTION!r}")
    return {k: v for k, (_, v) in meta.items()}


def _tensor_record(cur: _Cursor, i: int) -> dict:
    name = cur.string(f"tensor {i} name")
    where = f"tensor {i} '{name}'"
    code, flags, ndim = cur.u32(f"{where} dtype"), cur.u32(f"{where} flags"), cur.u32(f"{where} ndim")
    if not name:
        raise FormatError(f"tensor {i}: empty name")
    if code not in S.DTYPE_NAMES:
        raise FormatError(f"{where}: unknown dtype code {code} (known: {S.DTYPES})")
    if flags & ~S.FLAG_CONSTANT:
        raise FormatError(f"{where}: unknown flags {flags:#x}")
    if not 1 <= ndim <= S.MAX_NDIM:
        raise FormatError(f"{where}: ndim {ndim} outside [1, {S.MAX_NDIM}]")
    dims = tuple(cur.unpack("q", f"{where} dims") for _ in range(ndim))
    offset, nbytes = cur.unpack("Q", f"{where} offset"), cur.unpack("Q", f"{where} nbytes")
    if any(not 1 <= d <= S.MAX_DIM for d in dims) or math.prod(dims) > S.MAX_ELEMENTS:
        raise FormatError(f"{where}: shape {dims} has a dim outside [1, {S.MAX_DIM}] or more than "
                          f"{S.MAX_ELEMENTS} elements")
    return dict(name=name, where=where, dtype=S.DTYPE_NAMES[code], shape=dims,
                const=bool(flags & S.FLAG_CONSTANT), offset=offset, nbytes=nbytes)


def _check_data(recs: list, data_size: int) -> None:
    spans = []
    for r in recs:
        if not r["const"]:
            if r["offset"] or r["nbytes"]:
                raise FormatError(f"{r['where']}: an activation must have offset 0 and nbytes 0")
            continue
        want = S.storage_nbytes(r["dtype"], r["shape"])
        if r["nbytes"] != want:
            raise FormatError(f"{r['where']}: nbytes {r['nbytes']} != {want} for {r['dtype']} {r['shape']}")
        if r["offset"] % S.ALIGNMENT:
            raise FormatError(f"{r['where']}: offset {r['offset']} is not a multiple of {S.ALIGNMENT}")
        if r["offset"] > data_size or r["nbytes"] > data_size - r["offset"]:
            raise FormatError(f"{r['where']}: data [{r['offset']}, {r['offset'] + r['nbytes']}) "
                              f"past the end of the data section ({data_size} bytes)")
        spans.append((r["offset"], r["offset"] + r["nbytes"], r["where"]))
    spans.sort()
    for (a0, a1, wa), (b0, b1, wb) in zip(spans, spans[1:]):
        if b0 < a1:
            raise FormatError(f"{wb}: data overlaps {wa}")


def _node_record(cur: _Cursor, i: int, n_tensors: int) -> Node:
    name = cur.string(f"node {i} name")
    code = cur.u32(f"node {i} op")
    if code not in _ops.OPS_BY_CODE:
        raise FormatError(f"node {i} '{name}': unknown op code {code}; known ops: "
                          + ", ".join(f"{s.code}={s.name}" for s in _ops.OPS_BY_CODE.values()))
    spec = _ops.OPS_BY_CODE[code]
    where = f"node {i} '{name}' ({spec.name})"
    ios = []
    for part, lo, hi in (("inputs", spec.min_inputs, spec.max_inputs), ("outputs", 1, 1)):
        n = cur.u32(f"{where} number of {part}")
        if not lo <= n <= hi:
            raise FormatError(f"{where}: {n} {part}, expected {lo}..{hi}")
        idx = [cur.u32(f"{where} {part}") for _ in range(n)]
        for j in idx:
            if j >= n_tensors:
                raise FormatError(f"{where}: {part[:-1]} tensor index {j} out of range ({n_tensors} tensors)")
        ios.append(idx)
    n_attrs = cur.count(f"{where} number of attributes", S.MAX_ATTRS, 12)
    attrs = {}
    for _ in range(n_attrs):
        key = cur.string(f"{where} attribute name")
        if key not in spec.attrs:
            raise FormatError(f"{where}: unknown attribute {key!r}; known: {sorted(spec.attrs)}")
        if key in attrs:
            raise FormatError(f"{where}: duplicate attribute {key!r}")
        kind, value = cur.value(f"{where} attribute '{key}'")
        if kind != spec.attrs[key][0]:
            raise FormatError(f"{where}: attribute '{key}' has type {kind}, expected {spec.attrs[key][0]}")
        attrs[key] = value
    return Node(spec.name, ios[0], ios[1], attrs, name)


def check_graph(model: ModelFile) -> None:
    """Dataflow, op contracts and declared shapes (docs/format.md §7 items 6-7)."""
    tensors = model.tensors
    avail = {i for i, t in enumerate(tensors) if t.constant}
    for pos, i in enumerate(model.inputs):
        t = tensors[i]
        if t.constant or t.dtype != "f32" or i in model.inputs[:pos]:
            raise FormatError(f"graph input {pos}: tensor {i} '{t.name}' must be a distinct f32 activation")
        avail.add(i)
    for k, node in enumerate(model.nodes):
        where = f"node {k} '{node.name}' ({node.op})"
        for j in node.inputs:
            if j not in avail:
                raise FormatError(f"{where}: input tensor {j} '{tensors[j].name}' is not produced before use")
        out = node.outputs[0]
        if out in avail:
            raise FormatError(f"{where}: output tensor {out} '{tensors[out].name}' is a constant, "
                              "a graph input or produced twice")
        _check_node(model, node, where)
        avail.add(out)
    for i, t in enumerate(tensors):
        if i not in avail:
            raise FormatError(f"tensor {i} '{t.name}': activation neither a graph input nor produced by a node")
    for pos, i in enumerate(model.outputs):
        if tensors[i].dtype != "f32":
            raise FormatError(f"graph output {pos}: tensor {i} '{tensors[i].name}' must be f32")


def _check_node(model: ModelFile, node: Node, where: str) -> None:
    spec = _ops.get(node.op)
    attrs = {}
    for key, (_, default) in spec.attrs.items():
        if key not in node.attrs and default is _ops.REQUIRED:
            raise FormatError(f"{where}: required attribute '{key}' missing")
        attrs[key] = node.attrs.get(key, default)
    args = [_ops.Arg(model.tensors[j].dtype, tuple(model.tensors[j].shape), model.tensors[j].constant)
            for j in node.inputs]
    try:
        dtypes, shape = spec.infer(args, attrs)
    except _ops.ContractError as e:
        raise FormatError(f"{where}: {e}") from None
    if node.op in ("bconv2d", "bdense"):
        for j in node.inputs[2:]:
            if not np.all(np.isfinite(model.tensors[j].data.astype(np.float32))):
                raise FormatError(f"{where}: multiplier/bias '{model.tensors[j].name}' must be finite")
    out = model.tensors[node.outputs[0]]
    if out.dtype not in dtypes:
        raise FormatError(f"{where}: output '{out.name}' has dtype {out.dtype}, expected {' or '.join(dtypes)}")
    if shape is None and math.prod(out.shape) != math.prod(args[0].shape):
        raise FormatError(f"{where}: output '{out.name}' shape {tuple(out.shape)} has a different "
                          f"element count than input {args[0].shape}")
    if shape is not None and tuple(out.shape) != tuple(shape):
        raise FormatError(f"{where}: output '{out.name}' declared shape {tuple(out.shape)}, inferred {tuple(shape)}")


def parse(buf) -> ModelFile:
    """Parse and validate a whole file held in a bytes-like object."""
    buf = memoryview(buf).cast("B")
    cur = _Cursor(buf)
    h = _header(cur)
    meta = _metadata(cur, h["n_metadata"])
    if h["n_tensors"] * _MIN_TENSOR > len(buf) - cur.pos:
        raise FormatError(f"n_tensors {h['n_tensors']} exceeds the remaining file size")
    recs = [_tensor_record(cur, i) for i in range(h["n_tensors"])]
    names = {}
    for i, r in enumerate(recs):
        if r["name"] in names:
            raise FormatError(f"{r['where']}: duplicate name (also tensor {names[r['name']]})")
        names[r["name"]] = i
    if h["n_nodes"] * _MIN_NODE > len(buf) - cur.pos:
        raise FormatError(f"n_nodes {h['n_nodes']} exceeds the remaining file size")
    nodes = [_node_record(cur, i, len(recs)) for i in range(h["n_nodes"])]
    io = []
    for part in ("inputs", "outputs"):
        idx = [cur.u32(f"graph {part}") for _ in range(h[f"n_{part}"])]
        for pos, j in enumerate(idx):
            if j >= len(recs):
                raise FormatError(f"graph {part[:-1]} {pos}: tensor index {j} out of range ({len(recs)} tensors)")
        io.append(idx)
    _check_layout(h, cur.pos, len(buf))
    _check_data(recs, h["data_size"])
    tensors = [_make_tensor(r, buf, h["data_offset"]) for r in recs]
    model = ModelFile(meta, tensors, nodes, io[0], io[1])
    check_graph(model)
    return model


def _check_layout(h: dict, tables_end: int, size: int) -> None:
    off, dsize = h["data_offset"], h["data_size"]
    if off % S.ALIGNMENT or off < tables_end:
        raise FormatError(f"header data_offset {off} must be a multiple of {S.ALIGNMENT} and >= "
                          f"the end of the tables ({tables_end})")
    if off > size or dsize != size - off:
        raise FormatError(f"header data_offset {off} + data_size {dsize} != file size {size}")


def _make_tensor(r: dict, buf: memoryview, data_offset: int) -> Tensor:
    if not r["const"]:
        return Tensor(r["name"], r["dtype"], r["shape"])
    start = data_offset + r["offset"]
    raw = np.frombuffer(buf[start:start + r["nbytes"]], dtype=S.NUMPY_DTYPES[r["dtype"]])
    return Tensor(r["name"], r["dtype"], r["shape"], raw.reshape(S.storage_shape(r["dtype"], r["shape"])))


def read(path_or_bytes) -> ModelFile:
    """Read and validate a ``.bnn`` file from a path or a bytes-like object."""
    if isinstance(path_or_bytes, (str, os.PathLike)):
        with open(path_or_bytes, "rb") as f:
            path_or_bytes = f.read()
    return parse(path_or_bytes)
