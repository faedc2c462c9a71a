"""Tests of the PokeBNN family (bnnkit.models.pokebnn).

Golden numbers: the reference's ``pokebnn_test.py`` (google/aqt) pins PokeBNN-1.0x at
224x224 / 1000 classes to conv ACE 4,091,469,824 and dense ACE 131,072,000; the paper
reports 2.6 G ACE for 0.75x. The summary reproduces both from the layer precisions.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from bnnkit import analysis, models
from bnnkit import nn as bnn
from bnnkit.models import pokebnn

VARIANTS = ["pokebnn_0_5x", "pokebnn_0_75x", "pokebnn_1_0x"]


def _meta(name, **kw):
    with torch.device("meta"):
        return models.create(name, **kw)


# ----------------------------------------------------------------------------- golden ACE


@pytest.fixture(scope="module")
def profile_1_0x():
    return analysis.summary(_meta("pokebnn_1_0x"), 224)


def test_pokebnn_1_0x_ace_matches_reference(profile_1_0x):
    p = profile_1_0x
    assert p.ace_by_kind() == {"conv": 4_091_469_824, "linear": 131_072_000}
    assert 2048 * 1000 * 8 * 8 == 131_072_000


def test_pokebnn_1_0x_ace_decomposition(profile_1_0x):
    """conv ACE = 64 x stem MACs (8x8) + binary MACs (1x1) + 16 x gate MACs (4x4)."""
    p = profile_1_0x
    stem = 56 * 56 * (4 * 4 * 3 * 32 + 3 * 3 * 1 * 64)
    macs = p.macs_by_pair()
    assert macs[(8, 8)] == stem + 2048 * 1000
    assert set(macs) == {(1, 1), (4, 4), (8, 8)}
    assert 64 * stem + macs[(1, 1)] + 16 * macs[(4, 4)] == 4_091_469_824


def test_pokebnn_0_75x_ace_as_paper():
    p = analysis.summary(_meta("pokebnn_0_75x"), 224)
    assert round(p.ace / 1e9, 1) == 2.6


def test_widths_scale_the_bottlenecks():
    for name, width in zip(VARIANTS, (0.5, 0.75, 1.0)):
        m = _meta(name)
        assert len(m.blocks) == 16
        assert m.blocks[0].conv1.conv.out_channels == int(64 * width)
        assert m.head.in_features == 4 * int(512 * width)
        assert m.stem[3].out_channels == 64 and m.stem[3].groups == 32


# ----------------------------------------------------------------------------- structure


def test_layer_precisions():
    m = _meta("pokebnn_0_5x", num_classes=10, input_size=32)
    stem, gate = m.stem[0], m.blocks[0].conv1.gate
    assert (stem.input_precision, stem.kernel_precision) == (8, 8)
    assert (m.stem[3].input_precision, m.stem[3].kernel_precision) == (8, 8)
    conv = m.blocks[3].conv2.conv
    assert (conv.input_precision, conv.kernel_precision, conv.pad_value) == (1, 1, 0.0)
    assert conv.input_quantizer.bound == 3.0 and conv.stride == (2, 2)
    assert (gate.fc1.input_precision, gate.fc1.kernel_precision) == (4, 4)
    assert type(gate.fc2.input_quantizer).__name__ == "UnsignedQuantizer"
    assert gate.fc1.out_channels == 64 // 8 and gate.fc2.out_channels == 32
    assert (m.head.input_precision, m.head.kernel_precision) == (8, 8)


def test_block_last_bn_starts_at_zero_and_dprelu_init():
    m = models.create("pokebnn_0_5x", num_classes=10, input_size=32)
    block = m.blocks[0]
    assert torch.all(block.conv3.bn.weight == 0) and torch.all(block.conv1.bn.weight == 1)
    act = block.conv1.act
    assert isinstance(act, bnn.DPReLU)
    assert torch.all(act.pos_slope == 1) and torch.all(act.neg_slope == 0.25)


def test_shortcut_shrinks_by_averaging_consecutive_channels():
    r = torch.arange(2 * 5 * 2 * 2, dtype=torch.float32).reshape(2, 5, 2, 2)
    out = pokebnn.ShortcutReshape(5, 2, 1, "zeropad")(r)
    # g = 5 // 2 = 2: channels (0, 1) and (2, 3); channel 4 is dropped
    torch.testing.assert_close(out, torch.stack([r[:, 0:2].mean(1), r[:, 2:4].mean(1)], 1))


def test_shortcut_expands_by_zeropad_or_tile():
    r = torch.randn(1, 2, 3, 3)
    z = pokebnn.ShortcutReshape(2, 5, 1, "zeropad")(r)
    torch.testing.assert_close(z, torch.cat([r, torch.zeros(1, 3, 3, 3)], 1))
    t = pokebnn.ShortcutReshape(2, 5, 1, "tile")(r)
    torch.testing.assert_close(t, torch.cat([r, r, r[:, :1]], 1))
    with pytest.raises(ValueError, match="expand"):
        pokebnn.ShortcutReshape(2, 5, 1, "repeat")


def test_shortcut_pools_3x3_stride_2_counting_padding():
    r = torch.randn(1, 1, 4, 4)
    out = pokebnn.ShortcutReshape(1, 1, 2, "tile")(r)
    padded = F.pad(r, (1, 1, 1, 1))
    expected = torch.tensor([[padded[0, 0, 2 * i : 2 * i + 3, 2 * j : 2 * j + 3].sum() / 9
                              for j in range(2)] for i in range(2)])  # fmt: skip
    torch.testing.assert_close(out[0, 0], expected)


def test_gate_is_hardsigmoid_of_two_quantized_1x1_convs():
    gate = pokebnn.PokeGate(16, 24)
    x = torch.randn(3, 16, 5, 5)
    s = gate.fc2(torch.relu(gate.fc1(x.mean(dim=(2, 3), keepdim=True))))
    torch.testing.assert_close(gate(x), torch.clamp(s + 3, 0, 6) / 6)
    assert gate(x).shape == (3, 24, 1, 1)


def test_poke_conv_wiring():
    conv = pokebnn.PokeConv(8, 32, 1, block_in=16, block_stride=2).eval()
    with torch.no_grad():
        for bn in (conv.bn, conv.bn_out):
            bn.weight.uniform_(0.5, 1.5)
            bn.running_mean.uniform_(-1, 1)
    x, r = torch.randn(2, 8, 4, 4), torch.randn(2, 16, 8, 8)
    y = conv.bn(conv.conv(x)) + F.pad(x, (0, 0, 0, 0, 0, 24))
    y = y + F.avg_pool2d(r.repeat(1, 2, 1, 1), 3, 2, 1)
    expected = conv.bn_out(conv.act(y) * conv.gate(x))
    torch.testing.assert_close(conv(x, r), expected)


# ----------------------------------------------------------------------------- training/export


@pytest.mark.parametrize("name", VARIANTS[1:])
def test_forward_shapes_small_input(name):
    """Shapes at 32x32 / 10 classes on the meta device (no compute)."""
    m = _meta(name, num_classes=10, input_size=32).train()
    assert m(torch.zeros(2, 3, 32, 32, device="meta")).shape == (2, 10)


def test_forward_backward_small_input():
    torch.manual_seed(0)
    m = models.create("pokebnn_0_5x", num_classes=10, input_size=32)
    y = m(torch.randn(2, 3, 32, 32))
    assert y.shape == (2, 10) and torch.isfinite(y).all()
    y.square().mean().backward()
    binary = m.blocks[5].conv2.conv.weight
    assert binary.grad is not None and binary.grad.abs().sum() > 0
    assert m.stem[0].weight.grad.abs().sum() > 0


def test_export_keeps_quantizers_as_named_ops():
    m = models.create("pokebnn_0_5x", num_classes=10, input_size=32).eval()
    ep = torch.export.export(m, (torch.randn(1, 3, 32, 32),))
    targets = [str(n.target) for n in ep.graph.nodes if n.op == "call_function"]
    assert targets.count("bnnkit.clipped_sign.default") == 48
    assert targets.count("bnnkit.ste_sign.default") == 48
    assert targets.count("bnnkit.unsigned_quant.default") == 48
    x = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(ep.module()(x), m(x))


def test_input_size_too_small_is_a_clear_error():
    with pytest.raises(ValueError, match="stem"):
        models.create("pokebnn_0_5x", num_classes=10, input_size=3)
    m = _meta("pokebnn_0_5x", num_classes=10, input_size=4, in_channels=1).eval()
    assert m(torch.zeros(1, 1, 4, 4, device="meta")).shape == (1, 10)
