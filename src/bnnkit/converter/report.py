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
