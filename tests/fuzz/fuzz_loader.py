"""Fuzz the .bnn loaders: mutated files must get a clean error from both the pure-Python
reader and the native loader (never a crash, hang or other exception), and the two must
agree on which files are valid. A file both accept is also run once (small ones only).

    .venv/bin/python tests/fuzz/fuzz_loader.py --iterations 5000 --seed 1   # built-in mutator
    .venv/bin/python tests/fuzz/fuzz_loader.py --atheris [libFuzzer args]   # with atheris

The built-in mode is what CI runs (tests/test_format.py::test_fuzz_loader_subprocess).
"""

from __future__ import annotations

import argparse
import pathlib
import random
import struct
import sys
import tempfile

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import bnnkit.format as F  # noqa: E402
from bnnkit import _C  # noqa: E402

INTERESTING_U32 = [0, 1, 2, 3, 6, 7, 31, 32, 33, 63, 64, 65, 255, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 1 << 20]
MAX_RUN_ARENA = 1 << 24


def seeds() -> list:
    """Valid files covering every section: the golden model and small graphs."""
    out = [(HERE.parent / "data" / "golden_small.bnn").read_bytes()]
    from bnn_reference import Graph, sign

    rng = np.random.default_rng(0)
    g = Graph()
    x = g.input("x", (1, 40, 5, 5))
    q = g.op("quantize", [x])
    y = g.op("bconv2d", [q, g.const("w", sign(rng.standard_normal((8, 20, 3, 3))), "bits")],
             {"pad": [1, 1, 1, 1], "groups": 2, "acc_min": -5}, dtype="bits")
    p = g.op("dequantize", [g.op("bmaxpool2d", [y], {"kernel": [2, 2]})])
    z = g.op("concat", [p, g.op("hard_tanh", [p], {"min": -0.5})], {"axis": 1})
    g.output(g.op("softmax", [g.op("flatten", [z])], {"axis": -1}))
    out.append(g.encode())
    g = Graph()
    a = g.input("a", (2, 6))
    g.output(g.op("fake_quant", [g.op("mul", [a, g.const("s", np.ones(6, np.float16), "f16")])],
                  {"scale": 0.5, "qmin": -8, "qmax": 7}))
    out.append(F.write(None, g.desc() | {"metadata": {"k": [1.5, 2.5], "names": ["a", "b"], "n": 3}}))
    g = Graph()  # the logic, padding, channel and dynamic-range ops, and an i8 weight
    x = g.input("x", (1, 12, 3, 3))
    q = g.op("quantize", [x])
    b = g.op("bor", [g.op("bxnor", [q, q]), g.op("pad2d", [q], {"mode": 1})])
    m = g.op("gather_channels", [b, q], {"index": [0, 13, 5, 23, 12]})
    f = g.op("gather_channels", [g.op("dequantize", [m]), x], {"index": [4, -1, 0, 16, 5, 6]})
    h = g.op("pad2d", [g.op("group_mean", [f], {"group": 2})], {"pad": [1, 0, 0, 1], "value": 0.5})
    d = g.op("dynamic_fake_quant", [g.op("flatten", [h])], {"qmax": 7, "signed": 0})
    g.output(g.op("dense", [d, g.const("w", (np.arange(192).reshape(4, 48) % 51 - 25).astype(np.int8), "i8"),
                            g.const("ws", np.full(4, 0.25, np.float32))]))
    out.append(g.encode())
    return out


def mutate(data: bytes, rnd: random.Random) -> bytes:
    buf = bytearray(data)
    for _ in range(rnd.choice([1, 1, 1, 2, 3, 8])):
        kind = rnd.randrange(6)
        pos = rnd.randrange(max(1, len(buf)))
        if kind == 0 and buf:
            buf[pos] ^= 1 << rnd.randrange(8)
        elif kind == 1 and buf:
            buf[pos] = rnd.choice([0, 0xFF, 0x7F, 0x80, 0x40, rnd.randrange(256)])
        elif kind == 2 and len(buf) >= 4:
            pos = min(pos, len(buf) - 4) & ~3 if rnd.random() < 0.7 else min(pos, len(buf) - 4)
            buf[pos:pos + 4] = struct.pack("<I", rnd.choice(INTERESTING_U32 + [len(buf), rnd.getrandbits(32)]))
        elif kind == 3:
            del buf[rnd.randrange(len(buf) + 1):]
        elif kind == 4:
            n = rnd.randrange(1, 65)
            buf[pos:pos] = bytes(rnd.getrandbits(8) for _ in range(n))
        else:
            n = rnd.randrange(1, 65)
            del buf[pos:pos + n]
    return bytes(buf)


def check(data: bytes) -> bool:
    """Load with both loaders; raise AssertionError if they disagree. True if accepted."""
    try:
        F.read(data)
        py_ok, py_err = True, ""
    except F.FormatError as e:
        py_ok, py_err = False, str(e)
    try:
        interp = _C.Interpreter.from_bytes(data, 1)
        cc_ok, cc_err = True, ""
    except (ValueError, MemoryError) as e:
        interp, cc_ok, cc_err = None, False, str(e)
    if py_ok != cc_ok:
        raise AssertionError(f"loaders disagree: python={'ok' if py_ok else py_err!r} native={'ok' if cc_ok else cc_err!r}")
    if interp is not None and interp.arena_bytes <= MAX_RUN_ARENA:
        for i, (_, shape, _) in enumerate(interp.input_info()):
            interp.set_input(i, np.zeros(shape, np.float32))
        interp.run()
    return cc_ok


def builtin(iterations: int, seed: int) -> int:
    rnd = random.Random(seed)
    corpus = seeds()
    accepted = 0
    for i in range(iterations):
        data = mutate(rnd.choice(corpus), rnd)
        try:
            accepted += check(data)
        except AssertionError:
            path = pathlib.Path(tempfile.gettempdir()) / f"bnnkit-fuzz-{seed}-{i}.bnn"
            path.write_bytes(data)
            print(f"iteration {i}: disagreement; input saved to {path}", file=sys.stderr)
            raise
    print(f"{iterations} mutated inputs, {accepted} accepted by both loaders, no crash")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--atheris", action="store_true", help="coverage-guided fuzzing with atheris")
    args, rest = ap.parse_known_args()
    if not args.atheris:
        return builtin(args.iterations, args.seed)
    import atheris  # optional: pip install atheris

    corpus = seeds()
    atheris.Setup([sys.argv[0], *rest], lambda data: check(bytes(data)),
                  custom_mutator=lambda data, max_size, s: mutate(
                      bytes(data) if data else corpus[s % len(corpus)], random.Random(s))[:max_size])
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main())
