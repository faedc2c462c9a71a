"""Bit conventions shared by the converter, the file format and the tests.

The C++ mirror is ``csrc/include/bnnkit/bits.h``; the two agree bit for bit:

* ``x`` binarizes to +1 if ``x >= 0`` else -1 (sign(0) = +1; NaN and -0.0 give +1).
* A packed bit of 1 means -1, 0 means +1.
* Channels are the innermost axis; a row of ``C`` channels is ``words_for(C)``
  little-endian ``uint32`` words, channel ``c`` at bit ``c % 32`` of word ``c // 32``,
  unused bits of the last word are 0.
* A dot product of two packed rows over ``K`` bits is ``K - 2 * popcount(a ^ b)``.

The numpy functions here are the oracle the native kernels are tested against.
"""

from __future__ import annotations

import numpy as np

BITS_PER_WORD = 32
WORD_DTYPE = np.uint32
TENSOR_ALIGNMENT = 64


def words_for(channels: int) -> int:
    """Number of 32-bit words that hold ``channels`` packed bits."""
    return (int(channels) + BITS_PER_WORD - 1) // BITS_PER_WORD


def pack_bits(x: np.ndarray) -> np.ndarray:
    """Pack the last axis of ``x`` (any real dtype) to uint32 words: bit 1 where x < 0."""
    x = np.asarray(x)
    channels = x.shape[-1]
    bits = np.zeros(x.shape[:-1] + (words_for(channels) * BITS_PER_WORD,), dtype=np.uint8)
    bits[..., :channels] = x < 0
    as_bytes = np.packbits(bits, axis=-1, bitorder="little")
    return np.ascontiguousarray(as_bytes).view("<u4").astype(WORD_DTYPE, copy=False)


def unpack_bits(words: np.ndarray, channels: int, dtype=np.float32) -> np.ndarray:
    """Inverse of :func:`pack_bits`: +1/-1 values of ``dtype`` with ``channels`` on the last axis."""
    words = np.ascontiguousarray(words, dtype="<u4")
    if words.shape[-1] != words_for(channels):
        raise ValueError(
            f"unpack_bits: last axis has {words.shape[-1]} words, "
            f"{channels} channels need {words_for(channels)}"
        )
    bits = np.unpackbits(words.view(np.uint8), axis=-1, bitorder="little")[..., :channels]
    return (1 - 2 * bits.astype(np.int8)).astype(dtype)


def popcount(words: np.ndarray) -> np.ndarray:
    """Per-element popcount of an unsigned integer array."""
    return np.unpackbits(np.ascontiguousarray(words).view(np.uint8), axis=-1).reshape(
        words.shape + (-1,)
    ).sum(axis=-1, dtype=np.int64)


def binary_dot(a: np.ndarray, b: np.ndarray, k: int) -> np.ndarray:
    """Dot product of packed rows ``a`` and ``b`` (last axis: words) over ``k`` valid bits."""
    return k - 2 * popcount(np.bitwise_xor(a, b)).sum(axis=-1)
