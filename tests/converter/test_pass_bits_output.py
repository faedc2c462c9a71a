"""bits_output: a binary conv whose readers all binarize writes bits (through max-pool too)."""

import numpy as np
from converter_ir_eval import evaluate, tiny_binary_graph

from bnnkit.converter.passes import bits_output

RNG = np.random.default_rng(11)
X = RNG.standard_normal((1, 8, 6, 6))


def _second_conv(g, src, o=3):
    w = g.const("w2", np.where(RNG.standard_normal((o, 4, 1, 1)) < 0, -1.0, 1.0), "bits")
    return g.add("bconv2d", [src, w], "f32", (1, o) + tuple(src.shape[2:]))


def test_quantize_disappears():
    g, y = tiny_binary_graph(RNG)
    g.ops[1].inputs.append(g.const("m", RNG.uniform(0.5, 1, 4)))
    g.ops[1].inputs.append(g.const("b", RNG.standard_normal(4) * 3))
    q = g.add("quantize", [y], "bits", y.shape)
    g.outputs = [_second_conv(g, q)]
    before = evaluate(g, X)[0]
    bits_output.run(g)
    assert g.op_counts() == {"quantize": 1, "bconv2d": 2}
    assert y.dtype == "bits" and g.ops[2].inputs[0] is y
    np.testing.assert_array_equal(evaluate(g, X)[0], before)


def test_through_maxpool():
    g, y = tiny_binary_graph(RNG)
    p = g.add("maxpool2d", [y], "f32", (1, 4, 3, 3), {"kernel": [3, 3], "stride": [2, 2], "pad": [1, 1, 1, 1]})
    q = g.add("quantize", [p], "bits", p.shape)
    g.outputs = [_second_conv(g, q)]
    before = evaluate(g, X)[0]
    bits_output.run(g)
    assert g.op_counts() == {"quantize": 1, "bconv2d": 2, "bmaxpool2d": 1}
    np.testing.assert_array_equal(evaluate(g, X)[0], before)


def test_kept_float_when_a_reader_needs_float():
    g, y = tiny_binary_graph(RNG)
    q = g.add("quantize", [y], "bits", y.shape)
    g.outputs = [_second_conv(g, q), y]
    bits_output.run(g)
    assert y.dtype == "f32" and g.op_counts()["quantize"] == 2
