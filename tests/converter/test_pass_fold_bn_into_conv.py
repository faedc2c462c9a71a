"""fold_bn_into_conv: BN after a float conv2d / dense -> scaled weights and a bias."""

import numpy as np
from converter_ir_eval import evaluate

from bnnkit.converter.ir import Graph, Value
from bnnkit.converter.passes import fold_bn_into_conv

RNG = np.random.default_rng(5)


def test_conv_bn_fold():
    g = Graph(inputs=[], outputs=[])
    x = Value("x", "f32", (2, 3, 5, 5))
    g.inputs.append(x)
    w, b = RNG.standard_normal((4, 3, 3, 3)), RNG.standard_normal(4)
    y = g.add("conv2d", [x, g.const("w", w), g.const("b", b)], "f32", (2, 4, 3, 3))
    s, t = RNG.uniform(0.5, 2, 4), RNG.standard_normal(4)
    g.outputs = [g.add("batch_norm", [y, g.const("s", s), g.const("t", t)], "f32", y.shape)]
    xin = RNG.standard_normal(x.shape)
    before = evaluate(g, xin)[0]
    fold_bn_into_conv.run(g)
    assert g.op_counts() == {"conv2d": 1}
    np.testing.assert_allclose(g.ops[0].inputs[1].data, (w * s[:, None, None, None]).astype(np.float32), rtol=1e-6)
    np.testing.assert_allclose(g.ops[0].inputs[2].data, b * s + t, rtol=1e-6)
    np.testing.assert_allclose(evaluate(g, xin)[0], before, rtol=1e-5, atol=1e-5)


def test_dense_without_bias_bn_fold():
    g = Graph(inputs=[], outputs=[])
    x = Value("x", "f32", (2, 6))
    g.inputs.append(x)
    w = RNG.standard_normal((3, 6))
    y = g.add("dense", [x, g.const("w", w)], "f32", (2, 3))
    s, t = RNG.uniform(0.5, 2, 3), RNG.standard_normal(3)
    g.outputs = [g.add("batch_norm", [y, g.const("s", s), g.const("t", t)], "f32", y.shape)]
    xin = RNG.standard_normal(x.shape)
    before = evaluate(g, xin)[0]
    fold_bn_into_conv.run(g)
    assert g.op_counts() == {"dense": 1}
    np.testing.assert_allclose(evaluate(g, xin)[0], before, rtol=1e-5, atol=1e-5)


def test_int8_weight_keeps_its_integers_and_scales():
    """x, q (i8), scale, [bias]: the BN folds into the per-channel scale and the bias."""
    for with_bias in (True, False):
        g = Graph(inputs=[], outputs=[])
        x = Value("x", "f32", (2, 3, 5, 5))
        g.inputs.append(x)
        q = RNG.integers(-127, 128, (4, 3, 3, 3))
        m, b = RNG.uniform(0.01, 0.1, 4), RNG.standard_normal(4)
        ins = [x, g.const("q", q, "i8"), g.const("m", m)] + ([g.const("b", b)] if with_bias else [])
        y = g.add("conv2d", ins, "f32", (2, 4, 3, 3))
        s, t = RNG.uniform(0.5, 2, 4), RNG.standard_normal(4)
        g.outputs = [g.add("batch_norm", [y, g.const("s", s), g.const("t", t)], "f32", y.shape)]
        xin = RNG.standard_normal(x.shape)
        before = evaluate(g, xin)[0]
        fold_bn_into_conv.run(g)
        conv = g.ops[0]
        assert g.op_counts() == {"conv2d": 1} and len(conv.inputs) == 4
        assert conv.inputs[1].dtype == "i8" and np.array_equal(conv.inputs[1].data, q)
        np.testing.assert_allclose(conv.inputs[2].data, m * s, rtol=1e-6)
        np.testing.assert_allclose(conv.inputs[3].data, (b if with_bias else 0) * s + t, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(evaluate(g, xin)[0], before, rtol=1e-5, atol=1e-5)
