"""Native bit-packing (bnnkit.kernels.pack_bits / unpack_bits) vs the numpy oracle in
bnnkit.bits, on every supported kernel path and channel counts around word edges."""

import numpy as np
import pytest

from bnnkit import bits
from bnnkit import kernels as K

CHANNELS = [1, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 256, 257, 511, 512, 513]
PATHS = K.supported_paths()
SPECIALS = np.array([0.0, -0.0, np.nan, -np.nan, np.inf, -np.inf, 1e-45, -1e-45], dtype=np.float32)


def _floats(rng, shape):
    x = rng.standard_normal(shape).astype(np.float32)
    flat = x.reshape(-1)
    flat[::3] = np.resize(SPECIALS, flat[::3].shape)  # every third value is special
    return x


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("channels", CHANNELS)
def test_pack_f32_matches_oracle(path, channels):
    rng = np.random.default_rng(channels)
    for rows in (1, 3, 8):
        x = _floats(rng, (rows, channels))
        got = K.pack_bits(x, path=path)
        assert got.dtype == np.uint32 and got.shape == (rows, bits.words_for(channels))
        assert got.tobytes() == bits.pack_bits(x).tobytes()


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("channels", CHANNELS)
def test_pack_s8_and_roundtrip(path, channels):
    rng = np.random.default_rng(1000 + channels)
    x8 = rng.integers(-128, 128, size=(2, 3, channels), dtype=np.int8)
    packed = K.pack_bits(x8, path=path)
    assert packed.shape == (2, 3, bits.words_for(channels))
    assert packed.tobytes() == bits.pack_bits(x8).tobytes()
    signs = np.where(x8 < 0, -1, 1)
    assert np.array_equal(K.unpack_bits(packed, channels, np.int8, path=path), signs.astype(np.int8))
    as_float = K.unpack_bits(packed, channels, np.float32, path=path)
    assert as_float.dtype == np.float32 and np.array_equal(as_float, signs.astype(np.float32))
    assert np.array_equal(as_float, bits.unpack_bits(packed, channels))


def test_special_values_pack_per_convention():
    # sign(0) = +1: 0.0, -0.0 and NaN pack to bit 0; -inf and the smallest negative to 1.
    x = SPECIALS[None, :]
    for path in PATHS:
        assert K.pack_bits(x, path=path)[0, 0] == 0b00100000 | 0b10000000


def test_padding_bits_are_zero():
    x = -np.ones((4, 33), dtype=np.float32)  # every channel -1: padding bits must stay 0
    for path in PATHS:
        assert np.array_equal(K.pack_bits(x, path=path)[:, 1], np.ones(4, np.uint32))


def test_bad_input_is_a_clear_error():
    with pytest.raises(TypeError, match="float32 or int8"):
        K.pack_bits(np.zeros((2, 3), dtype=np.float64))
    with pytest.raises(TypeError, match="numpy array"):
        K.pack_bits([1.0, -1.0])
    with pytest.raises(ValueError, match="channel"):
        K.pack_bits(np.zeros((2, 0), dtype=np.float32))
    with pytest.raises(ValueError, match="words"):
        K.unpack_bits(np.zeros((2, 2), dtype=np.uint32), 65)
    with pytest.raises(TypeError, match="uint32"):
        K.unpack_bits(np.zeros((2, 2), dtype=np.int32), 40)
    with pytest.raises(TypeError, match="float32 or int8"):
        K.unpack_bits(np.zeros((2, 2), dtype=np.uint32), 40, np.float64)
    with pytest.raises(ValueError, match="unknown kernel path 'sse9'; known paths: reference"):
        K.pack_bits(np.zeros((1, 3), dtype=np.float32), path="sse9")
