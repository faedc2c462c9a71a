"""fuse_rprelu: add(x, c) -> prelu -> add(., d) becomes one rprelu(gamma = -c, beta, zeta = d)."""

import numpy as np
from converter_ir_eval import evaluate

from bnnkit.converter.ir import Graph, Value
from bnnkit.converter.passes import dce, fuse_rprelu

RNG = np.random.default_rng(9)
C, SHAPE = 6, (2, 6, 4, 4)
X = RNG.standard_normal(SHAPE)


def _graph(before=True, after=True, shared=False, slope_shape=(C,)):
    g = Graph(inputs=[], outputs=[])
    x = Value(g.unique("x"), "f32", SHAPE)
    g.inputs.append(x)
    u = g.add("add", [x, g.const("c", RNG.standard_normal((1, C, 1, 1)))], "f32", SHAPE) if before else x
    y = g.add("prelu", [u, g.const("slope", RNG.uniform(-0.5, 0.5, slope_shape))], "f32", SHAPE)
    g.outputs = [g.add("add", [y, g.const("d", RNG.standard_normal((C, 1, 1)))], "f32", SHAPE) if after else y]
    if shared:
        g.outputs.append(u)
    return g


def _same(g, before):
    for got, want in zip(evaluate(g, X), before):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_both_shifts_fuse():
    g = _graph()
    before = evaluate(g, X)
    dce.run(fuse_rprelu.run(g))
    assert g.op_counts() == {"rprelu": 1}
    assert g.ops[0].inputs[0] is g.inputs[0]
    _same(g, before)


def test_one_shift_and_a_scalar_slope():
    for kwargs in ({"before": False}, {"after": False}, {"slope_shape": (1,)}):
        g = _graph(**kwargs)
        before = evaluate(g, X)
        dce.run(fuse_rprelu.run(g))
        assert g.op_counts() == {"rprelu": 1}, kwargs
        _same(g, before)


def test_shared_input_keeps_its_add_and_a_lone_prelu_stays():
    g = _graph(shared=True)  # the shifted input is also a graph output: its add must stay
    before = evaluate(g, X)
    dce.run(fuse_rprelu.run(g))
    assert g.op_counts() == {"add": 1, "rprelu": 1}
    _same(g, before)
    g = _graph(before=False, after=False)
    fuse_rprelu.run(g)
    assert g.op_counts() == {"prelu": 1}
