"""bit_logic: XNOR / OR / AND written as float arithmetic on dequantized +-1 maps become
bxnor / bor / band on packed bits, gathers of dequantized maps gather bits, and
quantize(dequantize(x)) disappears."""

import numpy as np
import pytest
from converter_ir_eval import evaluate

from bnnkit.converter.ir import Graph, Value
from bnnkit.converter.passes import bit_logic, dce

RNG = np.random.default_rng(5)
SHAPE = (2, 40, 3, 3)


def _two_signs():
    """Inputs a, b -> quantize -> dequantize each; returns (graph, deq a, deq b)."""
    g = Graph(inputs=[], outputs=[])
    a, b = Value(g.unique("a"), "f32", SHAPE), Value(g.unique("b"), "f32", SHAPE)
    g.inputs += [a, b]
    da, db = (g.add("dequantize", [g.add("quantize", [v], "bits", SHAPE)], "f32", SHAPE) for v in (a, b))
    return g, da, db


def evaluate_two(g, feeds):
    """evaluate() for two inputs: the second is bound as a constant of the first's graph."""
    a, b = g.inputs
    b.data = feeds[1]
    g.inputs = [a]
    try:
        return evaluate(g, feeds[0])[0]
    finally:
        b.data = None
        g.inputs = [a, b]


FEEDS = (RNG.standard_normal(SHAPE), RNG.standard_normal(SHAPE))


def _check(g, expect_ops):
    before = evaluate_two(g, FEEDS)
    dce.run(bit_logic.run(g))
    assert g.op_counts() == expect_ops
    np.testing.assert_array_equal(evaluate_two(g, FEEDS), before)


def test_mul_becomes_bxnor_and_the_sign_after_it_disappears():
    g, da, db = _two_signs()
    g.outputs = [g.add("dequantize", [g.add("quantize", [g.add("mul", [da, db], "f32", SHAPE)], "bits", SHAPE)],
                       "f32", SHAPE)]
    _check(g, {"quantize": 2, "bxnor": 1, "dequantize": 1})


@pytest.mark.parametrize("offset, op", [(1.0, "bor"), (-1.0, "band")])
def test_clamped_sum_becomes_bor_or_band(offset, op):
    g, da, db = _two_signs()
    s = g.add("add", [da, db], "f32", SHAPE)
    t = g.add("add", [s, g.const("one", [offset])], "f32", SHAPE)
    g.outputs = [g.add("hard_tanh", [t], "f32", SHAPE, {"min": -1.0, "max": 1.0})]
    _check(g, {"quantize": 2, op: 1, "dequantize": 1})


def test_other_offsets_and_clamps_stay_float():
    g, da, db = _two_signs()
    s = g.add("add", [da, db], "f32", SHAPE)
    t = g.add("add", [s, g.const("half", [0.5])], "f32", SHAPE)
    u = g.add("hard_tanh", [t], "f32", SHAPE, {"min": -1.0, "max": 1.0})
    g.outputs = [g.add("hard_tanh", [g.add("add", [s, g.const("one", [1.0])], "f32", SHAPE)], "f32", SHAPE,
                       {"min": -2.0, "max": 2.0}), u]
    bit_logic.run(g)
    assert "bor" not in g.op_counts() and "band" not in g.op_counts()


def test_gather_of_dequantized_maps_gathers_bits():
    g, da, db = _two_signs()
    index = list(range(79, -1, -2)) + [0, 40]
    gathered = g.add("gather_channels", [da, db], "f32", (2, len(index), 3, 3), {"index": index})
    g.outputs = [gathered]
    before = evaluate_two(g, FEEDS)
    dce.run(bit_logic.run(g))
    assert g.op_counts() == {"quantize": 2, "gather_channels": 1, "dequantize": 1}
    gather = next(op for op in g.ops if op.op == "gather_channels")
    assert gather.output.dtype == "bits" and gather.attrs["index"] == index
    np.testing.assert_array_equal(evaluate_two(g, FEEDS), before)


def test_gather_with_zero_channels_stays_float():
    g, da, db = _two_signs()
    g.outputs = [g.add("gather_channels", [da], "f32", (2, 41, 3, 3), {"index": list(range(40)) + [-1]})]
    bit_logic.run(g)
    assert next(op for op in g.ops if op.op == "gather_channels").output.dtype == "f32"
