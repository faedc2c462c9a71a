"""emit: identical constants are stored once, default attributes are left to the readers."""

import numpy as np

import bnnkit.format as F
from bnnkit.converter.emit import emit
from bnnkit.converter.ir import Graph, Value


def _graph(second_scale):
    g = Graph(inputs=[], outputs=[])
    x = Value(g.unique("x"), "f32", (1, 4, 3, 3))
    g.inputs.append(x)
    y = g.add("batch_norm", [x, g.const("s", np.full(4, 0.5)), g.const("t", np.zeros(4))], "f32", x.shape)
    z = g.add("batch_norm", [y, g.const("s", second_scale), g.const("t", np.zeros(4))], "f32", x.shape)
    g.outputs = [g.add("maxpool2d", [z], "f32", (1, 4, 3, 3), {"kernel": [1, 1], "pad": [0, 0, 0, 0]})]
    return g


def test_identical_constants_are_stored_once():
    model = F.read(emit(_graph(np.full(4, 0.5))))
    assert len([t for t in model.tensors if t.constant]) == 2  # one scale, one shift
    assert model.nodes[0].inputs[1:] == model.nodes[1].inputs[1:]
    other = F.read(emit(_graph(np.array([0.5, 0.5, 0.5, 0.25]))))
    assert len([t for t in other.tensors if t.constant]) == 3


def test_default_attributes_are_not_written_and_read_back_as_defaults():
    data = emit(_graph(np.full(4, 0.5)))
    assert b"pad" not in data and b"kernel" in data  # pad [0,0,0,0] is the default; kernel is required
    pool = F.read(data).nodes[2]
    assert list(pool.attrs["kernel"]) == [1, 1] and "pad" not in pool.attrs
