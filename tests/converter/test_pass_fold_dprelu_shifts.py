"""fold_dprelu_shifts: add(x, c) -> dprelu -> add(., d) becomes one dprelu with b_x = -c, b_y = -d."""

import numpy as np
from converter_ir_eval import evaluate

from bnnkit.converter.ir import Graph, Value
from bnnkit.converter.passes import dce, fold_dprelu_shifts

RNG = np.random.default_rng(8)
C, SHAPE = 6, (2, 6, 4, 4)


def _graph(bx=0.0, by=0.0, shared=False):
    g = Graph(inputs=[], outputs=[])
    x = Value(g.unique("x"), "f32", SHAPE)
    g.inputs.append(x)
    u = g.add("add", [x, g.const("c", RNG.standard_normal((1, C, 1, 1)))], "f32", SHAPE)
    consts = [np.full(C, bx), RNG.uniform(0.5, 1.5, C), RNG.uniform(0.0, 0.5, C), np.full(C, by)]
    y = g.add("dprelu", [u] + [g.const(f"k{i}", v) for i, v in enumerate(consts)], "f32", SHAPE)
    g.outputs = [g.add("add", [y, g.const("d", RNG.standard_normal(C).reshape(C, 1, 1))], "f32", SHAPE)]
    if shared:
        g.outputs.append(u)
    return g


X = RNG.standard_normal(SHAPE)


def test_both_shifts_fold():
    g = _graph()
    before = evaluate(g, X)[0]
    dce.run(fold_dprelu_shifts.run(g))
    assert g.op_counts() == {"dprelu": 1}
    assert g.ops[0].inputs[0] is g.inputs[0] and np.any(g.ops[0].inputs[1].data) and np.any(g.ops[0].inputs[4].data)
    np.testing.assert_allclose(evaluate(g, X)[0], before, rtol=1e-12, atol=1e-12)


def test_existing_shifts_and_shared_inputs_are_kept():
    g = _graph(bx=0.5, by=0.25)
    fold_dprelu_shifts.run(g)
    assert g.op_counts() == {"add": 2, "dprelu": 1}
    g = _graph(shared=True)  # the shifted input is also a graph output
    before = evaluate(g, X)
    dce.run(fold_dprelu_shifts.run(g))
    assert g.op_counts() == {"add": 1, "dprelu": 1}
    for got, want in zip(evaluate(g, X), before):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
