"""Thin Python face of the native binary kernels (numpy in, numpy out).

Bit conventions are those of :mod:`bnnkit.bits` (bit 1 = -1, channels innermost, 32-bit
little-endian words, zero padding bits, ``dot = K - 2 * popcount(a ^ b)``). Kernel paths
(``"reference"``, ``"portable"``, ``"avx2"``, ``"avx512"``, ``"neon"``) are chosen at start-up
from the CPU; ``BNNKIT_KERNELS=<path>`` overrides it and :func:`set_active_path` /
:func:`use_path` switch it in-process. Every function takes ``path=None`` (the active path)
or a path name, so tests and benchmarks can run each path in turn.

The binary conv computes, per output pixel and channel (see csrc/kernels/output_transform.h)::

    d = sum over taps and input channels of x * w          (x, w in {-1, +1}; padded taps
                                                            are +1 or 0 by ``pad_value``)
    output="int32":  d
    a = clamp(d, acc_clamp[0], acc_clamp[1])               (integer; default: no clamp)
    output="float":  clamp(a * multiplier[o] + bias[o], clamp[0], clamp[1])
    output="bits":   packed sign of that float (exact: bit 1 iff the exact value < 0)
"""

from __future__ import annotations

import contextlib
from functools import lru_cache

import numpy as np

from bnnkit import _C
from bnnkit.bits import words_for

OUTPUT_KINDS = ("float", "bits", "int32")


def cpu_flags() -> str:
    """Detected CPU features, e.g. ``"popcnt bmi2 fma avx2 os_avx"``."""
    return _C.cpu_flags()


def available_paths() -> list[str]:
    """Every kernel path name (compiled here or not)."""
    return list(_C.kernel_paths())


def supported_paths() -> list[str]:
    """Paths compiled in and supported by this CPU, reference first."""
    return list(_C.supported_kernel_paths())


def unsupported_reason(path: str) -> str:
    """Why ``path`` cannot run here ('' when it can); unknown names raise ValueError."""
    return _C.kernel_path_unsupported_reason(path)


def best_path() -> str:
    return _C.best_kernel_path()


def active_path() -> str:
    """The path used when none is given (raises RuntimeError on a bad BNNKIT_KERNELS)."""
    return _C.active_kernel_path()


def set_active_path(path: str) -> None:
    """Switch the active path (``"auto"`` = best); unsupported paths raise RuntimeError."""
    _C.set_active_kernel_path(path)


@contextlib.contextmanager
def use_path(path: str):
    """Context manager running the block with ``path`` active."""
    previous = active_path()
    set_active_path(path)
    try:
        yield path
    finally:
        set_active_path(previous)


def manifest() -> list[dict]:
    """The kernel manifest: one dict (op, path, name, default) per variant."""
    keys = ("op", "path", "name", "default")
    return [dict(zip(keys, row)) for row in _C.kernel_manifest()]


def _path(path: str | None) -> str:
    return "auto" if path is None else str(path)


def pack_bits(x: np.ndarray, *, path: str | None = None) -> np.ndarray:
    """Pack the last axis of a float32 or int8 array: (..., C) -> uint32 (..., words_for(C))."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"pack_bits: expected a numpy array, got {type(x).__name__}")
    if x.dtype not in (np.float32, np.int8):
        raise TypeError(f"pack_bits: dtype must be float32 or int8, got {x.dtype}")
    if x.ndim < 1 or x.shape[-1] < 1:
        raise ValueError(f"pack_bits: need a non-empty last (channel) axis, got shape {x.shape}")
    channels = x.shape[-1]
    rows = int(np.prod(x.shape[:-1], dtype=np.int64))
    out = np.empty(x.shape[:-1] + (words_for(channels),), dtype=np.uint32)
    packer = _C.pack_f32 if x.dtype == np.float32 else _C.pack_s8
    packer(np.ascontiguousarray(x), rows, channels, out, _path(path))
    return out


def unpack_bits(words: np.ndarray, channels: int, dtype=np.float32, *, path: str | None = None) -> np.ndarray:
    """Inverse of :func:`pack_bits`: uint32 (..., words_for(C)) -> +-1 values (..., C)."""
    if not isinstance(words, np.ndarray) or words.dtype != np.uint32:
        raise TypeError(f"unpack_bits: expected a uint32 numpy array, got {getattr(words, 'dtype', type(words))}")
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.int8):
        raise TypeError(f"unpack_bits: dtype must be float32 or int8, got {dtype}")
    if int(channels) < 1 or words.ndim < 1 or words.shape[-1] != words_for(channels):
        raise ValueError(
            f"unpack_bits: last axis has {words.shape[-1] if words.ndim else None} words, "
            f"{channels} channels need {words_for(max(int(channels), 0))}")
    rows = int(np.prod(words.shape[:-1], dtype=np.int64))
    out = np.empty(words.shape[:-1] + (int(channels),), dtype=dtype)
    unpacker = _C.unpack_f32 if dtype == np.float32 else _C.unpack_s8
    unpacker(np.ascontiguousarray(words), rows, int(channels), out, _path(path))
    return out


def _pair(value, name: str) -> tuple[int, int]:
    pair = (value, value) if np.isscalar(value) else tuple(value)
    if len(pair) != 2:
        raise ValueError(f"{name} must be an int or a pair, got {value!r}")
    return int(pair[0]), int(pair[1])


def _pads(padding) -> tuple[bool, tuple[int, int, int, int]]:
    """(same?, (top, bottom, left, right)) from 'same' | 'valid' | int | (h, w) | 4-tuple."""
    if isinstance(padding, str):
        if padding not in ("same", "valid"):
            raise ValueError(f"padding must be 'same', 'valid', an int or a tuple, got {padding!r}")
        return padding == "same", (0, 0, 0, 0)
    if np.isscalar(padding):
        padding = (padding, padding)
    padding = tuple(int(p) for p in padding)
    if len(padding) == 2:
        return False, (padding[0], padding[0], padding[1], padding[1])
    if len(padding) == 4:
        return False, padding
    raise ValueError(f"padding tuple must have 2 or 4 values, got {padding!r}")


@lru_cache(maxsize=None)
def thread_pool(num_threads: int):
    """A persistent native thread pool of ``num_threads`` (cached per count)."""
    return _C.ThreadPool(int(num_threads))


def _acc_clamp(acc_clamp) -> tuple[int, int]:
    lo, hi = acc_clamp
    lo = -(2**31) if lo is None else int(lo)
    hi = 2**31 - 1 if hi is None else int(hi)
    if lo > hi:
        raise ValueError(f"acc_clamp needs lo <= hi, got {acc_clamp}")
    return lo, hi


class BConv2d:
    """A prepared binary conv2d on packed NHWC input (weights packed OHWI).

    ``weights``: uint32 (out_channels, kernel_h, kernel_w, words_for(in_channels // groups)).
    ``input_shape``: (batch, height, width) of the packed input it will run on.
    """

    def __init__(self, weights, input_shape, in_channels: int, *, stride=1, padding="valid",
                 dilation=1, groups: int = 1, pad_value: int = 1, multiplier=None, bias=None,
                 clamp=(None, None), acc_clamp=(None, None), output: str = "float"):
        weights = _uint32(weights, "weights", ndim=4)
        if output not in OUTPUT_KINDS:
            raise ValueError(f"output must be one of {OUTPUT_KINDS}, got {output!r}")
        same, pads = _pads(padding)
        batch, height, width = (int(v) for v in input_shape)
        o, kh, kw, _ = weights.shape
        shape = [batch, height, width, int(in_channels), o, kh, kw, *_pair(stride, "stride"),
                 *_pair(dilation, "dilation"), *pads, int(groups)]
        lo, hi = (-np.inf if clamp[0] is None else clamp[0]), (np.inf if clamp[1] is None else clamp[1])
        self.output, self.out_channels, self.batch = output, o, batch
        self._conv = _C.BConv2D(weights, shape, same, int(pad_value), output, _floats(multiplier),
                                _floats(bias), float(lo), float(hi), *_acc_clamp(acc_clamp))

    def output_shape(self) -> tuple[int, ...]:
        oh, ow = self._conv.out_hw
        last = words_for(self.out_channels) if self.output == "bits" else self.out_channels
        return (self.batch, oh, ow, last)

    def __call__(self, x, *, num_threads: int = 1, path: str | None = None, variant: str | None = None,
                 out: np.ndarray | None = None) -> np.ndarray:
        dtype = {"float": np.float32, "bits": np.uint32, "int32": np.int32}[self.output]
        if out is None:
            out = np.empty(self.output_shape(), dtype=dtype)
        pool = thread_pool(num_threads) if num_threads > 1 else None
        self._conv.run(_uint32(x, "input", ndim=4), out, pool, _path(path), variant or "")
        return out


def bconv2d(packed_input, packed_weights, in_channels: int, *, stride=1, padding="valid", dilation=1,
            groups: int = 1, pad_value: int = 1, multiplier=None, bias=None, clamp=(None, None),
            acc_clamp=(None, None), output: str = "float", num_threads: int = 1, path: str | None = None,
            variant: str | None = None) -> np.ndarray:
    """Binary conv2d of packed NHWC input with packed OHWI weights (see the module docstring)."""
    x = _uint32(packed_input, "packed_input", ndim=4)
    conv = BConv2d(packed_weights, x.shape[:3], in_channels, stride=stride, padding=padding,
                   dilation=dilation, groups=groups, pad_value=pad_value, multiplier=multiplier,
                   bias=bias, clamp=clamp, acc_clamp=acc_clamp, output=output)
    return conv(x, num_threads=num_threads, path=path, variant=variant)


def bdense(packed_input, packed_weights, in_features: int, **kwargs) -> np.ndarray:
    """Binary dense: (batch, words) x (out, words) -> (batch, out) as a 1x1 conv."""
    x = _uint32(packed_input, "packed_input", ndim=2)
    w = _uint32(packed_weights, "packed_weights", ndim=2)
    y = bconv2d(x[:, None, None, :], w[:, None, None, :], in_features, **kwargs)
    return y[:, 0, 0, :]


def bmaxpool2d(packed_input, channels: int, kernel, *, stride=None, padding=0,
               path: str | None = None) -> np.ndarray:
    """Max-pool on packed bits (bitwise AND of the window); padded positions are ignored."""
    x = _uint32(packed_input, "packed_input", ndim=4)
    if isinstance(padding, str):
        raise ValueError(f"bmaxpool2d: padding must be an int or a tuple, got {padding!r}")
    kh, kw = _pair(kernel, "kernel")
    sh, sw = _pair(kernel if stride is None else stride, "stride")
    _, (pt, pb, pl, pr) = _pads(padding)
    shape = [*x.shape[:3], int(channels), kh, kw, sh, sw, pt, pb, pl, pr]
    oh = (x.shape[1] + pt + pb - kh) // sh + 1
    ow = (x.shape[2] + pl + pr - kw) // sw + 1
    out = np.empty((x.shape[0], max(oh, 0), max(ow, 0), x.shape[3]), dtype=np.uint32)
    _C.bmaxpool2d(x, shape, out, _path(path))
    return out


def _uint32(a, name: str, *, ndim: int) -> np.ndarray:
    if not isinstance(a, np.ndarray) or a.dtype != np.uint32:
        raise TypeError(f"{name} must be a uint32 numpy array of packed words, got {getattr(a, 'dtype', type(a))}")
    if a.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {a.shape}")
    return np.ascontiguousarray(a)


def _floats(values) -> list[float]:
    return [] if values is None else [float(v) for v in np.asarray(values, dtype=np.float32).ravel()]
