"""Tests of bnnkit.analysis (the summary) and bnnkit.energy.

Closed-form expectations on tiny models, Larq's conventions, the golden numbers of the
zoo (Larq Zoo QuickNet figures, ReActNet-A, Bi-RealNet-18), bad input, and a snapshot of
the rendered table.

The snapshot lives in tests/snapshots/summary_small.txt; after an intended change of the
rendering, regenerate it with ``BNNKIT_UPDATE_SNAPSHOTS=1 pytest tests/test_analysis.py``
and review the diff.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import warnings

import pytest
import torch
from torch import nn

from bnnkit import analysis, energy, models
from bnnkit import nn as bnn
from bnnkit import quantizers
from mac_hooks import count_macs

SNAPSHOT = pathlib.Path(__file__).parent / "snapshots" / "summary_small.txt"
UPDATE_SNAPSHOTS = os.environ.get("BNNKIT_UPDATE_SNAPSHOTS") == "1"


def _bconv(cin, cout, k=3, stride=1, input_quantizer="ste_sign"):
    return bnn.QuantConv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False,
                           input_quantizer=input_quantizer, kernel_quantizer="ste_sign")  # fmt: skip


def small_net() -> nn.Sequential:
    """8-bit stem, binary conv, a binary-kernel conv without input quantizer, float head."""
    return nn.Sequential(
        bnn.QuantConv2d(3, 8, 3, padding=1, bias=False, input_quantizer=quantizers.SymmetricQuantizer(8),
                        kernel_quantizer=quantizers.SymmetricQuantizer(8, per_channel=True)),  # fmt: skip
        nn.BatchNorm2d(8),
        bnn.DPReLU(8),
        _bconv(8, 16, stride=2),
        nn.BatchNorm2d(16, affine=False),
        _bconv(16, 16, k=1, input_quantizer=None),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, 10),
    )


# ----------------------------------------------------------------------------- closed form


@pytest.fixture(scope="module")
def small_profile():
    return analysis.summary(small_net(), (1, 3, 8, 8), name="small_net")


def test_layer_macs_and_params_closed_form(small_profile):
    by = {lp.name: lp for lp in small_profile.layers}
    # conv: out_h * out_w * C_out * k*k * C_in / groups
    assert by["0"].macs == {(8, 8): 8 * 8 * 8 * 9 * 3}
    assert by["3"].macs == {(1, 1): 4 * 4 * 16 * 9 * 8}
    assert by["5"].macs == {(1, 32): 4 * 4 * 16 * 16}  # binary kernel, float input
    assert by["8"].macs == {(32, 32): 16 * 10}
    assert by["0"].params == {8: 8 * 3 * 9}
    assert by["3"].params == {1: 16 * 8 * 9} and by["3"].memory_bits == 16 * 8 * 9
    assert by["8"].params == {32: 16 * 10 + 10}
    assert by["2"].params == {32: 4 * 8} and by["2"].kind == "activation"
    assert by["0"].output_shape == (1, 8, 8, 8) and by["3"].output_shape == (1, 16, 4, 4)


def test_batch_norm_counts_moving_statistics_only(small_profile):
    by = {lp.name: lp for lp in small_profile.layers}
    # Larq: gamma/beta fold into the moving mean/variance: 2*C non-trainable values.
    assert (by["1"].trainable, by["1"].non_trainable, by["1"].params) == (0, 16, {32: 16})
    assert (by["4"].trainable, by["4"].non_trainable) == (0, 32)  # affine=False: also 2*C


def test_mac_precision_is_max_of_input_and_weight_bits(small_profile):
    # Larq: the binary kernel without an input quantizer counts as 32-bit MACs.
    assert small_profile.macs_by_precision() == {
        1: 4 * 4 * 16 * 9 * 8,
        8: 8 * 8 * 8 * 9 * 3,
        32: 4 * 4 * 16 * 16 + 160,
    }
    assert small_profile.binary_macs == 18432
    assert small_profile.binary_mac_fraction == pytest.approx(18432 / (13824 + 18432 + 4096 + 160))


def test_totals_closed_form(small_profile):
    p = small_profile
    trainable = 8 * 27 + 32 + 16 * 72 + 16 * 16 + 170
    assert (p.trainable_params, p.non_trainable_params) == (trainable, 16 + 32)
    assert p.params_by_bits() == {1: 16 * 72 + 16 * 16, 8: 216, 32: 32 + 16 + 32 + 170}
    bits = 1 * (1152 + 256) + 8 * 216 + 32 * 250
    assert p.memory_bits == bits and p.memory_bytes == bits / 8
    assert p.fp32_bytes == 4 * p.total_params
    assert p.int8_bytes == (1408 + 8 * (216 + 250)) / 8
    assert p.compression_ratio == pytest.approx(bits / 8 / p.fp32_bytes)
    assert p.cpu_ops == pytest.approx(18432 / 64 + 13824 + 4096 + 160)


def test_ace_pokebnn_convention_and_configurable(small_profile):
    # sum MACs x w bits x a bits; an unquantized operand counts as 16 bits by default.
    expected = 13824 * 64 + 18432 * 1 + 4096 * 1 * 16 + 160 * 16 * 16
    assert small_profile.ace == expected
    assert small_profile.ace_by_kind() == {"conv": expected - 160 * 256, "linear": 160 * 256}
    p32 = analysis.summary(small_net(), (1, 3, 8, 8), unquantized_bits=32)
    assert p32.ace == 13824 * 64 + 18432 + 4096 * 32 + 160 * 32 * 32


def test_int8_size_keeps_low_bit_weights_at_their_width():
    # Larq's "8-bit FP weights" size: only values wider than 8 bits shrink to 8 bits.
    net = nn.Sequential(
        bnn.QuantConv2d(3, 4, 1, bias=False, kernel_quantizer=quantizers.SymmetricQuantizer(4)),
        bnn.QuantConv2d(4, 4, 1, bias=False, kernel_quantizer="ste_tern"),
        nn.Conv2d(4, 2, 1, bias=False),
    )
    p = analysis.summary(net, (1, 3, 2, 2))
    assert p.params_by_bits() == {2: 16, 4: 12, 32: 8}
    assert p.int8_bytes == (16 * 2 + 12 * 4 + 8 * 8) / 8


def test_macs_are_per_sample():
    p1 = analysis.summary(small_net(), (1, 3, 8, 8))
    p4 = analysis.summary(small_net(), (4, 3, 8, 8))
    assert p4.macs_by_pair() == p1.macs_by_pair()
    assert p4.peak_activation_bytes == p1.peak_activation_bytes


def test_total_params_cover_every_parameter():
    net = small_net()
    p = analysis.summary(net, 8)
    bn_affine = 2 * 8  # BatchNorm2d(8)'s gamma/beta are folded, not counted
    bn_stats = 2 * 8 + 2 * 16
    assert p.total_params == sum(t.numel() for t in net.parameters()) - bn_affine + bn_stats


def test_peak_activation_liveness_closed_form():
    net = nn.Sequential(nn.Conv2d(3, 4, 1), nn.ReLU(), nn.Conv2d(4, 2, 1))
    p = analysis.summary(net, (1, 3, 4, 4))
    # live sets per step: {x, a}, {a, relu(a)}, {relu(a), y}; fp32 = 4 bytes each.
    x, a, y = 48 * 4, 64 * 4, 32 * 4
    assert p.peak_activation_bytes == max(x + a, a + a, a + y) == 512


def test_grouped_depthwise_and_conv1d_macs():
    dw = bnn.QuantDepthwiseConv2d(6, 3, depth_multiplier=2, padding=1, bias=False,
                                  input_quantizer="ste_sign", kernel_quantizer="ste_sign")  # fmt: skip
    p = analysis.summary(dw, (1, 6, 5, 5))
    assert p.macs_by_pair() == {(1, 1): 5 * 5 * 12 * 9 * 1}
    c1 = bnn.QuantConv1d(4, 8, 3, bias=False, kernel_quantizer="ste_sign")
    assert analysis.summary(c1, (2, 4, 10)).macs_by_pair() == {(1, 32): 8 * 8 * 3 * 4}


def test_shared_layer_counts_params_once_and_macs_per_call():
    conv = nn.Conv2d(3, 3, 1, bias=False)
    p = analysis.summary(nn.Sequential(conv, nn.ReLU(), conv), (1, 3, 2, 2))
    shared = [lp for lp in p.layers if lp.type == "Conv2d"]
    assert len(shared) == 1 and shared[0].calls == 2
    assert p.total_params == 9 and p.macs_by_pair() == {(32, 32): 2 * 4 * 9}


def test_top_level_alias():
    import bnnkit

    assert bnnkit.summary is analysis.summary


def test_model_state_is_restored():
    net = small_net().train()
    x = torch.randn(2, 3, 8, 8)
    analysis.summary(net, 8)
    assert all(m.training for m in net.modules())
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in net.modules())
    assert net(x).shape == (2, 10)


def test_meta_and_cpu_profiles_agree():
    cpu = analysis.summary(models.create("pokebnn_0_5x", num_classes=10, input_size=32), 32)
    with torch.device("meta"):
        meta_model = models.create("pokebnn_0_5x", num_classes=10, input_size=32)
    meta = analysis.summary(meta_model, 32)
    assert meta.to_dict()["totals"] == cpu.to_dict()["totals"]


# ----------------------------------------------------------------------------- output


def test_json_round_trip(small_profile):
    d = json.loads(small_profile.to_json())
    t = d["totals"]
    assert t["params"] == small_profile.total_params
    assert t["macs_by_precision"] == {"1": 18432, "8": 13824, "32": 4256}
    assert t["macs_by_pair"]["w1a32"] == 4096
    assert t["ace"] == small_profile.ace and t["memory_bits"] == small_profile.memory_bits
    assert [lp["name"] for lp in d["layers"]] == [lp.name for lp in small_profile.layers]
    assert d["layers"][3]["macs"] == {"w1a1": 18432} and d["layers"][3]["params"] == {"1": 1152}
    assert t["energy"]["total_pj"] == pytest.approx(small_profile.energy.total_pj)


def test_render_snapshot(small_profile):
    text = small_profile.render()
    assert str(small_profile) == text
    # per-layer MAC columns by (weight bits, input bits); the energy row names its source
    assert "w1a1 MACs" in text and "w1a32 MACs" in text and "w32a32 MACs" in text
    assert "ISSCC 2014" in text
    if UPDATE_SNAPSHOTS or not SNAPSHOT.exists():
        if not UPDATE_SNAPSHOTS:
            pytest.fail(f"missing snapshot {SNAPSHOT}; create it with BNNKIT_UPDATE_SNAPSHOTS=1")
        SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
        SNAPSHOT.write_text(text + "\n")
    assert text + "\n" == SNAPSHOT.read_text()


def test_render_uses_larq_memory_labels():
    p = analysis.summary_for_model_name("quicknet", 224, 1000)
    text = p.render()
    assert "Memory" in text and "(kB)" in text
    assert "Model size" in text and "4.17 MB" in text


# ----------------------------------------------------------------------------- energy


def test_energy_closed_form(small_profile):
    t = dataclasses.replace(energy.HOROWITZ_45NM, name="unit", sram_pj_per_64b=1.0, dram_pj_per_64b=2.0)
    p = analysis.summary(small_net(), (1, 3, 8, 8), energy_table=t)
    mac8 = 8 * 8 / 64 * (0.2 + 0.03)  # = one Horowitz int8 multiply + add
    compute = 13824 * mac8 + 18432 * (0.23 / 64) + 4256 * (3.7 + 0.9)
    assert p.energy.compute_pj == pytest.approx(compute)
    assert p.energy.weights_pj == pytest.approx(p.memory_bits / 64 * 2.0)
    # conv/dense inputs at their input precision, outputs at 32 bits
    act = (192 * 8 + 512 * 32) + (512 * 1 + 256 * 32) + (256 * 32 + 256 * 32) + (16 * 32 + 10 * 32)
    assert p.energy.activations_pj == pytest.approx(act / 64 * 1.0)
    assert p.energy.total_pj == pytest.approx(compute + p.energy.weights_pj + act / 64)


def test_energy_table_validation_and_fp16():
    with pytest.raises(ValueError, match="float_format"):
        energy.EnergyTable(float_format="bf17")
    with pytest.raises(ValueError, match="dram_pj_per_64b"):
        energy.EnergyTable(dram_pj_per_64b=-1.0)
    fp16 = energy.EnergyTable(float_format="fp16")
    assert fp16.mac_pj(32, 32) == pytest.approx(1.1 + 0.4)
    assert fp16.mac_pj(1, 1) == pytest.approx(0.23 / 64)
    assert energy.HOROWITZ_45NM.mac_pj(4, 4) == pytest.approx(16 / 64 * 0.23)


def test_default_energy_constants_are_horowitz_isscc_2014_45nm():
    """Every shipped constant is the published figure (Horowitz, ISSCC 2014, Fig. 1.1.9)."""
    t = energy.HOROWITZ_45NM
    published = {
        "int8_add_pj": 0.03, "int8_mult_pj": 0.2, "fp16_add_pj": 0.4, "fp16_mult_pj": 1.1,
        "fp32_add_pj": 0.9, "fp32_mult_pj": 3.7, "sram_pj_per_64b": 100.0,  # 1 MB SRAM
        "dram_pj_per_64b": 1300.0,  # DRAM 1.3-2.6 nJ, low end
    }  # fmt: skip
    constants = {f.name for f in dataclasses.fields(t) if f.name.endswith(("_pj", "_64b"))}
    assert constants == set(published)
    assert {k: getattr(t, k) for k in published} == published
    assert "Horowitz" in t.source and "ISSCC 2014" in t.source and "45 nm" in t.source


def test_energy_source_is_in_the_json(small_profile):
    e = json.loads(small_profile.to_json())["totals"]["energy"]
    assert e["table"] == "horowitz45nm" and e["source"] == energy.HOROWITZ_45NM.source
    custom = dataclasses.replace(energy.HOROWITZ_45NM, name="n7", source="my lab, 7 nm")
    p = analysis.summary(small_net(), (1, 3, 8, 8), energy_table=custom)
    assert p.to_dict()["totals"]["energy"]["source"] == "my lab, 7 nm"


# ----------------------------------------------------------------------------- bad input


class Scale(nn.Module):
    """A layer the summary does not know (a leaf with a parameter)."""

    def __init__(self, c):
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(c))

    def forward(self, x):
        return x * self.alpha.view(1, -1, 1, 1)


class Holder(nn.Module):
    """A container holding a parameter directly."""

    def __init__(self):
        super().__init__()
        self.gain = nn.Parameter(torch.ones(3))
        self.body = nn.Conv2d(3, 3, 1)

    def forward(self, x):
        return self.body(x) * self.gain.view(1, -1, 1, 1)


def test_unknown_layers_are_counted_and_named_in_a_warning():
    net = nn.Sequential(Holder(), Scale(3), nn.Conv2d(3, 2, 1))
    with pytest.warns(analysis.UnknownLayerWarning, match=r"0 \(Holder\), 1 \(Scale\)"):
        p = analysis.summary(net, 4)
    by = {lp.name: lp for lp in p.layers}
    assert by["1"].params == {32: 3} and by["1"].kind == "unknown"
    assert by["0"].params == {32: 3}  # only its own parameter; its conv is a row of its own
    assert p.total_params == sum(t.numel() for t in net.parameters())
    assert p.unknown_layers == ["0 (Holder)", "1 (Scale)"]


def test_known_layers_do_not_warn(small_profile):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        analysis.summary(small_net(), 8)
    assert small_profile.unknown_layers == []


def test_input_too_small_names_the_layer():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Sequential(nn.ReLU(), nn.Conv2d(4, 4, 3)))
    with pytest.raises(ValueError, match=r"layer '1\.1' \(Conv2d\)"):
        analysis.summary(net, 4)
    with pytest.raises(ValueError, match=r"layer '0' \(Conv2d\)"):
        analysis.summary(net, (1, 5, 8, 8))  # wrong channel count


def test_zoo_model_input_too_small_names_the_layer():
    with torch.device("meta"):
        model = models.create("pokebnn_0_5x", num_classes=10, input_size=32)
    with pytest.raises(ValueError, match=r"layer 'stem\.0' \(QuantConv2d\)"):
        analysis.summary(model, 2)


@pytest.mark.parametrize("bad", [0, (1, 3, 0, 4), "224", (1,), True, 2.5])
def test_bad_input_size(bad):
    with pytest.raises((ValueError, TypeError), match="input_size"):
        analysis.summary(nn.Conv2d(3, 3, 1), bad)


def test_bad_unquantized_bits():
    with pytest.raises(ValueError, match="unquantized_bits"):
        analysis.summary(nn.Conv2d(3, 3, 1), 4, unquantized_bits=0)


def test_unknown_model_name_lists_close_matches():
    with pytest.raises(KeyError, match="quicknet"):
        analysis.summary_for_model_name("quiknet")


# ----------------------------------------------------------------------------- zoo golden


def _hook_macs(model: nn.Module, size: int) -> int:
    """Total MACs of one image, counted independently by hooks on every conv/dense."""
    return sum(count_macs(model, size).values())


@pytest.mark.parametrize("name", models.list_models())
def test_every_zoo_model_is_fully_known_to_the_summary(name):
    """Registry-driven: no layer falls back to 'unknown' (warnings are errors here), the
    parameters are Larq's count and every conv/dense MAC is attributed to a precision."""
    with torch.device("meta"):
        model = models.create(name, num_classes=10, input_size=32)
    p = analysis.summary(model, 32)
    assert p.unknown_layers == []
    assert p.total_params == models._blocks.larq_parameter_count(model)
    assert p.total_macs == _hook_macs(model, 32) > 0
    assert json.loads(p.to_json())["totals"]["ace"] == p.ace > 0



@pytest.mark.parametrize(
    "name, params, mib, macs1, macs32",
    [
        ("quicknet_small", 12_655_688, 4.00, 1_156_055_040, 15_941_120),
        ("quicknet", 13_234_088, 4.17, 1_849_688_064, 29_651_712),
        ("quicknet_large", 23_342_248, 5.40, 3_699_376_128, 29_651_712),
    ],
)
def test_quicknet_family_larq_zoo_figures(name, params, mib, macs1, macs32):
    p = analysis.summary_for_model_name(name, 224, 1000)
    assert p.total_params == params
    assert round(p.memory_bytes / 2**20, 2) == mib
    assert p.macs_by_precision() == {1: macs1, 32: macs32}


def test_reactnet_a_binary_macs_and_ace():
    p = analysis.summary_for_model_name("reactnet_a", 224, 1000)
    assert p.binary_macs == 4_816_896_000
    assert p.ace == pytest.approx(7.85e9, rel=5e-3)  # PokeBNN's table: ReActNet-A ~7.85 G


def test_birealnet18_cpu_ops():
    p = analysis.summary_for_model_name("birealnet18", 224, 1000)
    assert p.cpu_ops == pytest.approx(1.63e8, rel=1e-2)  # Bi-Real Net paper: 1.63e8 OPs
