"""Size report: a ``.bnn`` file against the fp32 size of the model's state_dict."""

from __future__ import annotations

import os


def fp32_state_dict_bytes(model) -> int:
    """4 bytes per element of every floating-point tensor in ``model.state_dict()``
    (parameters and buffers such as BN statistics; integer counters excluded)."""
    return sum(4 * t.numel() for t in model.state_dict().values() if t.is_floating_point())


def size_report(model, bnn) -> dict:
    """{"file_bytes", "fp32_bytes", "ratio"} for a converted file (bytes or a path);
    ratio = fp32_bytes / file_bytes (how many times smaller the file is)."""
    size = len(bnn) if isinstance(bnn, (bytes, bytearray, memoryview)) else os.path.getsize(bnn)
    fp32 = fp32_state_dict_bytes(model)
    return {"file_bytes": size, "fp32_bytes": fp32, "ratio": fp32 / size if size else float("inf")}


def storage_change(reference, other, input_shape, *, samples: int = 16, seed: int = 0) -> dict:
    """How much storing float weights differently (e.g. ``float_weights="f16"``) changes
    the outputs: both files (bytes or paths) run by the native runtime on the same
    ``samples`` seeded standard-normal inputs of ``input_shape``.

    Returns {"max_abs_diff", "max_rel_diff" (max |a - b| / max |a|), "top1_agreement"
    (fraction of rows of the first output whose argmax is unchanged), "samples"}.
    """
    import numpy as np

    from bnnkit.runtime import Interpreter

    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    rng = np.random.default_rng(seed)
    a_run, b_run = Interpreter(reference), Interpreter(other)
    worst_abs = worst_rel = 0.0
    agree = total = 0
    for _ in range(samples):
        x = rng.standard_normal(tuple(input_shape)).astype(np.float32)
        a, b = np.asarray(a_run.run(x)), np.asarray(b_run.run(x))
        diff = float(np.max(np.abs(a - b)))
        worst_abs = max(worst_abs, diff)
        worst_rel = max(worst_rel, diff / max(float(np.max(np.abs(a))), 1e-30))
        rows_a, rows_b = a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1)
        agree += int(np.sum(rows_a.argmax(1) == rows_b.argmax(1)))
        total += rows_a.shape[0]
    return {"max_abs_diff": worst_abs, "max_rel_diff": worst_rel, "top1_agreement": agree / total,
            "samples": samples}
