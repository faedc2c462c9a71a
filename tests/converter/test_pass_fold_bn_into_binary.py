"""fold_bn_into_binary: BN / per-channel affine after a binary conv -> its output transform."""

import numpy as np
import pytest
from converter_ir_eval import bn_consts, evaluate, tiny_binary_graph

from bnnkit.converter.passes import fold_bn_into_binary

RNG = np.random.default_rng(7)
X = RNG.standard_normal((1, 8, 6, 6))


def _check(g, expected_ops):
    before = evaluate(g, X)
    fold_bn_into_binary.run(g)
    assert g.op_counts() == expected_ops
    np.testing.assert_allclose(evaluate(g, X)[0], before[0], rtol=1e-6, atol=1e-6)
    return g


def test_bn_folds_into_multiplier_and_bias():
    g, y = tiny_binary_graph(RNG)
    s, t = bn_consts(g, RNG, 4)
    g.outputs = [g.add("batch_norm", [y, s, t], "f32", y.shape)]
    _check(g, {"quantize": 1, "bconv2d": 1})
    conv = g.ops[1]
    np.testing.assert_array_equal(conv.inputs[2].data, s.data)  # m' = s * 1
    np.testing.assert_array_equal(conv.inputs[3].data, t.data)  # b' = s * 0 + t


def test_relu_then_bn_becomes_integer_clamp():
    g, y = tiny_binary_graph(RNG)
    s, t = bn_consts(g, RNG, 4)
    r = g.add("relu", [y], "f32", y.shape)
    g.outputs = [g.add("batch_norm", [r, s, t], "f32", y.shape)]
    _check(g, {"quantize": 1, "bconv2d": 1})
    assert g.ops[1].attrs["acc_min"] == 0


@pytest.mark.parametrize("positive", [True, False])
def test_bn_moves_before_maxpool_only_when_increasing(positive):
    g, y = tiny_binary_graph(RNG)
    s, t = bn_consts(g, RNG, 4, positive)
    p = g.add("maxpool2d", [y], "f32", (1, 4, 3, 3), {"kernel": [2, 2]})
    g.outputs = [g.add("batch_norm", [p, s, t], "f32", p.shape)]
    expected = {"quantize": 1, "bconv2d": 1, "maxpool2d": 1}
    _check(g, expected if positive else {**expected, "batch_norm": 1})


def test_per_channel_mul_folds_scalar_add_too():
    g, y = tiny_binary_graph(RNG)
    c = g.const("alpha", RNG.uniform(0.1, 1.0, (1, 4, 1, 1)))
    m = g.add("mul", [y, c], "f32", y.shape)
    g.outputs = [g.add("add", [m, g.const("beta", [0.25])], "f32", y.shape)]
    _check(g, {"quantize": 1, "bconv2d": 1})
    np.testing.assert_allclose(g.ops[1].inputs[3].data, 0.25)


def test_no_fold_when_conv_output_has_two_readers():
    g, y = tiny_binary_graph(RNG)
    s, t = bn_consts(g, RNG, 4)
    g.outputs = [g.add("batch_norm", [y, s, t], "f32", y.shape), y]
    _check(g, {"quantize": 1, "bconv2d": 1, "batch_norm": 1})
