"""Regenerate tests/data/golden_small.bnn and its pinned input/output (golden_small.npz).

    .venv/bin/python tests/data/make_golden.py

The model is a tiny binary net built from a fixed seed: float conv stem -> batch-norm ->
quantize -> binary conv to bits (+1 padding) -> binary conv to float (0 padding, ReLU
on the accumulator) -> global average pool -> dense. The expected output
is computed here with the numpy reference (tests/bnn_reference.py), never by the runtime,
so the golden test checks the runtime against an independent computation and the file
bytes against format drift (tests/test_format.py).
"""

from __future__ import annotations

import pathlib
import sys

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bnn_reference import Graph, bconv2d, conv2d, sign  # noqa: E402

import bnnkit.format as F  # noqa: E402


def params() -> dict:
    rng = np.random.default_rng(20240601)
    f = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    return {"stem_w": f(8, 3, 3, 3), "stem_b": f(8), "bn_s": f(8), "bn_t": f(8),
            "bw1": sign(f(16, 8, 3, 3)), "m1": f(16), "b1": f(16) + np.float32(0.3),
            "bw2": sign(f(16, 16, 3, 3)), "m2": np.abs(f(16)) * np.float32(0.1), "b2": f(16),
            "fc_w": f(4, 16), "fc_b": f(4), "input": f(1, 3, 8, 8)}


def build(p: dict) -> Graph:
    g = Graph()
    c = {k: g.const(k, v, "bits" if k.startswith("bw") else "f32") for k, v in p.items() if k != "input"}
    h = g.op("conv2d", [g.input("image", (1, 3, 8, 8)), c["stem_w"], c["stem_b"]], {"pad": [1, 1, 1, 1]}, name="stem")
    h = g.op("batch_norm", [h, c["bn_s"], c["bn_t"]], name="stem_bn")
    q = g.op("bconv2d", [g.op("quantize", [h], name="q0"), c["bw1"], c["m1"], c["b1"]],
             {"pad": [1, 1, 1, 1]}, dtype="bits", name="bconv1")
    y = g.op("bconv2d", [q, c["bw2"], c["m2"], c["b2"]],
             {"pad": [1, 1, 1, 1], "pad_value": 0, "acc_min": 0}, dtype="f32", name="bconv2")
    pooled = g.op("global_avgpool", [y], {"keepdims": 0}, name="pool")
    g.output(g.op("dense", [pooled, c["fc_w"], c["fc_b"]], name="logits"))
    return g


def reference(p: dict) -> np.ndarray:
    h = conv2d(p["input"], p["stem_w"], p["stem_b"], pad=(1, 1, 1, 1)).astype(np.float32)
    h = h * p["bn_s"][None, :, None, None] + p["bn_t"][None, :, None, None]
    q = bconv2d(h, p["bw1"], p["m1"], p["b1"], pad=(1, 1, 1, 1), bits_out=True)
    y = bconv2d(q, p["bw2"], p["m2"], p["b2"], pad=(1, 1, 1, 1), pad_value=0, acc_min=0)
    return (y.mean(axis=(2, 3)) @ p["fc_w"].T + p["fc_b"]).astype(np.float32)


def golden_desc() -> dict:
    desc = build(params()).desc()
    desc["metadata"] = {"model.name": "golden_small", "bnnkit.producer": "bnnkit tests/data/make_golden.py"}
    return desc


def main() -> None:
    p = params()
    F.write(HERE / "golden_small.bnn", golden_desc())  # atomic
    np.savez(HERE / "golden_small.npz", input=p["input"], output=reference(p))
    print("wrote golden_small.bnn and golden_small.npz; output:", reference(p).tolist())


if __name__ == "__main__":
    main()
