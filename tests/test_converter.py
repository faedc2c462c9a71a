"""bnnkit.convert end to end, driven by the model registry (timm-style).

For every registered model at 32x32 and 10 classes: train 2 SGD steps on random data in
train mode (then give every batch norm random running statistics, so no BN is the
identity), switch to eval, convert, and check (a) the file reads back and validates with
the pure-Python reader, (b) the native runtime gives PyTorch's outputs within 1e-4
(relative to the largest logit) and the same top-1 on every input, for every kernel path
this CPU supports and 1 and 2 threads. Binary parts must be exact for this to hold: a
single flipped sign changes logits far beyond the tolerance.
"""

from __future__ import annotations

import fnmatch
import functools

import numpy as np
import pytest
import torch

import bnnkit
import bnnkit.format as F
from bnnkit import models
from bnnkit.converter import ConversionError, convert, convert_graph, size_report

# Families the .bnn format cannot express yet; each must fail with a ConversionError that
# names the first op it cannot take (never a silent fallback). A model leaves this table
# when the ops it needs are added; its convert-and-match tests then run like the others.
# (BoolNet and PokeBNN left it with bxnor/bor, pad2d, gather_channels, group_mean and
# dynamic_fake_quant.)
NOT_YET_CONVERTIBLE: dict = {}


def _unsupported_op(name: str) -> str | None:
    return next((op for pat, op in NOT_YET_CONVERTIBLE.items() if fnmatch.fnmatchcase(name, pat)), None)


ALL_MODELS = models.list_models()
MODELS = [m for m in ALL_MODELS if _unsupported_op(m) is None]
UNCONVERTIBLE = [m for m in ALL_MODELS if _unsupported_op(m) is not None]
BATCH, SIZE, CLASSES, STEPS = 2, 32, 10, 2


def _kernel_paths() -> list:
    from bnnkit import kernels

    return kernels.supported_paths()


def _randomize_bn(model: torch.nn.Module, gen: torch.Generator) -> None:
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=gen) * 0.2 + m.running_mean)
            m.running_var.copy_(m.running_var * torch.empty(c).uniform_(0.5, 1.5, generator=gen))
            if isinstance(m.weight, torch.nn.Parameter) and m.weight.abs().sum() > 0:
                m.weight.data.mul_(torch.empty(c).uniform_(0.5, 1.5, generator=gen))


def _trained(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    model = models.create(name, num_classes=CLASSES, input_size=SIZE)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    model.train()
    for _ in range(STEPS):
        x = torch.randn(4, 3, SIZE, SIZE, generator=gen)
        y = torch.randint(0, CLASSES, (4,), generator=gen)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    with torch.no_grad():
        _randomize_bn(model, gen)
    return model.eval()


def _converted(name: str):
    """(model, inputs, PyTorch eval outputs, file bytes) of a trained model; a conversion
    error is cached too and raised again for every test of that model."""
    result = _convert_once(name)
    if isinstance(result, Exception):
        raise result
    return result


@functools.lru_cache(maxsize=None)
def _convert_once(name: str):
    try:
        return _convert(name)
    except ConversionError as e:
        return e


# Two kinds of activation quantizer make "match PyTorch within 1e-4" ill-posed on some
# inputs, because their output jumps at a threshold and float noise (a different summation
# order in a conv, a pool or a folded batch norm, ~1e-7 relative, growing along a float
# residual stream) may put PyTorch and the runtime on different sides of it:
# - k-bit quantizers that take their range from the input (PokeBNN's 8- and 4-bit
#   dynamic-range quantizers) round x / s to an integer, and jump at k + 1/2;
# - binary sign quantizers jump at 0, and one flipped sign moves the logits by far more
#   than the tolerance. PyTorch picks its conv kernels by CPU, so a near-zero input that
#   keeps its sign on one machine may flip on another (CI saw it on quicknet_large).
# The runtime's quantizers are bit-exact given the same input (tests/test_runtime.py), so
# these are not tests of the conversion. The test input is therefore the draw, among
# DRAWS, that keeps the quantizer inputs farthest from their thresholds: rounding
# boundaries at least MIN_MARGIN steps away (a hard requirement), and the smallest
# non-zero sign input as large as possible relative to its sample's largest.
MIN_MARGIN, DRAWS = 1e-5, 12


def quantizer_margins(model: torch.nn.Module, x: torch.Tensor) -> tuple[float, float]:
    """(rounding, sign) margins of input x: the smallest distance, in quantization steps,
    of x / s to a rounding boundary over every input of a dynamic-range symmetric_quant /
    unsigned_quant activation quantizer; and the smallest |t| / max|t| (per sample, exact
    zeros left out: they are zero on both sides) over every input of a binary activation
    quantizer."""
    from bnnkit.quantizers import SymmetricQuantizer, UnsignedQuantizer
    from bnnkit.quantizers.binary import (
        ApproxSign, ClippedSign, MagnitudeAwareSign, RSign, SteHeaviside, SteSign, SwishSign)
    from bnnkit.quantizers.multibit import symmetric_scale

    signs = (ApproxSign, ClippedSign, MagnitudeAwareSign, RSign, SteHeaviside, SteSign, SwishSign)
    rounding, sign = [float("inf")], [float("inf")]

    def hook(q, inputs, _):
        t = inputs[0]
        if isinstance(t, torch.nn.Parameter):
            return  # a weight: folded to the same constant in the file
        if isinstance(q, signs):
            a = t.detach().double().abs().flatten(1)
            rel = (a / a.amax(1, keepdim=True).clamp_min(1e-300))[a > 0]
            if rel.numel():
                sign.append(float(rel.min()))
            return
        if isinstance(q, SymmetricQuantizer):
            s, top = symmetric_scale(t, q.bits, q.per_channel, None), 2 ** (q.bits - 1) - 1
        else:
            s, top = t.amax().clamp_min(0.0) / (2**q.bits - 1), 2**q.bits - 1
        u = (t.double() / torch.where(s > 0, s, torch.ones_like(s)).double()).abs()
        inside = u[u < top]
        if inside.numel():
            rounding.append(float((inside - inside.floor() - 0.5).abs().min()))

    watched = [m for m in model.modules()
               if isinstance(m, signs) or (isinstance(m, (SymmetricQuantizer, UnsignedQuantizer)) and m.bound is None)]
    handles = [m.register_forward_hook(hook) for m in watched]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return min(rounding), min(sign)


def _test_input(model: torch.nn.Module) -> torch.Tensor:
    gen = torch.Generator().manual_seed(2)
    best, best_sign = None, -1.0
    for _ in range(DRAWS):
        x = torch.randn(BATCH, 3, SIZE, SIZE, generator=gen)
        rounding, sign = quantizer_margins(model, x)
        if rounding >= MIN_MARGIN and sign > best_sign:
            best, best_sign = x, sign
    if best is None:
        raise AssertionError(f"no test input among {DRAWS} keeps the quantizer inputs {MIN_MARGIN} steps from a boundary")
    return best


def _convert(name: str):
    model = _trained(name)
    x = _test_input(model)
    with torch.no_grad():
        ref = model(x).numpy()
    return model, x, ref, convert(model, x, model_name=name)


@pytest.mark.parametrize("name", MODELS)
def test_converts_and_reads_back(name):
    model, _, _, data = _converted(name)
    mf = F.read(data)  # validates every offset, op contract and shape
    assert mf.metadata["model.name"] == name
    assert mf.tensors[mf.inputs[0]].shape == (BATCH, 3, SIZE, SIZE)
    assert mf.tensors[mf.outputs[0]].shape == (BATCH, CLASSES)
    assert any(n.op in ("bconv2d", "bdense") for n in mf.nodes)
    assert size_report(model, data)["ratio"] > 5  # binary weights packed 32x, float layers kept


def test_unconvertible_models_name_the_op():
    """Every model of NOT_YET_CONVERTIBLE (none at present) fails naming its first
    unsupported op; one test rather than a parametrization, so an empty table is no skip."""
    for name in UNCONVERTIBLE:
        with pytest.raises(ConversionError, match=_unsupported_op(name).replace(".", r"\.")):
            _converted(name)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("name", MODELS)
def test_runtime_matches_pytorch(name, threads):
    from bnnkit import kernels
    from bnnkit.runtime import Interpreter

    _, x, ref, data = _converted(name)
    scale = max(1.0, float(np.abs(ref).max()))
    for path in _kernel_paths():
        with kernels.use_path(path):
            out = Interpreter(data, num_threads=threads).run(x.numpy())
        out = out[0] if isinstance(out, (list, tuple)) else out
        np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4 * scale, err_msg=f"{name} {path} {threads}t")
        assert (out.argmax(1) == ref.argmax(1)).all(), f"{name}: top-1 differs on path {path}"


def test_quicknet_structure():
    """QuickNet: every BN is folded (binary: into the output transform after the ReLU's
    integer clamp acc_min = 0; float: into the convs), no batch_norm op remains."""
    mf = F.read(_converted("quicknet_small")[3])
    ops = [n.op for n in mf.nodes]
    assert "batch_norm" not in ops and ops.count("bconv2d") == 16
    assert all(n.attrs.get("acc_min") == 0 and n.attrs.get("pad_value", 1) == 1
               for n in mf.nodes if n.op == "bconv2d")


def test_bits_output_through_maxpool():
    """BinaryNet: bconv -> maxpool -> BN -> sign becomes bconv(bits out) -> bmaxpool2d."""
    mf = F.read(_converted("binarynet_cifar")[3])
    producer = {n.outputs[0]: n for n in mf.nodes}
    pools = [n for n in mf.nodes if n.op == "bmaxpool2d"]
    assert pools and all(producer[p.inputs[0]].op == "bconv2d" for p in pools)
    assert all(mf.tensors[p.inputs[0]].dtype == "bits" for p in pools)


# ---------------------------------------------------------------------- small models


class _Binary(torch.nn.Module):
    def __init__(self, kernel="ste_sign", pad_value=1.0, act=None):
        super().__init__()
        self.conv = bnnkit.nn.QuantConv2d(8, 16, 3, padding=1, bias=False, input_quantizer="ste_sign",
                                          kernel_quantizer=kernel, pad_value=pad_value)
        self.bn = torch.nn.BatchNorm2d(16)
        self.act = act or torch.nn.Identity()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


@pytest.mark.parametrize("kernel", ["ste_sign", "magnitude_aware_sign"])
@pytest.mark.parametrize("pad_value", [1.0, 0.0])
def test_single_binary_conv(kernel, pad_value):
    torch.manual_seed(0)
    model = _Binary(kernel, pad_value, torch.nn.Hardtanh()).eval()
    _randomize_bn(model, torch.Generator().manual_seed(0))
    x = torch.randn(2, 8, 7, 7)
    g = convert_graph(model, x)
    assert g.op_counts() == {"quantize": 1, "bconv2d": 1}
    conv = g.ops[1]
    assert conv.attrs["pad_value"] == int(pad_value) and conv.attrs["out_max"] == 1.0
    mf = F.read(convert(model, x))
    w = mf.tensors[mf.nodes[1].inputs[1]]
    assert w.dtype == "bits" and w.data.nbytes == 16 * 3 * 3 * 4  # one 32-bit word per row
    np.testing.assert_array_equal(w.numpy(), np.where(model.conv.weight.detach().numpy() < 0, -1.0, 1.0))


def test_f16_float_weights():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.Flatten(), torch.nn.Linear(8 * 4 * 4, 5)).eval()
    x = torch.randn(1, 3, 6, 6)
    full, half = convert(model, x), convert(model, x, float_weights="f16")
    mf = F.read(half)
    assert [mf.tensors[n.inputs[1]].dtype for n in mf.nodes if n.op in ("conv2d", "dense")] == ["f16", "f16"]
    assert len(half) < len(full)


# ---------------------------------------------------------------------- errors


def test_training_mode_is_an_error():
    with pytest.raises(ConversionError, match="training mode.*model.eval"):
        convert(_Binary(), torch.randn(1, 8, 4, 4))


class _Spectral(torch.nn.Module):
    def forward(self, x):
        return torch.fft.fft2(x).real


class _FFT(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.block = torch.nn.Sequential(torch.nn.Conv2d(3, 3, 1), _Spectral())

    def forward(self, x):
        return self.block(x)


def test_unsupported_op_names_op_and_module(tmp_path):
    out = tmp_path / "m.bnn"
    with pytest.raises(ConversionError, match=r"aten\._fft|aten\.fft") as e:
        convert(_FFT().eval(), torch.randn(1, 3, 4, 4), output=out)
    assert "in module 'block.1' (_Spectral)" in str(e.value) and "supported ops" in str(e.value)
    assert not out.exists() and not list(tmp_path.iterdir())  # no partial file


def test_activation_magnitude_aware_sign_is_rejected():
    m = bnnkit.nn.QuantConv2d(4, 4, 1, input_quantizer="magnitude_aware_sign", kernel_quantizer="ste_sign").eval()
    with pytest.raises(ConversionError, match=r"magnitude_aware_sign.*module ''?\(?"):
        convert(m, torch.randn(1, 4, 3, 3))


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"float_weights": "f64"}, ValueError, "float_weights"),
    ({"output": 123}, TypeError, "output"),
    ({"optimize": "yes"}, TypeError, "optimize"),
    ({"model_name": 5}, TypeError, "model_name"),
])
def test_bad_options(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        convert(torch.nn.Linear(2, 2).eval(), torch.randn(1, 2), **kwargs)


def test_output_written_atomically(tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(4, 3)).eval()
    path = convert(model, torch.randn(2, 4), output=tmp_path / "lin.bnn")
    assert path == tmp_path / "lin.bnn" and F.read(path.read_bytes()).nodes[0].op == "dense"
    with pytest.raises(ValueError, match="directory"):
        convert(model, torch.randn(2, 4), output=tmp_path)


def test_size_report():
    model = _Binary().eval()
    data = convert(model, torch.randn(1, 8, 4, 4))
    rep = size_report(model, data)
    assert rep["file_bytes"] == len(data)
    assert rep["fp32_bytes"] == 4 * (16 * 8 * 9 + 4 * 16)  # weight + BN (gamma, beta, mean, var)
