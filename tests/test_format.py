"""The .bnn format: byte layout, Python writer <-> reader round trips, the golden file, and
corrupted files rejected with a clear error by both the Python reader and the C++ loader
(docs/format.md)."""

from __future__ import annotations

import os
import pathlib
import struct
import subprocess
import sys

import numpy as np
import pytest

import bnnkit.format as F
from bnn_reference import Graph, sign
from bnnkit import bits
from bnnkit.format import spec
from bnnkit.runtime import Interpreter

DATA = pathlib.Path(__file__).parent / "data"
RNG = np.random.default_rng(99)


def small_model() -> bytes:
    """quantize -> bconv2d (bits weight 'wt_conv', multiplier 'mult') -> global pool."""
    g = Graph()
    x = g.input("x", (1, 33, 4, 4))
    w = g.const("wt_conv", sign(RNG.standard_normal((8, 33, 3, 3))), "bits")
    m = g.const("mult", RNG.uniform(0.5, 1, 8).astype(np.float32))
    y = g.op("bconv2d", [g.op("quantize", [x]), w, m], {"stride": [1, 1], "pad": [1, 1, 1, 1]}, name="y_conv")
    g.nodes[-1]["name"] = "node_conv"
    g.output(g.op("global_avgpool", [y], {"keepdims": 0}))
    return g.encode()


def both_reject(data: bytes, match: str) -> None:
    """The Python reader and the native loader both raise a ValueError matching `match`."""
    with pytest.raises(F.FormatError, match=match):
        F.read(data)
    with pytest.raises(F.FormatError, match=match):
        Interpreter(data)


def tensor_field(data: bytes, name: str, field: str) -> int:
    """Byte position of a field of the tensor record called `name`."""
    raw = name.encode()
    pos = data.index(struct.pack("<I", len(raw)) + raw) + 4 + len(raw)
    ndim = struct.unpack_from("<I", data, pos + 8)[0]
    return {"dtype": pos, "flags": pos + 4, "ndim": pos + 8, "dims": pos + 12,
            "offset": pos + 12 + 8 * ndim, "nbytes": pos + 20 + 8 * ndim}[field]


def patch(data: bytes, pos: int, fmt: str, value) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, pos, value)
    return bytes(out)


# ---- layout and round trips -------------------------------------------------------------

def test_header_layout_and_alignment():
    data = small_model()
    assert data[:8] == b"\x89BNN\r\n\x1a\n" == F.MAGIC
    version, flags, n_meta, n_tensors, n_nodes, n_in, n_out, reserved, off, size = struct.unpack_from("<8I2Q", data, 8)
    assert (version, flags, reserved, n_nodes, n_in, n_out) == (1, 0, 0, 3, 1, 1)
    assert off % 64 == 0 and off + size == len(data)
    model = F.read(data)
    assert n_meta == len(model.metadata) and n_tensors == len(model.tensors)
    for name in ("wt_conv", "mult"):
        assert struct.unpack_from("<Q", data, tensor_field(data, name, "offset"))[0] % 64 == 0


def test_bits_weight_storage_is_ohwi_with_packed_input_channels():
    w = sign(RNG.standard_normal((2, 33, 1, 2)))
    g = Graph()
    x = g.input("x", (1, 33, 3, 3))
    g.output(g.op("bconv2d", [g.op("quantize", [x]), g.const("w", w, "bits")]))
    t = F.read(g.encode()).tensor("w")
    assert t.data.dtype == np.uint32 and t.data.shape == (2, 1, 2, 2)  # O, KH, KW, words(33)
    o, ky, kx = 1, 0, 1
    column = w[o, :, ky, kx]
    word0 = sum(1 << c for c in range(32) if column[c] < 0)
    assert int(t.data[o, ky, kx, 0]) == word0
    assert int(t.data[o, ky, kx, 1]) == (1 if column[32] < 0 else 0)  # channel 32: bit 0 of word 1
    np.testing.assert_array_equal(t.numpy(), w)
    np.testing.assert_array_equal(t.data, bits.pack_bits(np.moveaxis(w, 1, -1)))


def test_round_trip_python_writer_reader():
    meta = {"model.name": "rt", "model.version": 3, "train.lr": 0.01, "model.input_names": ["x"],
            "model.sizes": [1, 2, 3], "model.scales": [0.5, 1.5]}
    g = Graph()
    x = g.input("x", (2, 4, 5, 5))
    consts = {"f32": RNG.standard_normal((4,)).astype(np.float32), "f16": np.arange(4, dtype=np.float16),
              "i8": np.array([-3, 4], np.int8), "i32": np.array([7], np.int32), "u8": np.array([255], np.uint8)}
    for dt, v in consts.items():
        g.const(f"c_{dt}", v, dt)
    y = g.op("batch_norm", [x, "c_f32", "c_f16"], name="bn")
    g.output(g.op("conv2d", [y, g.const("w", np.ones((6, 2, 3, 3), np.float32))],
                  {"groups": 2, "stride": [2, 1], "pad": [1, 0, 1, 0]}, name="out"))
    data = F.write(None, g.desc() | {"metadata": meta})
    model = F.read(data)
    assert model.metadata == {**meta, "bnnkit.bit_convention": "bnnkit.bits.v1", "bnnkit.producer": "bnnkit 0.1.0"}
    for dt, v in consts.items():
        t = model.tensor(f"c_{dt}")
        assert t.dtype == dt and t.data.dtype == np.dtype(spec.NUMPY_DTYPES[dt])
        np.testing.assert_array_equal(t.numpy(), v)
    assert model.tensor("out").shape == (2, 6, 3, 3)
    node = model.nodes[-1]
    assert node.op == "conv2d" and node.name == "out"
    assert node.attrs == {"groups": 2, "stride": [2, 1], "pad": [1, 0, 1, 0]}
    assert model.input_names == ["x"] and model.output_names == ["out"]
    assert F.write(None, model) == data  # ModelFile -> bytes is stable
    Interpreter(data)  # the native loader accepts it too


def test_atomic_write(tmp_path):
    path = tmp_path / "m.bnn"
    data = F.write(path, F.read(small_model()))
    assert path.read_bytes() == data
    assert os.listdir(tmp_path) == ["m.bnn"]
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    bad = {"tensors": [{"name": "x", "dtype": "f32", "shape": (1,)}], "inputs": ["x"], "outputs": ["nope"]}
    with pytest.raises(F.FormatError, match="no tensor named 'nope'"):
        F.write(path, bad)
    assert path.read_bytes() == data and os.listdir(tmp_path) == ["m.bnn"]


def test_writer_errors_name_the_problem():
    g = Graph()
    g.input("x", (1, 3, 4, 4))
    g.op("conv2d", ["x", g.const("w", np.ones((2, 4, 3, 3), np.float32))])
    with pytest.raises(F.FormatError, match="weight has 4 input channels per group, expected 3"):
        F.write(None, g.desc())
    with pytest.raises(ValueError, match="unknown op 'conv3d'; known ops: add, avgpool2d"):
        F.write(None, {"tensors": [], "nodes": [{"op": "conv3d", "inputs": [], "outputs": []}],
                       "inputs": [], "outputs": []})


# ---- the golden file -----------------------------------------------------------------------

def test_golden_file_is_stable_and_runs():
    sys.path.insert(0, str(DATA))
    import make_golden

    data = (DATA / "golden_small.bnn").read_bytes()
    assert F.write(None, make_golden.golden_desc()) == data, "writer output drifted: format change?"
    model = F.read(data)
    assert model.metadata["model.name"] == "golden_small"
    assert [n.name for n in model.nodes] == ["stem", "stem_bn", "q0", "bconv1", "bconv2", "pool", "logits"]
    pinned = np.load(DATA / "golden_small.npz")
    for threads in (1, 2):
        got = Interpreter(DATA / "golden_small.bnn", num_threads=threads).run(pinned["input"])
        np.testing.assert_allclose(got, pinned["output"], rtol=1e-5, atol=1e-5)


# ---- corrupted files ------------------------------------------------------------------------

def test_every_truncation_is_rejected():
    data = small_model()
    for n in range(len(data)):
        with pytest.raises(F.FormatError):
            F.read(data[:n])
        with pytest.raises(ValueError):
            Interpreter(data[:n])


def test_trailing_bytes_rejected():
    both_reject(small_model() + b"\0" * 64, "file size")


@pytest.mark.parametrize("pos,fmt,value,match", [
    (0, "<B", 0x88, "bad magic"),
    (8, "<I", 2, r"format version 2 is newer than this runtime supports \(1\)"),
    (8, "<I", 0, "format version 0 is invalid"),
    (12, "<I", 1, "header flags must be 0"),
    (20, "<I", 0xFFFFFFFF, r"header n_tensors 4294967295 outside \[0, 1048576\]"),
    (20, "<I", 100000, "n_tensors 100000 exceeds the remaining file size"),
    (16, "<I", 60000, "n_metadata 60000 exceeds the remaining file size"),
    (28, "<I", 0, r"header n_inputs 0 outside \[1, 1024\]"),
    (40, "<Q", 8, "data_offset 8 must be a multiple of 64"),
    (40, "<Q", 1 << 60, "data_offset"),
    (48, "<Q", 1 << 63, "file size"),
])
def test_bad_header(pos, fmt, value, match):
    both_reject(patch(small_model(), pos, fmt, value), match)


@pytest.mark.parametrize("name,field,fmt,value,match", [
    ("wt_conv", "offset", "<Q", 1 << 40, "past the end of the data section"),
    ("wt_conv", "offset", "<Q", 0xFFFFFFFFFFFFFFC0, "past the end of the data section"),
    ("mult", "offset", "<Q", 4, "offset 4 is not a multiple of 64"),
    ("mult", "offset", "<Q", 0, "data overlaps"),
    ("wt_conv", "nbytes", "<Q", 100, r"nbytes 100 != 576 for bits \(8, 33, 3, 3\)"),
    ("wt_conv", "dtype", "<I", 9, "unknown dtype code 9"),
    ("wt_conv", "dtype", "<I", 1, r"nbytes 576 != 9504 for f32"),
    ("wt_conv", "flags", "<I", 3, "unknown flags"),
    ("wt_conv", "ndim", "<I", 7, r"ndim 7 outside \[1, 6\]"),
    ("x", "dims", "<q", 1 << 40, "has a dim outside"),
    ("x", "dims", "<q", -1, "has a dim outside"),
    ("x", "dims", "<q", 1 << 30, "more than 2147483648 elements"),
    ("x", "offset", "<Q", 64, "an activation must have offset 0 and nbytes 0"),
])
def test_bad_tensor_record(name, field, fmt, value, match):
    data = small_model()
    both_reject(patch(data, tensor_field(data, name, field), fmt, value), match)


def node_field(data: bytes, name: str) -> int:
    raw = name.encode()
    return data.index(struct.pack("<I", len(raw)) + raw) + 4 + len(raw)


def test_bad_nodes():
    data = small_model()
    op = node_field(data, "node_conv")
    both_reject(patch(data, op, "<I", 99), "node 1 'node_conv': unknown op code 99; known ops: 1=quantize")
    both_reject(patch(data, op + 8, "<I", 999), r"tensor index 999 out of range \(6 tensors\)")
    both_reject(patch(data, op + 4, "<I", 1), r"node 1 'node_conv' \(bconv2d\): 1 inputs, expected 2..4")
    attr = node_field(data, "stride")
    both_reject(patch(data, attr, "<I", 5), "attribute 'stride' has type floats, expected ints")
    both_reject(patch(data, attr, "<I", 77), "unknown value type 77")
    both_reject(patch(data, attr + 12, "<q", 0), r"attribute 'stride' must be 2 ints in \[1, 65535\]")
    renamed = data.replace(b"\x06\x00\x00\x00stride", b"\x06\x00\x00\x00strida")
    both_reject(renamed, "unknown attribute 'strida'")
    both_reject(data.replace(b"node_conv", b"node\xffconv"), "not valid UTF-8")
    both_reject(data.replace(b"bnnkit.bits.v1", b"bnnkit.bits.v9"), "bit_convention")


def test_contract_violations():
    from bnnkit.format.writer import encode, normalize

    def bad(desc, match):
        both_reject(encode(normalize(desc)), match)

    x = {"name": "x", "dtype": "f32", "shape": (1, 3, 5, 5)}
    w = {"name": "w", "dtype": "f32", "data": np.ones((4, 3, 3, 3), np.float32)}
    conv = {"op": "conv2d", "inputs": ["x", "w"], "outputs": ["y"], "name": "c"}
    base = {"tensors": [x, w, {"name": "y", "dtype": "f32", "shape": (1, 4, 5, 5)}], "nodes": [conv],
            "inputs": ["x"], "outputs": ["y"]}
    bad(base, r"node 0 'c' \(conv2d\): output 'y' declared shape \(1, 4, 5, 5\), inferred \(1, 4, 3, 3\)")
    base["tensors"][2] = {"name": "y", "dtype": "bits", "shape": (1, 4, 3, 3)}
    bad(base, "output 'y' has dtype bits, expected f32")
    wa = {"name": "w", "dtype": "f32", "shape": (4, 3, 3, 3)}
    bad({**base, "tensors": [x, wa, {"name": "y", "dtype": "f32", "shape": (1, 4, 3, 3)}], "inputs": ["x", "w"]},
        "input 1 must be a constant")
    relu = {"op": "relu", "inputs": ["z"], "outputs": ["y"]}
    z = {"name": "z", "dtype": "f32", "shape": (1, 3, 5, 5)}
    bad({"tensors": [x, z, {"name": "y", "dtype": "f32", "shape": (1, 3, 5, 5)}],
         "nodes": [relu, {**relu, "inputs": ["x"], "outputs": ["z"]}],
         "inputs": ["x"], "outputs": ["y"]}, "input tensor 1 'z' is not produced before use")
    bad({"tensors": [x, z, {"name": "y", "dtype": "f32", "shape": (1, 3, 5, 5)}], "nodes": [{**relu, "inputs": ["x"]}],
         "inputs": ["x"], "outputs": ["y"]}, "tensor 1 'z': activation neither a graph input nor produced")
    bq = {"op": "bconv2d", "inputs": ["x", "w"], "outputs": ["y"]}
    bad({"tensors": [x, w, {"name": "y", "dtype": "f32", "shape": (1, 4, 3, 3)}], "nodes": [bq], "inputs": ["x"],
         "outputs": ["y"]},
        "input 0 has dtype f32, expected bits")


def test_non_finite_multiplier_rejected():
    g = Graph()
    x = g.input("x", (1, 8, 3, 3))
    m = np.ones(4, np.float32)
    m[2] = np.inf
    g.output(g.op("bconv2d", [g.op("quantize", [x]), g.const("w", np.ones((4, 8, 1, 1)), "bits"), g.const("m", m)]))
    from bnnkit.format.writer import encode, normalize

    both_reject(encode(normalize(g.desc())), "multiplier/bias 'm' must be finite")


def test_fuzz_loader_subprocess():
    """A bounded run of the fuzz target: mutated files never crash either loader and both
    loaders agree on which files are valid (a crash would be a non-zero exit)."""
    script = pathlib.Path(__file__).parent / "fuzz" / "fuzz_loader.py"
    res = subprocess.run([sys.executable, str(script), "--iterations", "3000", "--seed", "7"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "no crash" in res.stdout


# ---- attributes and contracts of the logic, padding, channel and dynamic-range ops --------

def _one_node(op, inputs, attrs, out_dtype, out_shape, consts=None):
    """Bytes of x (2, 8, 3, 3) f32 [-> quantize q] -> op -> y, without the writer's checks."""
    from bnnkit.format.writer import encode, normalize

    tensors = [{"name": "x", "dtype": "f32", "shape": (2, 8, 3, 3)}, {"name": "q", "dtype": "bits", "shape": (2, 8, 3, 3)},
               {"name": "x2", "dtype": "f32", "shape": (2, 8)}]
    tensors += [{"name": k, "dtype": d, "data": v} for k, (v, d) in (consts or {}).items()]
    tensors.append({"name": "y", "dtype": out_dtype, "shape": out_shape})
    nodes = [{"op": "quantize", "inputs": ["x"], "outputs": ["q"], "name": "pack"},
             {"op": op, "inputs": inputs, "outputs": ["y"], "attrs": attrs, "name": "n"}]
    out = "y" if out_dtype == "f32" else "x"
    return encode(normalize({"tensors": tensors, "nodes": nodes, "inputs": ["x", "x2"], "outputs": [out, "q" if out == "x" else "x2"][:1]}))


@pytest.mark.parametrize("op, inputs, attrs, dtype, shape, match", [
    ("bxnor", ["q", "x"], {}, "bits", (2, 8, 3, 3), "input 1 has dtype f32, expected bits"),
    ("bor", ["q", "q"], {}, "f32", (2, 8, 3, 3), "output 'y' has dtype f32, expected bits"),
    ("pad2d", ["x"], {"mode": 2}, "f32", (2, 8, 3, 3), r"attribute 'mode' must be 0 \(constant\) or 1 \(replicate\), got 2"),
    ("pad2d", ["q"], {"pad": [1, 1, 1, 1], "value": 0.5}, "bits", (2, 8, 5, 5), "a bits input pads with value \\+1 or -1, got 0.5"),
    ("pad2d", ["x"], {"pad": [1, 1, 1]}, "f32", (2, 8, 5, 5), r"attribute 'pad' must be 4 ints in \[0, 65535\]"),
    ("pad2d", ["x"], {"pad": [1, 0, 0, 0]}, "f32", (2, 8, 3, 3), r"declared shape \(2, 8, 3, 3\), inferred \(2, 8, 4, 3\)"),
    ("pad2d", ["x"], {"value": float("inf")}, "f32", (2, 8, 3, 3), "attribute 'value' must be finite"),
    ("gather_channels", ["x"], {"index": [0, 8]}, "f32", (2, 2, 3, 3), r"index entry 1 is 8, outside \[-1, 8\)"),
    ("gather_channels", ["q"], {"index": [0, -1]}, "bits", (2, 2, 3, 3), r"index entry 1 is -1, outside \[0, 8\) \(a bits output"),
    ("gather_channels", ["x"], {"index": []}, "f32", (2, 0, 3, 3), "attribute 'index' must not be empty|outside"),
    ("gather_channels", ["x", "q"], {"index": [0]}, "f32", (2, 1, 3, 3), "input 1 has dtype bits, expected f32 as input 0"),
    ("gather_channels", ["x", "x2"], {"index": [0]}, "f32", (2, 1, 3, 3), r"input 1 shape \(2, 8\) does not match"),
    ("gather_channels", ["x"], {}, "f32", (2, 1, 3, 3), "required attribute 'index' missing"),
    ("group_mean", ["x"], {"group": 3}, "f32", (2, 2, 3, 3), "attribute 'group' 3 must be >= 1 and divide C=8"),
    ("group_mean", ["x"], {"group": 0}, "f32", (2, 2, 3, 3), "attribute 'group' 0 must be >= 1"),
    ("group_mean", ["q"], {"group": 2}, "f32", (2, 4, 3, 3), "input 0 has dtype bits, expected f32"),
    ("dynamic_fake_quant", ["x"], {"qmax": 0}, "f32", (2, 8, 3, 3), r"attribute 'qmax' must be in \[1, 16777216\], got 0"),
    ("dynamic_fake_quant", ["x"], {"qmax": 7, "signed": 2}, "f32", (2, 8, 3, 3), "attribute 'signed' must be 0 or 1, got 2"),
    ("dynamic_fake_quant", ["x"], {"qmax": 7, "per_sample": 5}, "f32", (2, 8, 3, 3), "attribute 'per_sample' must be 0 or 1"),
    ("dynamic_fake_quant", ["x"], {"qmax": 7, "scale": 1.0}, "f32", (2, 8, 3, 3), "unknown attribute 'scale'"),
])
def test_new_ops_reject_bad_attributes_and_contracts(op, inputs, attrs, dtype, shape, match):
    both_reject(_one_node(op, inputs, attrs, dtype, shape), match)


def test_int8_weight_contracts():
    q = np.ones((4, 8), np.int8)
    s = np.ones(4, np.float32)
    ok = _one_node("dense", ["x2", "w", "s"], {}, "f32", (2, 4), {"w": (q, "i8"), "s": (s, "f32")})
    Interpreter(ok)
    F.read(ok)
    both_reject(_one_node("dense", ["x2", "w"], {}, "f32", (2, 4), {"w": (q, "i8")}),
                "an i8 weight needs a per-output-channel scale as input 2")
    both_reject(_one_node("dense", ["x2", "w", "s", "s", "s"], {}, "f32", (2, 4), {"w": (q, "i8"), "s": (s, "f32")}),
                r"5 inputs, expected 2..4")
    w32 = np.ones((4, 8), np.float32)
    both_reject(_one_node("dense", ["x2", "w", "s", "s"], {}, "f32", (2, 4), {"w": (w32, "f32"), "s": (s, "f32")}),
                r"4 inputs, expected 2..3 with an f32 weight")
    both_reject(_one_node("dense", ["x2", "w", "s"], {}, "f32", (2, 4), {"w": (q, "i8"), "s": (np.ones(3, np.float32), "f32")}),
                r"input 2 has shape \(3,\), expected \(4,\)")
