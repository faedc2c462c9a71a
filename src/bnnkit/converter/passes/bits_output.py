"""Write bit-packed outputs from a binary layer whose every reader binarizes it again.

A ``bconv2d``/``bdense`` whose float output ``y`` is only read by ``quantize`` ops
(sign), or by ``maxpool2d`` ops only read by ``quantize``, writes ``bits`` directly
(bit 1 iff ``y < 0``, the same rule as ``quantize``) and the quantize ops disappear.
Through a max-pool: sign is monotone non-decreasing, so ``sign(max(x)) = max(sign(x))``
exactly, and the pool becomes ``bmaxpool2d`` (an AND of bits); both pools ignore
padding taps. The runtime turns the bits output into one integer threshold per channel
(docs/format.md 8.1), which skips the float epilogue entirely.
"""

from __future__ import annotations

from ..ir import Graph, Op
from ._util import BINARY_OPS, iterate


def _only_quantized(g: Graph, value) -> bool:
    users = g.consumers(value)
    return bool(users) and not g.is_output(value) and all(u.op == "quantize" for u in users)


def _eligible(g: Graph, op: Op) -> bool:
    users = g.consumers(op.output)
    if not users or g.is_output(op.output):
        return False
    return all(u.op == "quantize" or (u.op == "maxpool2d" and _only_quantized(g, u.output))
               for u in users)


def _drop_quantizers(g: Graph, value) -> None:
    for q in [u for u in g.consumers(value) if u.op == "quantize"]:
        g.replace_uses(q.output, value)
        g.remove(q)


def rewrite(g: Graph, op: Op) -> bool:
    if op.op not in BINARY_OPS or op.output.dtype != "f32" or not _eligible(g, op):
        return False
    op.output.dtype = "bits"
    for user in g.consumers(op.output):
        if user.op == "maxpool2d":
            user.op, user.output.dtype = "bmaxpool2d", "bits"
            _drop_quantizers(g, user.output)
    _drop_quantizers(g, op.output)
    return True


def run(g: Graph) -> Graph:
    return iterate(g, rewrite)
