"""Binary 3x3 'same' conv vs torch fp32 conv2d, side by side in one process (issue 4).

For each shape (batch 1, C_in = C_out): our bconv (float and bit output, each kernel path and
bgemm variant, 1 and 2 threads) and torch.nn.functional.conv2d fp32 (NCHW and channels_last,
torch.set_num_threads matching). All of them are timed in interleaved rounds after warm-up
(the machine is shared: every candidate sees the same load); reported are medians of the
per-round medians, the median per-round ratio to the better torch layout ("speed-up"), and
G binary MACs/s of the float-output kernel. Usage:

    .venv/bin/python benchmarks/bench_bconv.py [--repeats 200] [--paths avx2,portable]
"""

from __future__ import annotations

import argparse
import os
import datetime
import statistics
import time

import numpy as np

# Before torch starts its OpenMP threads: let them sleep between calls. With the default
# (spinning) policy, torch's worker keeps the second core busy for a while after each
# call, and the runtime's second thread, timed right after, cannot start.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch  # noqa: E402

from bnnkit import bits
from bnnkit import kernels as K

SHAPES = [(56, 64), (28, 128), (14, 256), (7, 512)]  # (H = W, C); every one is 115.6 M MACs


def aligned(a: np.ndarray) -> np.ndarray:
    """A copy of ``a`` at a 64-byte aligned address, as the runtime's arena places every
    tensor (numpy's allocator gives 16-byte alignment: 64-byte vector stores would then
    each split over two cache lines; torch aligns its tensors to 64 bytes too)."""
    raw = np.empty(a.nbytes + 64, dtype=np.uint8)
    start = -raw.ctypes.data % 64
    out = raw[start:start + a.nbytes].view(a.dtype).reshape(a.shape)
    out[...] = a
    assert out.ctypes.data % 64 == 0
    return out


def time_us(fn, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e6)
    return out


def interleaved(fns: dict, repeats: int, rounds: int = 10, warmup: int = 5):
    """Times every callable in turn, `rounds` times, so all see the same machine load.

    Returns per callable the per-round medians (``rounds`` values) and the fastest single
    run. On a shared machine, long runs (torch, milliseconds) are preempted more often than
    short ones, which inflates median ratios; the ratio of fastest runs is the fairer one."""
    start = time.perf_counter()
    while True:  # at least `warmup` calls each and half a second in all (clock ramp-up)
        for fn in fns.values():
            time_us(fn, warmup)
        if time.perf_counter() - start > 0.5:
            break
    per_round = {name: [] for name in fns}
    fastest = {name: float("inf") for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            samples = time_us(fn, max(repeats // rounds, 1))
            per_round[name].append(statistics.median(samples))
            fastest[name] = min(fastest[name], min(samples))
    return per_round, fastest


def torch_fns(x, w) -> dict:
    xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
    wt = torch.from_numpy(w).permute(0, 3, 1, 2).contiguous()
    xc, wc = xt.to(memory_format=torch.channels_last), wt.to(memory_format=torch.channels_last)
    return {"torch_nchw": lambda: torch.nn.functional.conv2d(xt, wt, padding=1),
            "torch_nhwc": lambda: torch.nn.functional.conv2d(xc, wc, padding=1)}


def variants(paths: list[str]) -> list[tuple[str, str | None]]:
    """(path, bgemm variant or None for the default) for every supported path."""
    out = []
    for path in paths:
        out.append((path, None))
        for v in K.manifest():
            if v["op"] in ("bgemm", "bgemm_o8") and v["path"] == path and not v["default"]:
                out.append((path, v["name"]))
    return out


def bench_shape(hw: int, c: int, paths, repeats: int) -> list[dict]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, hw, hw, c)).astype(np.float32)
    w = rng.standard_normal((c, 3, 3, c)).astype(np.float32)
    px, pw = aligned(bits.pack_bits(x)), bits.pack_bits(w)
    m, b = rng.uniform(0.5, 1.5, c).astype(np.float32), rng.standard_normal(c).astype(np.float32)
    macs = hw * hw * c * c * 9
    convs = {o: K.BConv2d(pw, px.shape[:3], c, padding="same", multiplier=m, bias=b, output=o)
             for o in ("float", "bits")}
    outs = {o: aligned(np.empty(conv.output_shape(), dtype=np.float32 if o == "float" else np.uint32))
            for o, conv in convs.items()}
    rows = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        fns = torch_fns(x, w)
        for path, variant in variants(paths):
            for o, conv in convs.items():
                fns[(path, variant, o)] = (lambda conv=conv, o=o, path=path, variant=variant:
                                           conv(px, num_threads=threads, path=path, variant=variant, out=outs[o]))
        with torch.inference_mode():
            t, fastest = interleaved(fns, repeats)
        best_torch = [min(a, b) for a, b in zip(t["torch_nchw"], t["torch_nhwc"])]
        for path, variant in variants(paths):
            ours = t[(path, variant, "float")]
            row = dict(shape=f"{hw}x{hw}x{c}", threads=threads, path=path, variant=variant or "default",
                       torch_nchw=statistics.median(t["torch_nchw"]),
                       torch_nhwc=statistics.median(t["torch_nhwc"]),
                       float=statistics.median(ours), bits=statistics.median(t[(path, variant, "bits")]),
                       ratio=statistics.median(bt / us for bt, us in zip(best_torch, ours)),
                       ratio_min=min(fastest["torch_nchw"], fastest["torch_nhwc"]) / fastest[(path, variant, "float")],
                       float_min=fastest[(path, variant, "float")])
            row["gmacs"] = macs / row["float_min"] / 1e3
            rows.append(row)
            print(format_row(row), flush=True)
    return rows


HEADER = ("| shape | thr | path (bgemm) | bconv float us | bconv bits us | torch NCHW us | "
          "torch NHWC us | speed-up (medians) | speed-up (fastest runs) | G binary MAC/s (fastest) |")


def format_row(r: dict) -> str:
    variant = "" if r["variant"] == "default" else f" ({r['variant'].split('__')[1]})"
    return (f"| {r['shape']} | {r['threads']} | {r['path']}{variant} | {r['float']:.0f} | "
            f"{r['bits']:.0f} | {r['torch_nchw']:.0f} | {r['torch_nhwc']:.0f} | "
            f"{r['ratio']:.1f}x | {r['ratio_min']:.1f}x | {r['gmacs']:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--paths", default=",".join(p for p in K.supported_paths() if p != "reference"))
    args = parser.parse_args()
    paths = [p for p in args.paths.split(",") if p]
    print(f"date {datetime.date.today()}  cpu flags: {K.cpu_flags()}  active path: {K.active_path()}  "
          f"torch {torch.__version__}")
    print(HEADER)
    print("|---" * 10 + "|")
    for hw, c in SHAPES:
        bench_shape(hw, c, paths, args.repeats)


if __name__ == "__main__":
    main()
