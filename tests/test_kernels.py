"""Binary conv / dense / max-pool kernels: every kernel path and every manifest variant
against the reference, the reference against a float conv on +-1 data (torch, float64),
the fused output transforms against their closed forms, and dispatch/bad-input errors."""

import itertools
import os
import subprocess
import sys

import numpy as np
import pytest

from bnnkit import bits
from bnnkit import kernels as K

torch = pytest.importorskip("torch")
F = torch.nn.functional

PATHS = K.supported_paths()
FAST_PATHS = [p for p in PATHS if p != "reference"]


def _signs(rng, shape):
    return np.where(rng.standard_normal(shape) < 0, -1.0, 1.0).astype(np.float32)


def _pads(size, k, s, d, padding):
    """(lo, hi) padding: 'valid', or 'same' by the TensorFlow rule (torch's for stride 1)."""
    if padding == "valid":
        return 0, 0
    out = -(-size // s)
    total = max((out - 1) * s + d * (k - 1) + 1 - size, 0)
    return total // 2, total - total // 2


def oracle_conv(x, w, *, stride, dilation, groups, padding, pad_value):
    """Integer dot products from torch conv2d (float64) on +-1 data padded with pad_value."""
    n, h, wd, c = x.shape
    ph, pw = _pads(h, w.shape[1], stride, dilation, padding), _pads(wd, w.shape[2], stride, dilation, padding)
    xt = torch.from_numpy(x).double().permute(0, 3, 1, 2)
    xt = F.pad(xt, (pw[0], pw[1], ph[0], ph[1]), value=float(pad_value))
    wt = torch.from_numpy(w).double().permute(0, 3, 1, 2)
    y = F.conv2d(xt, wt, stride=stride, dilation=dilation, groups=groups)
    return y.permute(0, 2, 3, 1).numpy().astype(np.int64)


def transforms(rng, cout):
    """Multipliers of every sign (incl. 0) and biases, some on exact ties."""
    m = rng.choice([0.0, -0.5, 0.25, 1.0, 2.0, -3.0], size=cout).astype(np.float32)
    b = (rng.integers(-6, 7, size=cout) * rng.choice([1.0, 0.5, 0.3], size=cout)).astype(np.float32)
    return m, b


def expected_float(d, m, b, lo, hi):
    return np.clip(d.astype(np.float32) * m + b, lo, hi)


def expected_bits(d, m, b, lo, hi):
    """Rule (3) of output_transform.h, exactly in float64."""
    y = d * m.astype(np.float64) + b.astype(np.float64)
    negative = (hi < 0) | ((lo < 0) & (y < 0))
    return bits.pack_bits(np.where(negative, -1.0, 1.0))


def check_conv(rng, *, cin, cout, k, stride=1, dilation=1, groups=1, padding="same", pad_value=1,
               hw=(5, 6), batch=2, clamp=(-2.0, 6.0)):
    x = _signs(rng, (batch, *hw, cin))
    w = _signs(rng, (cout, k, k, cin // groups))
    px, pw = bits.pack_bits(x), bits.pack_bits(w)
    want = oracle_conv(x, w, stride=stride, dilation=dilation, groups=groups, padding=padding,
                       pad_value=pad_value)
    m, b = transforms(rng, cout)
    args = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, pad_value=pad_value,
                multiplier=m, bias=b, clamp=clamp)
    for path in PATHS:
        for threads in (1, 2):
            d = K.bconv2d(px, pw, cin, output="int32", path=path, num_threads=threads, **args)
            assert np.array_equal(d, want), (path, threads)
            y = K.bconv2d(px, pw, cin, output="float", path=path, num_threads=threads, **args)
            np.testing.assert_allclose(y, expected_float(want, m, b, *clamp), rtol=1e-6, atol=1e-5)
            got_bits = K.bconv2d(px, pw, cin, output="bits", path=path, num_threads=threads, **args)
            assert np.array_equal(got_bits, expected_bits(want, m, b, *clamp)), (path, threads)


@pytest.mark.parametrize("cin", [1, 31, 32, 33, 63, 64, 65, 128])
@pytest.mark.parametrize("cout", [1, 3, 8, 17, 64])
def test_conv_channel_edges(cin, cout):
    check_conv(np.random.default_rng(cin * 100 + cout), cin=cin, cout=cout, k=3,
               pad_value=(cin + cout) % 2, hw=(4, 5))


GEOMETRY = list(itertools.product([1, 3, 5], [1, 2], [1, 2], [0, 1], ["same", "valid"]))


@pytest.mark.parametrize("k,stride,dilation,pad_value,padding", GEOMETRY)
def test_conv_geometry(k, stride, dilation, pad_value, padding):
    hw = (7, 8) if dilation * (k - 1) + 1 <= 7 else (10, 11)  # 'valid' needs span <= size
    rng = np.random.default_rng(k * 1000 + stride * 100 + dilation * 10 + pad_value)
    check_conv(rng, cin=33, cout=17, k=k, stride=stride, dilation=dilation, pad_value=pad_value,
               padding=padding, hw=hw, batch=1)


@pytest.mark.parametrize("k,stride,dilation,pad_value,padding", GEOMETRY)
def test_conv_geometry_in_place(k, stride, dilation, pad_value, padding):
    # whole 64-bit words per pixel: the o8 GEMM reads interior pixels in place (one segment
    # per kernel row, zero rows for the top/bottom padding) and im2cols the borders; 40
    # output channels leave a partial 8-channel block and a partial 32-channel tile; rows of
    # 60 pixels keep >= 24 interior columns (kMinInPlaceRun) at stride 2
    hw = (6, 60) if dilation * (k - 1) + 1 <= 6 else (10, 60)
    rng = np.random.default_rng(k * 1000 + stride * 100 + dilation * 10 + pad_value + 7)
    check_conv(rng, cin=128, cout=40, k=k, stride=stride, dilation=dilation, pad_value=pad_value,
               padding=padding, hw=hw, batch=2)


@pytest.mark.parametrize("cin,cout,k,hw", [(64, 64, 3, (2, 3)), (64, 8, 5, (3, 3)), (192, 72, 3, (19, 33)),
                                           (64, 64, 3, (3, 70)), (64, 64, 1, (9, 70)), (256, 9, 1, (1, 1))])
def test_conv_in_place_edges(cin, cout, k, hw):
    # images narrower than the kernel (no interior column; im2col), rows just above the
    # in-place minimum (33 columns), 3x3 runs longer than a pixel chunk (70 columns), the flat
    # 1x1 case across rows and images, and 2 threads on many chunks
    for pad_value in (0, 1):
        check_conv(np.random.default_rng(cin + cout + k), cin=cin, cout=cout, k=k, hw=hw,
                   pad_value=pad_value, batch=3)


@pytest.mark.parametrize("acc_clamp", [(0, None), (-4, 6), (None, -2), (3, 3), (-1000, 1000)])
@pytest.mark.parametrize("cin,pad_value", [(33, 0), (64, 1), (128, 0)])
def test_accumulator_clamp_is_fused(acc_clamp, cin, pad_value):
    # y = clamp(clamp(d, amin, amax) * m + b): a ReLU before batch-norm (QuickNet) is amin = 0;
    # bits fold the clamp into the thresholds (ends become always/never), floats clamp d
    rng = np.random.default_rng(cin + pad_value)
    x, w = _signs(rng, (2, 6, 7, cin)), _signs(rng, (24, 3, 3, cin))
    px, pw = bits.pack_bits(x), bits.pack_bits(w)
    d = oracle_conv(x, w, stride=1, dilation=1, groups=1, padding="same", pad_value=pad_value)
    lo_acc = -(2**31) if acc_clamp[0] is None else acc_clamp[0]
    hi_acc = 2**31 - 1 if acc_clamp[1] is None else acc_clamp[1]
    a = np.clip(d, lo_acc, hi_acc)
    m, b = transforms(rng, 24)
    b = b + rng.choice([0.0, -3.0, 2.0], size=24).astype(np.float32) * np.abs(m)  # ties at small d
    for clamp in [(None, None), (-1.0, 1.5)]:
        lo, hi = (-np.inf if clamp[0] is None else clamp[0]), (np.inf if clamp[1] is None else clamp[1])
        args = dict(padding="same", pad_value=pad_value, multiplier=m, bias=b, clamp=clamp,
                    acc_clamp=acc_clamp)
        for path in PATHS:
            y = K.bconv2d(px, pw, cin, output="float", path=path, num_threads=2, **args)
            np.testing.assert_allclose(y, expected_float(a, m, b, lo, hi), rtol=1e-6, atol=1e-5)
            got = K.bconv2d(px, pw, cin, output="bits", path=path, **args)
            assert np.array_equal(got, expected_bits(a, m, b, lo, hi)), (path, clamp)
            raw = K.bconv2d(px, pw, cin, output="int32", path=path, **args)
            assert np.array_equal(raw, d), path  # int32 output is the unclamped dot product


@pytest.mark.parametrize("cout", [8, 40, 64, 100])
@pytest.mark.parametrize("pad_value", [0, 1])
@pytest.mark.parametrize("acc_clamp,clamp", [((None, None), (None, None)), ((0, None), (-1.0, 1.5)),
                                             ((-7, 5), (None, 2.0))])
def test_fused_epilogue_gives_the_epilogue_kernels_bits(cout, pad_value, acc_clamp, clamp):
    # Rows of 60 pixels are read in place and the AVX-512 GEMM applies the output transform
    # itself (O8Fused), with the zero-padding correction of the top/bottom rows; floats must
    # be the same bits as every other path's epilogue (all round d * m + b once), bits exact.
    rng = np.random.default_rng(cout * 10 + pad_value)
    x, w = _signs(rng, (2, 5, 60, 64)), _signs(rng, (cout, 3, 3, 64))
    px, pw = bits.pack_bits(x), bits.pack_bits(w)
    d = oracle_conv(x, w, stride=1, dilation=1, groups=1, padding="same", pad_value=pad_value)
    a = np.clip(d, -(2**31) if acc_clamp[0] is None else acc_clamp[0],
                2**31 - 1 if acc_clamp[1] is None else acc_clamp[1])
    m, b = transforms(rng, cout)
    lo, hi = (-np.inf if clamp[0] is None else clamp[0]), (np.inf if clamp[1] is None else clamp[1])
    args = dict(padding="same", pad_value=pad_value, multiplier=m, bias=b, clamp=clamp,
                acc_clamp=acc_clamp)
    floats = {path: K.bconv2d(px, pw, 64, output="float", path=path, num_threads=2, **args)
              for path in PATHS}
    for path, y in floats.items():
        assert np.array_equal(y, floats["reference"]), path
        got = K.bconv2d(px, pw, 64, output="bits", path=path, num_threads=2, **args)
        assert np.array_equal(got, expected_bits(a, m, b, lo, hi)), path
    np.testing.assert_allclose(floats["reference"], expected_float(a, m, b, lo, hi), rtol=1e-6, atol=1e-5)


def test_accumulator_clamp_rejects_an_empty_range():
    pw = bits.pack_bits(np.ones((4, 1, 1, 8), np.float32))
    with pytest.raises(ValueError, match="acc_clamp needs lo <= hi"):
        K.BConv2d(pw, (1, 2, 2), 8, acc_clamp=(3, 2))


@pytest.mark.parametrize("cin,groups", [(64, 2), (66, 2), (96, 3), (40, 4)])
@pytest.mark.parametrize("pad_value", [0, 1])
def test_conv_groups(cin, groups, pad_value):
    # word-aligned groups take the copy path, unaligned ones the bit-gather path
    check_conv(np.random.default_rng(cin + groups), cin=cin, cout=groups * 5, k=3, groups=groups,
               pad_value=pad_value)


def test_long_reduction_flushes_byte_counters():
    # 3x3 x 1024 channels = 288 64-bit words = 72 AVX2 chunks > 31 per byte counter
    check_conv(np.random.default_rng(7), cin=1024, cout=9, k=3, hw=(3, 3), batch=1)


@pytest.mark.parametrize("variant", [v for v in K.manifest() if v["op"] in ("bgemm", "bgemm_o8")], ids=lambda v: v["name"])
def test_every_bgemm_variant(variant):
    if variant["path"] not in PATHS:
        pytest.skip(K.unsupported_reason(variant["path"]))
    rng = np.random.default_rng(3)
    for cin, cout in [(33, 17), (128, 64), (513, 5)]:
        x, w = _signs(rng, (1, 5, 7, cin)), _signs(rng, (cout, 3, 3, cin))
        px, pw = bits.pack_bits(x), bits.pack_bits(w)
        want = oracle_conv(x, w, stride=1, dilation=1, groups=1, padding="same", pad_value=1)
        got = K.bconv2d(px, pw, cin, padding="same", output="int32", path=variant["path"],
                        variant=variant["name"])
        assert np.array_equal(got, want)


def test_bit_output_thresholds_on_ties_and_constants():
    # 1x1 conv over 8 channels: d takes every even value in [-8, 8]; bias -d0 puts y = 0
    # exactly at d = d0 (sign(0) = +1 -> bit 0); multiplier 0 gives a constant sign.
    rng = np.random.default_rng(11)
    x = _signs(rng, (1, 16, 16, 8))
    w = _signs(rng, (12, 1, 1, 8))
    m = np.array([1, 1, -1, -1, 0, 0, 0, 0.5, -0.25, 3, 1e-7, -1e-7], np.float32)
    b = np.array([-2, 4, 2, -4, 0, -1e-30, 1, -1, 0.5, 0, 1e-7, -1e-7], np.float32)
    d = oracle_conv(x, w, stride=1, dilation=1, groups=1, padding="valid", pad_value=1)
    for clamp in [(None, None), (0.0, None), (None, -1.0), (-1.0, 1.0)]:
        lo = -np.inf if clamp[0] is None else clamp[0]
        hi = np.inf if clamp[1] is None else clamp[1]
        want = expected_bits(d, m, b, lo, hi)
        for path in PATHS:
            got = K.bconv2d(bits.pack_bits(x), bits.pack_bits(w), 8, multiplier=m, bias=b, clamp=clamp,
                            output="bits", path=path)
            assert np.array_equal(got, want), (path, clamp)


def test_dense_matches_matmul():
    rng = np.random.default_rng(5)
    x, w = _signs(rng, (3, 200)), _signs(rng, (37, 200))
    for path in PATHS:
        y = K.bdense(bits.pack_bits(x), bits.pack_bits(w), 200, output="int32", path=path)
        assert np.array_equal(y, (x @ w.T).astype(np.int64))


@pytest.mark.parametrize("channels", [1, 33, 64, 100])
def test_maxpool_is_max_of_signs(channels):
    rng = np.random.default_rng(channels)
    x = _signs(rng, (2, 5, 6, channels))
    xt = torch.from_numpy(x).permute(0, 3, 1, 2)
    want = F.max_pool2d(xt, 3, stride=2, padding=1).permute(0, 2, 3, 1).numpy()
    for path in PATHS:
        got = K.bmaxpool2d(bits.pack_bits(x), channels, 3, stride=2, padding=1, path=path)
        assert np.array_equal(got, bits.pack_bits(want))


def test_manifest_names_and_paths():
    entries = K.manifest()
    assert len({e["name"] for e in entries}) == len(entries)
    for e in entries:  # XNNPACK-style: bnn_<types>_<op>_ukernel[_<tile>]__<isa>[_<method>]
        assert e["name"].startswith("bnn_") and e["name"].split("__")[1].startswith(e["path"])
    assert {"reference", "portable"} <= set(PATHS)
    assert K.active_path() in PATHS and K.best_path() in PATHS


def test_set_active_path_and_unsupported_paths():
    with K.use_path("portable"):
        assert K.active_path() == "portable"
    for path in K.available_paths():
        if path not in PATHS:
            with pytest.raises(RuntimeError, match="lacks|not compiled"):
                K.set_active_path(path)
    with pytest.raises(ValueError, match="known paths"):
        K.set_active_path("fastest")


def _run_with_env(value: str) -> subprocess.CompletedProcess:
    code = "from bnnkit import kernels as K\ntry:\n print(K.active_path())\nexcept RuntimeError as e:\n print('ERR', e)"
    env = dict(os.environ, BNNKIT_KERNELS=value)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)


def test_env_override():
    assert _run_with_env("portable").stdout.strip() == "portable"
    out = _run_with_env("warp-drive").stdout
    assert out.startswith("ERR BNNKIT_KERNELS=warp-drive: unknown kernel path") and "reference" in out
    if "avx512" not in PATHS:
        assert _run_with_env("avx512").stdout.startswith("ERR BNNKIT_KERNELS=avx512:")


def test_bad_conv_arguments():
    x = np.zeros((1, 4, 4, 1), np.uint32)
    w = np.zeros((2, 3, 3, 1), np.uint32)
    with pytest.raises(ValueError, match="divisible by groups"):
        K.bconv2d(x, w, 3, groups=2)
    with pytest.raises(ValueError, match="pad_value"):
        K.bconv2d(x, w, 8, pad_value=-1)
    with pytest.raises(ValueError, match="out_channels"):
        K.bconv2d(x, w, 8, multiplier=[1.0])
    with pytest.raises(ValueError, match="weights hold"):
        K.bconv2d(x, np.zeros((2, 3, 3, 2), np.uint32), 8)
    with pytest.raises(ValueError, match="output must be"):
        K.bconv2d(x, w, 8, output="int8")
    with pytest.raises(TypeError, match="uint32"):
        K.bconv2d(x.astype(np.int32), w, 8)
    with pytest.raises(ValueError, match="kernel larger"):
        K.bconv2d(np.zeros((1, 2, 2, 1), np.uint32), w, 8)
    with pytest.raises(ValueError, match="no bgemm variant 'nope'"):
        K.bconv2d(x, w, 8, path="portable", variant="nope")
