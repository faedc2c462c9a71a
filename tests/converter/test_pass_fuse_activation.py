"""fuse_activation: relu / relu6 / hard_tanh after a binary conv -> out_min / out_max."""

import numpy as np
import pytest
from converter_ir_eval import evaluate, tiny_binary_graph

from bnnkit.converter.passes import fuse_activation

RNG = np.random.default_rng(3)
X = RNG.standard_normal((1, 8, 6, 6))


@pytest.mark.parametrize("op, attrs, lo, hi", [
    ("relu", {}, 0.0, np.inf),
    ("relu6", {}, 0.0, 6.0),
    ("hard_tanh", {"min": -2.0, "max": 3.0}, -2.0, 3.0),
])
def test_activation_becomes_clamp(op, attrs, lo, hi):
    g, y = tiny_binary_graph(RNG)
    g.outputs = [g.add(op, [y], "f32", y.shape, attrs)]
    before = evaluate(g, X)[0]
    fuse_activation.run(g)
    assert g.op_counts() == {"quantize": 1, "bconv2d": 1}
    assert (g.ops[1].attrs["out_min"], g.ops[1].attrs["out_max"]) == (lo, hi)
    np.testing.assert_array_equal(evaluate(g, X)[0], before)


def test_two_clamps_intersect():
    g, y = tiny_binary_graph(RNG)
    a = g.add("hard_tanh", [y], "f32", y.shape, {"min": -5.0, "max": 4.0})
    g.outputs = [g.add("relu", [a], "f32", y.shape)]
    before = evaluate(g, X)[0]
    fuse_activation.run(g)
    assert (g.ops[1].attrs["out_min"], g.ops[1].attrs["out_max"]) == (0.0, 4.0)
    np.testing.assert_array_equal(evaluate(g, X)[0], before)


def test_float_conv_activation_is_kept():
    g, y = tiny_binary_graph(RNG)
    g.ops[1].op = "conv2d"  # not a binary op: no output transform to fuse into
    g.outputs = [g.add("relu", [y], "f32", y.shape)]
    fuse_activation.run(g)
    assert g.op_counts()["relu"] == 1
