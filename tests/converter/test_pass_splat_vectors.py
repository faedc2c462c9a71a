"""splat_vectors: a binary layer's multiplier/bias equal across channels is stored as (1,)."""

import numpy as np
from converter_ir_eval import evaluate, tiny_binary_graph

from bnnkit.converter.passes import dce, splat_vectors

RNG = np.random.default_rng(12)


def _graph(mult, bias):
    g, y = tiny_binary_graph(RNG, o=4)
    y.producer.inputs += [g.const("m", np.asarray(mult, np.float64)), g.const("b", np.asarray(bias, np.float64))]
    g.outputs = [y]
    return g


def test_equal_vectors_become_one_value():
    g = _graph([0.75] * 4, [-0.5, 0.25, 0.0, 1.0])
    x = RNG.standard_normal(g.inputs[0].shape)
    before = evaluate(g, x)[0]
    dce.run(splat_vectors.run(g))
    conv = g.ops[-1]
    assert conv.inputs[2].data.shape == (1,) and conv.inputs[3].data.shape == (4,)
    np.testing.assert_array_equal(evaluate(g, x)[0], before)


def test_vectors_that_differ_in_any_bit_stay():
    g = _graph([0.75, 0.75, 0.75, np.nextafter(np.float32(0.75), np.float32(1))], [0.0, -0.0, 0.0, 0.0])
    splat_vectors.run(g)
    conv = g.ops[-1]
    assert conv.inputs[2].data.shape == (4,) and conv.inputs[3].data.shape == (4,)  # -0.0 differs from 0.0
