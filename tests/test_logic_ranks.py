"""Logic ops on bit-packed tensors of every rank compute what numpy computes (regression:
a rank-1 operand made bxnor/bor/band read shape[1] and divide by zero at load)."""

import numpy as np
import pytest

from bnnkit.format import Builder
from bnnkit.runtime import Interpreter

# On +-1 values (+1 = true): xnor = product, or = max, and = min.
_NUMPY = {"bxnor": np.multiply, "bor": np.maximum, "band": np.minimum}


@pytest.mark.parametrize("op", sorted(_NUMPY))
@pytest.mark.parametrize("shape", [(40,), (3, 33), (2, 5, 7), (1, 33, 2, 3)])
def test_logic_op_every_rank(op, shape):
    b = Builder(name="logic")
    x, z = b.input("x", shape), b.input("z", shape)
    y = b.op(op, [b.op("quantize", [x], dtype="bits"), b.op("quantize", [z], dtype="bits")], dtype="bits")
    b.output(b.op("dequantize", [y], dtype="f32"))
    rng = np.random.default_rng(0)
    xs, zs = (rng.standard_normal(shape).astype(np.float32) for _ in range(2))
    got = Interpreter(b.write()).run([xs, zs])
    want = _NUMPY[op](np.where(xs >= 0, 1.0, -1.0), np.where(zs >= 0, 1.0, -1.0))
    np.testing.assert_array_equal(np.asarray(got).reshape(shape), want)
