"""Whole-model latency: bnnkit's native runtime vs PyTorch fp32 eager, side by side.

For each model (default: the QuickNet family, Bi-RealNet-18, ReActNet-A at 224x224, 1000
classes, batch 1): build it, run a few training steps so batch-norm is not the identity,
convert it, then time ``Interpreter.run`` and ``model(x)`` (torch.no_grad, fp32) in the
same process, 1 and 2 threads, interleaved rounds, medians. Also prints the file size
against the fp32 state_dict and the slowest ops of the runtime's profile.

    .venv/bin/python benchmarks/bench_models.py [--models quicknet birealnet18] [--runs 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

# Before torch starts its OpenMP threads: let them sleep between calls. With the default
# (spinning) policy, torch's worker keeps the second core busy for a while after each
# call, and the runtime's second thread, timed right after, cannot start.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch  # noqa: E402

from bnnkit import kernels, models
from bnnkit.converter import convert, size_report
from bnnkit.runtime import Interpreter

DEFAULT_MODELS = ("quicknet_small", "quicknet", "quicknet_large", "birealnet18", "reactnet_a")
# LCE 0.16 in its fastest x86 configuration (indirect bgemm + XNNPACK, 1 thread), as
# measured for issue 5 on a machine of this kind; not re-measured here (LCE needs
# TensorFlow, which this environment does not install).
LCE_MS = {"quicknet_small": 37.0, "quicknet": 60.0, "quicknet_large": 110.0, "birealnet18": 60.0}


def _prepared(name: str, size: int) -> torch.nn.Module:
    torch.manual_seed(0)
    model = models.create(name, num_classes=1000, input_size=size)
    model.train()
    with torch.no_grad():  # update BN statistics on two random batches (no weight update)
        for _ in range(2):
            model(torch.randn(2, 3, size, size))
    return model.eval()


def _time(fn, runs: int) -> float:
    start = time.perf_counter()
    for _ in range(runs):
        fn()
    return (time.perf_counter() - start) / runs


def bench(name: str, size: int, runs: int, rounds: int) -> None:
    model = _prepared(name, size)
    x = torch.randn(1, 3, size, size)
    start = time.perf_counter()
    data = convert(model, x, model_name=name)
    seconds = time.perf_counter() - start
    report = size_report(model, data)
    print(f"\n{name} @ {size}: file {report['file_bytes']:,} B vs fp32 state_dict "
          f"{report['fp32_bytes']:,} B ({report['ratio']:.1f}x); converted in {seconds:.1f} s")
    xn = x.numpy()
    for threads in (1, 2):
        interp = Interpreter(data, num_threads=threads)
        torch.set_num_threads(threads)
        with torch.no_grad():
            interp.run(xn), model(x)  # warm-up
            ours, theirs = [], []
            for _ in range(rounds):
                ours.append(_time(lambda: interp.run(xn), runs))
                theirs.append(_time(lambda: model(x), max(1, runs // 4)))
        o, t = statistics.median(ours), statistics.median(theirs)
        lce = f"   vs LCE figure {LCE_MS[name]:.0f} ms: {LCE_MS[name] / (1e3 * o):5.1f}x" if name in LCE_MS and threads == 1 else ""
        print(f"  {threads} thread(s): runtime {1e3 * o:8.2f} ms   torch fp32 eager {1e3 * t:8.2f} ms"
              f"   speed-up {t / o:5.1f}x{lce}")
    prof = _profile(data, xn)
    total = sum(e.micros for e in prof)
    by_op: dict[str, float] = {}
    for e in prof:
        by_op[e.op] = by_op.get(e.op, 0.0) + e.micros
    top = sorted(by_op.items(), key=lambda kv: -kv[1])[:6]
    shares = ", ".join(f"{op} {100 * us / total:.0f}%" for op, us in top)
    print(f"  profile (1 thread, {total / 1e3:.2f} ms summed over ops): {shares}")


def sizes(size: int) -> None:
    """File size of every zoo model (1000 classes, BN statistics updated) against its fp32
    state_dict, and the conversion time."""
    print(f"\n| model | .bnn bytes | fp32 state_dict bytes | smaller by | convert s |")
    print("|---|---:|---:|---:|---:|")
    for name in models.list_models():
        model = _prepared(name, size)
        start = time.perf_counter()
        data = convert(model, torch.randn(1, 3, size, size), model_name=name)
        seconds = time.perf_counter() - start
        r = size_report(model, data)
        print(f"| {name} | {r['file_bytes']:,} | {r['fp32_bytes']:,} | {r['ratio']:.1f}x | {seconds:.1f} |", flush=True)


def _profile(data: bytes, xn: np.ndarray) -> list:
    interp = Interpreter(data, num_threads=1)
    interp.run(xn)
    return interp.profile()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--runs", type=int, default=10, help="runs per round (runtime)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sizes", action="store_true", help="only the file-size table of every zoo model")
    args = parser.parse_args()
    if args.sizes:
        sizes(args.size)
        return
    print(f"kernel path {kernels.active_path()}; CPU flags {kernels.cpu_flags()}; torch {torch.__version__}")
    for name in args.models:
        bench(name, args.size, args.runs, args.rounds)


if __name__ == "__main__":
    main()
