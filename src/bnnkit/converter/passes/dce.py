"""Dead-code elimination: drop ops whose output no op and no graph output reads.

Constants are emitted only when an op reads them, so dropping an op drops its weights.
"""

from __future__ import annotations

from ..ir import Graph


def run(g: Graph) -> Graph:
    while True:
        live = {id(v) for op in g.ops for v in op.inputs} | {id(v) for v in g.outputs}
        dead = [op for op in g.ops if id(op.output) not in live]
        if not dead:
            return g
        for op in dead:
            g.remove(op)
