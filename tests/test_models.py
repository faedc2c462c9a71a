"""Model-zoo tests, driven by the registry: every model in ``list_models()`` gets the
generic tests (forward in train and eval mode, backward, ``torch.export``, input-size
errors); the golden numbers below pin the architectures to their references.

Big models are built on the ``meta`` device (no memory, no init cost) for parameter and
MAC counts; meta tensors carry shapes through the quantizer ops' fake kernels, so a MAC
count at 224x224 costs no arithmetic.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bnnkit import models
from bnnkit.models import _blocks
from bnnkit.nn import QuantizedLayerMixin
from bnnkit.quantizers import Quantizer
from mac_hooks import count_macs

MODELS = models.list_models()
SMALL = {"num_classes": 10, "input_size": 32}
BATCH = 4


def build(name: str, device: str | None = None, **kwargs) -> nn.Module:
    """``create(name, **kwargs)``, on ``device`` (e.g. "meta") if given."""
    if device is None:
        torch.manual_seed(0)
        return models.create(name, **kwargs)
    with torch.device(device):
        return models.create(name, **kwargs)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny shapes on a shared 2-core machine: one intra-op thread avoids spin-wait stalls."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module", params=MODELS)
def small(request) -> tuple[str, nn.Module]:
    """One model per registered name at 32x32 and 10 classes (shared by the tests)."""
    return request.param, build(request.param, **SMALL)


def _images(size: int = 32, batch: int = BATCH, device=None) -> torch.Tensor:
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(1)).to(
        device or "cpu"
    )


# ----------------------------------------------------------------------------- generic


def test_forward_train_and_eval(small):
    name, model = small
    x = _images()
    model.train()
    y_train = model(x)
    model.eval()
    with torch.no_grad():
        y_eval, y_again = model(x), model(x)
    assert y_train.shape == y_eval.shape == (BATCH, 10), name
    assert torch.isfinite(y_train).all() and torch.isfinite(y_eval).all(), name
    assert torch.equal(y_eval, y_again), f"{name}: eval mode is not deterministic"


def test_backward_reaches_every_trainable_parameter(small):
    name, model = small
    model.train()
    model.zero_grad(set_to_none=True)
    y = model(_images())
    weights = torch.randn(y.shape, generator=torch.Generator().manual_seed(2))
    (y * weights).sum().backward()  # y.sum() would be constant through a final BN
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert trainable, name
    no_grad = [n for n, p in trainable if p.grad is None]
    assert not no_grad, f"{name}: no gradient reaches {no_grad}"
    assert all(torch.isfinite(p.grad).all() for _, p in trainable), name
    assert sum(p.grad.abs().sum().item() for _, p in trainable) > 0, name
    frozen = [p for p in model.parameters() if not p.requires_grad]
    assert all(p.grad is None for p in frozen), name


def _quantizer_calls(model: nn.Module, x: torch.Tensor) -> dict[str, int]:
    """How many times each quantizer op runs in one eager forward (module hooks)."""
    calls: dict[str, int] = {}

    def hook(module, args, out):
        key = "bnnkit." + module.op_name.split("::")[1] + ".default"
        calls[key] = calls.get(key, 0) + 1

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, Quantizer)]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return calls


def test_export_keeps_quantizers_as_named_ops(small):
    name, model = small
    model.eval()
    x = _images(batch=2)
    expected = _quantizer_calls(model, x)
    assert expected, f"{name}: no quantizer ran"
    program = torch.export.export(model, (x,))
    found: dict[str, int] = {}
    for node in program.graph.nodes:
        if node.op == "call_function" and str(node.target).startswith("bnnkit."):
            found[str(node.target)] = found.get(str(node.target), 0) + 1
    assert found == expected, name
    with torch.no_grad():
        torch.testing.assert_close(program.module()(x), model(x))


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("size", [1, 5, 16, 33])
def test_input_size_is_accepted_or_rejected_naming_a_layer(name, size):
    """Either the model is built and runs at ``size``, or create() names the layer."""
    try:
        model = build(name, "meta", num_classes=10, input_size=size)
    except ValueError as err:
        assert "input too small: layer '" in str(err), str(err)
        return
    with torch.no_grad():
        out = model.eval()(torch.zeros(2, 3, size, size, device="meta"))
    assert out.shape == (2, 10)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("size", [0, -3])
def test_bad_input_size_is_rejected(name, size):
    with pytest.raises((ValueError, TypeError)):
        build(name, "meta", input_size=size)


def test_unknown_model_lists_close_matches():
    with pytest.raises(KeyError, match="quicknet_small"):
        models.create("quicknet_smal")
    with pytest.raises(KeyError, match="birealnet18"):
        models.create("birealnet")


def test_list_models_pattern():
    assert models.list_models("quicknet*") == ["quicknet", "quicknet_large", "quicknet_small", "quicknet_tiny"]
    assert models.list_models("no_such_model*") == []


# ----------------------------------------------------------------------------- golden

# Larq's parameter count (``lq.models.summary`` "Total params": batch norm as 2 per
# channel, frozen weights included) at 224x224 and 1000 classes unless stated.
LARQ_PARAMS = {
    # REFERENCES.md / issue 3 (Larq Zoo QuickNet docs).
    "quicknet_small": 12_655_688,
    "quicknet": 13_234_088,
    "quicknet_large": 23_342_248,
    # Larq Zoo tests/snapshots/model_summaries/*.txt, "Total" row (1-bit + 32-bit).
    "birealnet18": 10_985_472 + 704_040,  # BiRealNet_512.txt
    "binary_resnet_e18": 10_985_472 + 704_168,  # BinaryResNetE18_512.txt
    "xnornet": 58_236_928 + 4_150_176,  # XNORNet_4096.txt
    "binary_alexnet": 61_827_776 + 20_944,  # BinaryAlexNet_256.txt
}

# Keras' count_params() (every weight incl. BN beta/gamma), as Larq Zoo's docstrings quote.
KERAS_PARAMS = {
    "binary_resnet_e18": 11_699_368,
    "xnornet": 62_396_768,
    "binary_alexnet": 61_859_192,
}


@pytest.mark.parametrize("name", sorted(LARQ_PARAMS))
def test_larq_parameter_count(name):
    assert _blocks.larq_parameter_count(build(name, "meta")) == LARQ_PARAMS[name]


@pytest.mark.parametrize("name", sorted(KERAS_PARAMS))
def test_keras_parameter_count(name):
    assert _blocks.keras_parameter_count(build(name, "meta")) == KERAS_PARAMS[name]


def test_binarynet_cifar_parameter_count():
    # Larq's "BinaryNet on CIFAR-10" tutorial summary at 32x32, 10 classes:
    # 10,352,000 binary + 7,700 float parameters.
    model = build("binarynet_cifar", "meta", **SMALL)
    assert _blocks.larq_parameter_count(model) == 10_352_000 + 7_700


def _reactnet_reference_params(num_classes: int = 1000) -> int:
    """Parameters of liuzechun/ReActNet ``reactnet()`` (PyTorch count), from its code.

    Stem conv 3->32 + BN; per block C->D: move11 (RSign's shift), binary 3x3 C*C*9, bn1,
    move12/prelu1/move13, move21, 1x1 convs C*D in total, BN(s) of D channels,
    move22/prelu2/move23; then fc 1024 -> classes with bias.
    """
    widths = (32, 64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024)
    total = 3 * 32 * 9 + 2 * 32
    for c, d in zip(widths, widths[1:]):
        total += c * c * 9 + 2 * c + 4 * c + c  # 3x3 conv, bn1, move11/12/13 + prelu1, move21
        total += c * d + 2 * d + 3 * d  # 1x1 conv(s), bn2(s), move22/prelu2/move23
    return total + 1024 * num_classes + num_classes


def _boolnet_reference_params(num_classes: int = 1000) -> int:
    """Parameters of hpi-xnor/BoolNet ``boolnet18(max_slices=4, binary_downsample=True)``.

    Counted from its code, without the ``bn3`` of the 7 non-last blocks, which the
    reference creates but never uses. Stem: 7x7 conv, BN, GhostBNSign (2 BN, dw 3x3, BN).
    Block: conv1 out*in*9, conv2 out*out*9, bn1, bn2 (+ bn3 in the last block);
    first block of stages 2-4: binary 1x1 downsample over 4 slices x 2*in channels with
    bias, + BN. Head: PReLU(512), fc.
    """
    total = 3 * 64 * 49 + 2 * 64 + (2 * 64) * 2 + 64 * 9 + 2 * 64
    planes = 64
    for width in (64, 128, 256, 512):
        for i in range(2):
            conv_in = 2 * planes if (i == 0 and width != planes) else width
            total += width * conv_in * 9 + width * width * 9 + 2 * 2 * width
            if i == 0 and width != planes:
                total += (planes * 4 * 2) * width + width + 2 * width
            planes = width
    return total + 2 * 512 + 512 + 512 * num_classes + num_classes


def _pokebnn_reference_params(width: float, num_classes: int = 1000) -> int:
    """Parameters of google/aqt ``pokebnn.py`` (Flax ``params``), counted from its code.

    PokeInit: 4x4 conv 3->32, BN, DPReLU, 3x3 conv 32->64 in 32 groups, BN, DPReLU. Each
    PokeConv C->D (kernel k): conv k*k*C*D, BN(D), DPReLU(D) (4 per channel), SE gate
    1x1 C->C//8 with bias and 1x1 C//8->D with bias, BN(D). Bottlenecks (3, 4, 6, 3) of
    1x1 C->w, 3x3 w->w, 1x1 w->4w with w = width * (64, 128, 256, 512); dense with bias.
    """

    def poke_conv(c: int, d: int, k: int) -> int:
        h = c // 8
        return k * k * c * d + 2 * d + 4 * d + (c * h + h) + (h * d + d) + 2 * d

    total = 4 * 4 * 3 * 32 + 2 * 32 + 4 * 32 + 3 * 3 * 1 * 64 + 2 * 64 + 4 * 64
    cin = 64
    for blocks, base in ((3, 64), (4, 128), (6, 256), (3, 512)):
        w = int(base * width)
        for _ in range(blocks):
            total += poke_conv(cin, w, 1) + poke_conv(w, w, 3) + poke_conv(w, 4 * w, 1)
            cin = 4 * w
    return total + cin * num_classes + num_classes


REFERENCE_CODE_PARAMS = {
    "reactnet_a": _reactnet_reference_params(),
    "boolnet": _boolnet_reference_params(),
    "pokebnn_0_5x": _pokebnn_reference_params(0.5),
    "pokebnn_0_75x": _pokebnn_reference_params(0.75),
    "pokebnn_1_0x": _pokebnn_reference_params(1.0),
}


@pytest.mark.parametrize("name", sorted(REFERENCE_CODE_PARAMS))
def test_pytorch_parameter_count_matches_reference_code(name):
    model = build(name, "meta")
    assert sum(p.numel() for p in model.parameters()) == REFERENCE_CODE_PARAMS[name]


def test_every_reference_model_has_a_golden_parameter_count():
    """Registry-driven: a new model must pin its parameter count to its reference."""
    pinned = set(LARQ_PARAMS) | set(REFERENCE_CODE_PARAMS) | {"binarynet_cifar"}
    not_a_reference = {"quicknet_tiny"}  # a bnnkit variant for small images
    assert sorted(pinned | not_a_reference) == MODELS




# (1-bit MACs, 32-bit MACs) at 224x224, 1000 classes, unless stated.
GOLDEN_MACS = {
    # REFERENCES.md (Larq Zoo QuickNet summaries).
    "quicknet_small": (1_156_055_040, 15_941_120),
    "quicknet": (1_849_688_064, 29_651_712),
    "quicknet_large": (3_699_376_128, 29_651_712),
    # Larq Zoo tests/snapshots/model_summaries/*.txt, "Total" row.
    "birealnet18": (1_676_279_808, 137_793_536),
    "binary_resnet_e18": (1_676_279_808, 137_793_536),
    "xnornet": (1_025_744_896, 113_379_328),
    "binary_alexnet": (768_512_000, 72_855_552),
}


@pytest.mark.parametrize("name", sorted(GOLDEN_MACS))
def test_macs_match_larq_summaries(name):
    macs = count_macs(build(name, "meta"), 224)
    assert (macs[1], macs[32]) == GOLDEN_MACS[name]


def test_binarynet_cifar_macs():
    # Larq's "BinaryNet on CIFAR-10" tutorial summary: 510,961,664 1-bit, 3,110,400 32-bit.
    macs = count_macs(build("binarynet_cifar", "meta", **SMALL), 32)
    assert (macs[1], macs[32]) == (510_961_664, 3_110_400)


def test_reactnet_a_binary_macs():
    # Issue 3 / ReActNet paper (4.82e9 BOPs): binary MACs at 224x224.
    assert count_macs(build("reactnet_a", "meta"), 224)[1] == 4_816_896_000


# ----------------------------------------------------------------------------- quantizers

QUICK = ("SteSign(clip_value=1.25)", "SteSign(clip_value=1.25)", 1.0, 1.25, "zeros")
LARQ_BCONV = ("SteSign(clip_value=1.0)", "SteSign(clip_value=1.0)", 0.0, 1.0, "zeros")
LARQ_FIRST = ("None", "SteSign(clip_value=1.0)", 0.0, 1.0, "zeros")
LARQ_DENSE = ("SteSign(clip_value=1.0)", "SteSign(clip_value=1.0)", None, 1.0, None)
BOOL = ("SteSign(clip_value=1.0)", "MagnitudeAwareSign(clip_value=1.0)", 1.0, None, "replicate")
POKE = ("ClippedSign(bound=3.0, half_scale=False)", "SteSign(clip_value=None)", 0.0, None, "zeros")

# Per model: {(input quantizer, kernel quantizer, pad value, weight clip, padding mode):
# number of binary-kernel layers}, and {(weight bits, input bits): number of the other
# conv/dense layers}. Facts: REFERENCES.md and each family's reference (module docstrings).
QUANTIZATION = {
    "quicknet_small": ({QUICK: 16}, {(32, 32): 10}),  # stem 3, transitions 3 x 2, head
    "quicknet": ({QUICK: 16}, {(32, 32): 10}),
    "quicknet_large": ({QUICK: 32}, {(32, 32): 10}),
    "quicknet_tiny": ({QUICK: 4}, {(32, 32): 6}),
    "birealnet18": (  # approx_sign input, magnitude-aware weights, zero padding, clip 1
        {("ApproxSign()", "MagnitudeAwareSign(clip_value=1.0)", 0.0, 1.0, "zeros"): 16},
        {(32, 32): 5},  # 7x7 stem, three 1x1 shortcut convs, dense
    ),
    "binary_resnet_e18": (
        {("SteSign(clip_value=1.25)", "SteSign(clip_value=1.25)", 0.0, 1.25, "zeros"): 16},
        {(32, 32): 5},
    ),
    "reactnet_a": (  # 13 blocks x (3x3 + 1x1), RSign inputs
        {("RSign(channels=C)", "MagnitudeAwareSign(clip_value=1.0)", 0.0, None, "zeros"): 26},
        {(32, 32): 2},  # stem, dense
    ),
    "boolnet": ({BOOL: 19}, {(32, 32): 3}),  # 16 block convs + 3 binary 1x1 downsamplings
    "pokebnn_0_5x": ({POKE: 48}, {(8, 8): 3, (4, 4): 96}),  # PokeInit 2 + head; gates 2/conv
    "pokebnn_0_75x": ({POKE: 48}, {(8, 8): 3, (4, 4): 96}),
    "pokebnn_1_0x": ({POKE: 48}, {(8, 8): 3, (4, 4): 96}),
    "binarynet_cifar": ({LARQ_FIRST: 1, LARQ_BCONV: 5, LARQ_DENSE: 3}, {}),
    "binary_alexnet": ({LARQ_FIRST: 1, LARQ_BCONV: 4, LARQ_DENSE: 3}, {}),
    "xnornet": (
        {("SteSign(clip_value=1.0)", "MagnitudeAwareSign(clip_value=1.0)", 0.0, 1.0, "zeros"): 6},
        {(32, 32): 2},  # stem, dense
    ),
}


def _binary_key(m: nn.Module) -> tuple:
    conv = isinstance(m, nn.Conv2d)
    quantizer = repr(m.input_quantizer)
    if isinstance(m.input_quantizer, Quantizer) and type(m.input_quantizer).__name__ == "RSign":
        quantizer = "RSign(channels=C)"
    return (quantizer, repr(m.kernel_quantizer), m.pad_value if conv else None, m.weight_clip,
            m.padding_mode if conv else None)  # fmt: skip


def quantization_of(model: nn.Module) -> tuple[dict, dict]:
    binary: dict = {}
    other: dict = {}
    for m in model.modules():
        if not isinstance(m, (nn.Conv2d, nn.Linear)):
            continue
        if isinstance(m, QuantizedLayerMixin) and m.kernel_precision == 1:
            key = _binary_key(m)
            binary[key] = binary.get(key, 0) + 1
        else:
            quantized = isinstance(m, QuantizedLayerMixin)
            key = (m.kernel_precision, m.input_precision) if quantized else (32, 32)
            other[key] = other.get(key, 0) + 1
    return binary, other


def test_every_registered_model_has_a_quantization_spec():
    assert sorted(QUANTIZATION) == MODELS


@pytest.mark.parametrize("name", MODELS)
def test_quantizers_pad_values_and_weight_clips(name):
    assert quantization_of(build(name, "meta", **SMALL)) == QUANTIZATION[name]


# ----------------------------------------------------------------------------- pieces


def test_blur_pool_kernel_is_frozen_binomial():
    pool = _blocks.BlurPool(3)
    expected = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 16
    assert not pool.weight.requires_grad
    assert torch.equal(pool.weight[:, 0], expected.expand(3, 3, 3))
    out = pool(torch.ones(1, 3, 7, 7))  # interior of a constant map stays constant
    assert out.shape == (1, 3, 4, 4) and torch.allclose(out[..., 1:3, 1:3], torch.ones(1, 3, 2, 2))


@pytest.mark.parametrize(
    "scale, center, params", [(True, True, 2), (False, True, 1), (False, False, 0)]
)
def test_batch_norm_keras_options_and_counts(scale, center, params):
    bn = _blocks.batch_norm(8, keras_momentum=0.9, eps=1e-5, scale=scale, center=center)
    assert bn.momentum == pytest.approx(0.1) and bn.eps == 1e-5
    assert sum(p.numel() for p in bn.parameters()) == params * 8
    assert _blocks.larq_parameter_count(bn) == 2 * 8  # Larq: moving mean + variance
    assert _blocks.keras_parameter_count(bn) == (params + 2) * 8
    x = torch.randn(4, 8, 3, 3)
    y = bn.train()(x)
    var = x.var((0, 2, 3), unbiased=False, keepdim=True)
    ref = (x - x.mean((0, 2, 3), keepdim=True)) / torch.sqrt(var + 1e-5)
    torch.testing.assert_close(y, ref)  # gamma = 1, beta = 0 at init in every mode


def test_quicknet_stem_bn_without_scale_and_center_counts_two_per_channel():
    model = build("quicknet", "meta")
    bn = model.stem[4]
    assert not bn.affine and bn.running_mean.numel() == 16
    assert _blocks.larq_parameter_count(bn) == 32


def test_same_padding_matches_tensorflow():
    assert _blocks.same_padding(224, 11, 4) == (3, 4)  # 56 outputs
    assert _blocks.same_padding(112, 3, 2) == (0, 1)
    assert _blocks.same_padding(55, 3, 2) == (1, 1)
    assert _blocks.same_padding(7, 3, 1) == (1, 1)


def _layout(seq: nn.Sequential) -> list[str]:
    return [type(m).__name__ for m in seq]


def test_quicknet_stem_transition_and_head_layout():
    """REFERENCES.md: stem 3x3/2 F/4 -> BN -> ReLU -> dw 3x3/2 -> BN (no scale/centre) ->
    1x1 F -> BN; transition ReLU -> max-pool 2 stride 1 -> blur-pool /2 -> 1x1 -> BN;
    head ReLU -> global pool -> dense with bias."""
    model = build("quicknet", "meta")
    stem = model.stem
    assert _layout(stem) == ["Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "BatchNorm2d",
                             "Conv2d", "BatchNorm2d"]  # fmt: skip
    assert (stem[0].out_channels, stem[0].stride, stem[3].groups, stem[3].stride) == (
        16, (2, 2), 16, (2, 2))  # fmt: skip
    assert stem[5].out_channels == 64 and not stem[4].affine
    transitions = [m for m in model.body if isinstance(m, nn.Sequential)]
    assert len(transitions) == 3
    for t in transitions:
        assert _layout(t) == ["ReLU", "MaxPool2d", "BlurPool", "Conv2d", "BatchNorm2d"]
        assert (t[1].kernel_size, t[1].stride, t[2].stride) == (2, 1, (2, 2))
        assert (t[4].eps, t[4].momentum) == (1e-5, pytest.approx(0.1))  # Keras 0.9
    assert _layout(model.head) == ["ReLU", "GlobalAvgPool", "Linear"]
    assert model.head[2].bias is not None


def test_quicknet_block_is_conv_relu_bn_then_identity_add():
    from bnnkit.models.quicknet import QuickNetBlock

    torch.manual_seed(0)
    block = QuickNetBlock(4).eval()
    with torch.no_grad():
        block.bn.weight.uniform_(0.5, 1.5)
        block.bn.bias.uniform_(-1, 1)
        block.bn.running_mean.uniform_(-1, 1)
    x = torch.randn(2, 4, 5, 5)
    w = torch.where(block.conv.weight >= 0, 1.0, -1.0)
    xp = torch.nn.functional.pad(torch.where(x >= 0, 1.0, -1.0), (1, 1, 1, 1), value=1.0)
    expected = x + block.bn(torch.relu(torch.nn.functional.conv2d(xp, w)))
    torch.testing.assert_close(block(x), expected)


def test_boolnet_logic_ops_and_layout():
    from bnnkit.models import boolnet

    a = torch.tensor([1.0, 1.0, -1.0, -1.0], requires_grad=True)
    b = torch.tensor([1.0, -1.0, 1.0, -1.0], requires_grad=True)
    assert boolnet.xnor(a, b).tolist() == [1, -1, -1, 1]
    y = boolnet.logical_or(a, b)
    assert y.tolist() == [1, 1, 1, -1]
    y.sum().backward()  # reference gradient: 1 unless both inputs are +1
    assert a.grad.tolist() == [0, 1, 1, 1] and b.grad.tolist() == [0, 1, 1, 1]
    assert boolnet.thermometer_offsets(4) == pytest.approx([-2 / 3, -1 / 3, 1 / 3, 2 / 3])
    s0 = torch.arange(4.0).view(1, 4, 1, 1)  # slice 0: channels 0..3
    s1 = 10 + s0
    woven = boolnet.interleave(torch.cat([s0, s0], 1), torch.cat([s1, s1], 1), 2)
    assert woven[0, :8, 0, 0].tolist() == [0, 10, 1, 11, 2, 12, 3, 13]
    assert boolnet.first_half(woven, 2)[0, :4, 0, 0].tolist() == [0, 10, 1, 11]
    assert boolnet.second_half(woven, 2)[0, :4, 0, 0].tolist() == [2, 12, 3, 13]


def test_boolnet_ghost_sign_is_a_thermometer_code():
    from bnnkit.models.boolnet import GhostSign

    x = torch.tensor([-0.9, -0.5, 0.0, 0.5, 0.9]).view(1, 5, 1, 1)
    out = GhostSign(4)(x).view(4, 5)  # slice-major: (slices, channels)
    # x + o >= 0  <=>  x >= -o, o = (-2/3, -1/3, 1/3, 2/3)
    assert out.tolist() == [
        [-1, -1, -1, -1, 1],
        [-1, -1, -1, 1, 1],
        [-1, -1, 1, 1, 1],
        [-1, 1, 1, 1, 1],
    ]


def test_reactnet_doubling_block_equals_two_convs_on_one_binarized_input():
    from bnnkit.models.reactnet import ReActBlock

    torch.manual_seed(0)
    block = ReActBlock(4, 8, stride=1).eval()
    x = torch.randn(2, 4, 5, 5)
    y = block.act1(block.bn1(block.conv3x3(x)) + x)
    conv = block.conv1x1
    xq = conv.input_quantizer(y)
    halves = []
    for part in (slice(0, 4), slice(4, 8)):  # the reference's binary_pw_down1 / down2
        w = conv.kernel_quantizer(conv.weight[part])
        bn = block.bn2
        z = torch.nn.functional.conv2d(xq, w)
        mean, var = bn.running_mean[part, None, None], bn.running_var[part, None, None]
        z = (z - mean) / torch.sqrt(var + bn.eps)
        halves.append(z * bn.weight[part, None, None] + bn.bias[part, None, None] + y)
    expected = block.act2(torch.cat(halves, 1))
    torch.testing.assert_close(block(x), expected)
