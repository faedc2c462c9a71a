"""Run ``.bnn`` models with the native runtime (numpy only; never imports torch).

    >>> interp = Interpreter("net.bnn", num_threads=2)
    >>> y = interp.run(x)            # x: float32 array of interp.input_shapes[0]
    >>> interp.profile()             # [(op, node, shapes, kernel path, microseconds), ...]

Inputs and outputs are in PyTorch order (NCHW); the runtime keeps 4-D activations NHWC
internally and converts at this boundary (docs/format.md section 5). A malformed file
raises :class:`bnnkit.format.FormatError` (a ``ValueError``) before anything runs.
"""

from __future__ import annotations

import os
import threading
from typing import NamedTuple

import numpy as np

from bnnkit.format.model import FormatError


class ProfileEntry(NamedTuple):
    """One node of the last run: op, node name, shapes, kernel path, time in microseconds."""

    op: str
    node: str
    shapes: str
    kernel: str
    micros: float


def _native():
    from bnnkit import _C

    return _C


class Interpreter:
    """A loaded, validated ``.bnn`` model (from a path or bytes) ready to run."""

    def __init__(self, model, num_threads: int = 1):
        if isinstance(num_threads, bool) or not isinstance(num_threads, (int, np.integer)):
            raise TypeError(f"num_threads must be an int, got {type(num_threads).__name__}")
        if not 1 <= num_threads <= 1024:
            raise ValueError(f"num_threads must be in [1, 1024], got {num_threads}")
        self._impl = self._load(model, int(num_threads))
        self._lock = threading.Lock()  # run() releases the GIL; one run at a time per interpreter
        self._inputs = [(n, tuple(s)) for n, s, _ in self._impl.input_info()]
        self._outputs = [(n, tuple(s)) for n, s, _ in self._impl.output_info()]

    @staticmethod
    def _load(model, num_threads: int):
        native = _native().Interpreter
        try:
            if isinstance(model, (str, os.PathLike)):
                path = os.fspath(model)
                if not os.path.isfile(path):
                    raise FileNotFoundError(f"no such model file: {path!r}")
                return native.from_file(path, num_threads)
            if isinstance(model, (bytes, bytearray, memoryview)):
                return native.from_bytes(bytes(model), num_threads)
        except ValueError as e:  # the native loader's validation errors
            raise FormatError(str(e)) from None
        raise TypeError(f"model must be a path or bytes, got {type(model).__name__}")

    @property
    def input_names(self) -> list:
        return [n for n, _ in self._inputs]

    @property
    def output_names(self) -> list:
        return [n for n, _ in self._outputs]

    @property
    def input_shapes(self) -> list:
        return [s for _, s in self._inputs]

    @property
    def output_shapes(self) -> list:
        return [s for _, s in self._outputs]

    @property
    def num_threads(self) -> int:
        return self._impl.num_threads

    @property
    def arena_bytes(self) -> int:
        """Bytes of the activation arena (after lifetime-based reuse)."""
        return self._impl.arena_bytes

    def _check(self, i: int, x) -> np.ndarray:
        name, shape = self._inputs[i]
        if not isinstance(x, np.ndarray):
            raise TypeError(f"input {i} '{name}' must be a numpy array, got {type(x).__name__}")
        if x.dtype != np.float32:
            raise ValueError(f"input {i} '{name}': expected dtype float32, got {x.dtype}")
        if tuple(x.shape) != shape:
            raise ValueError(f"input {i} '{name}': expected shape {shape}, got {tuple(x.shape)}")
        return np.ascontiguousarray(x)

    def _arrange(self, inputs) -> list:
        """Inputs as a list in graph order from an array, a list/tuple or a name->array dict."""
        if isinstance(inputs, np.ndarray):
            inputs = [inputs]
        if isinstance(inputs, dict):
            unknown = set(inputs) - set(self.input_names)
            missing = [n for n in self.input_names if n not in inputs]
            if unknown or missing:
                raise ValueError(f"inputs: unknown {sorted(unknown)}, missing {missing}; "
                                 f"expected {self.input_names}")
            inputs = [inputs[n] for n in self.input_names]
        inputs = list(inputs)
        if len(inputs) != len(self._inputs):
            raise ValueError(f"expected {len(self._inputs)} inputs {self.input_names}, got {len(inputs)}")
        return inputs

    def run(self, inputs):
        """Run the model. One input/output: array in, array out. Several: a list (or a dict
        by name) in, a list out. Arrays are float32 in PyTorch order."""
        arrays = [self._check(i, x) for i, x in enumerate(self._arrange(inputs))]
        outs = [np.empty(shape, dtype=np.float32) for _, shape in self._outputs]
        with self._lock:
            for i, x in enumerate(arrays):
                self._impl.set_input(i, x)
            self._impl.run()
            for i, y in enumerate(outs):
                self._impl.get_output(i, y)
        return outs[0] if len(outs) == 1 else outs

    __call__ = run

    def profile(self) -> list:
        """Per-node timings of the last :meth:`run` (RuntimeError before the first run)."""
        with self._lock:
            return [ProfileEntry(*e) for e in self._impl.profile()]


class LatencyStats(NamedTuple):
    """Wall times in seconds of ``runs`` timed runs: the median and the 10th/90th percentiles."""

    median: float
    p10: float
    p90: float
    runs: int


def latency_stats(interpreter: Interpreter, x, *, runs: int = 50, warmup: int = 5) -> LatencyStats:
    """Time ``interpreter.run(x)`` ``runs`` times after ``warmup`` untimed runs."""
    import time

    if runs < 1 or warmup < 0:
        raise ValueError(f"runs must be >= 1 and warmup >= 0, got {runs}, {warmup}")
    for _ in range(warmup):
        interpreter.run(x)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        interpreter.run(x)
        times.append(time.perf_counter() - start)
    p10, median, p90 = np.percentile(times, [10, 50, 90])
    return LatencyStats(float(median), float(p10), float(p90), runs)


def median_latency(interpreter: Interpreter, x, *, runs: int = 50, warmup: int = 5) -> float:
    """Median wall time in seconds of ``interpreter.run(x)`` over ``runs`` runs after ``warmup``."""
    return latency_stats(interpreter, x, runs=runs, warmup=warmup).median
