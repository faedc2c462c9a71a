"""dce: ops nobody reads are dropped (and so are their weights)."""

import numpy as np

from bnnkit.converter.ir import Graph, Value
from bnnkit.converter.passes import dce


def test_dead_chain_removed_live_kept():
    g = Graph(inputs=[], outputs=[])
    x = Value("x", "f32", (1, 4))
    g.inputs.append(x)
    live = g.add("relu", [x], "f32", x.shape)
    dead = g.add("dense", [x, g.const("w", np.ones((2, 4)))], "f32", (1, 2))
    g.add("relu", [dead], "f32", dead.shape)
    g.outputs = [live]
    dce.run(g)
    assert [op.op for op in g.ops] == ["relu"] and g.ops[0].output is live
