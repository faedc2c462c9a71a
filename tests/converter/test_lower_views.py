"""Lowering of BoolNet's and PokeBNN's building blocks, each converted alone and run on the
native runtime against PyTorch: channel views (slices, interleaving, tiling, zero channels,
channel means) -> gather_channels / group_mean, XNOR/OR shortcuts -> packed logic,
replicate padding -> pad2d, DPReLU -> one dprelu, dynamic-range quantizers ->
dynamic_fake_quant with i8 weights; and what is still refused, with the op and module named."""

import numpy as np
import pytest
import torch

import bnnkit.format as F
from bnnkit import nn as bnn
from bnnkit import quantizers
from bnnkit.converter import ConversionError, convert, convert_graph
from bnnkit.models.boolnet import BoolBlock, GhostSign
from bnnkit.models.pokebnn import ShortcutReshape
from bnnkit.runtime import Interpreter


def _randomize(model):
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.3)
                m.running_var.uniform_(0.5, 1.5, generator=gen)
            if isinstance(m, bnn.DPReLU):
                for p in m.parameters():
                    p.copy_(torch.randn(p.shape, generator=gen) * 0.3 + (p if p is m.pos_slope else 0))
    return model.eval()


def _runtime(model, x, threads=1):
    return Interpreter(convert(model, x), num_threads=threads).run(x.numpy())


class _TwoBoolBlocks(torch.nn.Module):
    """GhostSign -> a block without and a block with the slice split (4 slices of 8 -> 16)."""

    def __init__(self):
        super().__init__()
        self.sign = GhostSign(4)
        self.a = BoolBlock(8, 8, 8, 1, last=False)
        self.b = BoolBlock(16, 8, 8, 1, last=False)

    def forward(self, x):
        return self.b(self.a(self.sign(x)))


def test_boolnet_blocks_run_on_packed_bits():
    torch.manual_seed(0)
    model = _randomize(_TwoBoolBlocks())
    x = torch.randn(2, 8, 6, 5)
    counts = convert_graph(model, x).op_counts()
    assert counts["bxnor"] == 2 and counts["bor"] == 2 and counts["pad2d"] == 4 and counts["bconv2d"] == 4
    assert "mul" not in counts and "hard_tanh" not in counts  # no float logic left
    mf = F.read(convert(model, x))
    gathers = [n for n in mf.nodes if n.op == "gather_channels"]
    assert any(mf.tensors[n.outputs[0]].dtype == "bits" for n in gathers)  # interleave/slices on bits
    assert all(n.attrs["mode"] == 1 for n in mf.nodes if n.op == "pad2d")  # replicate
    with torch.no_grad():
        want = model(x).numpy()
    for threads in (1, 2):
        np.testing.assert_array_equal(_runtime(model, x, threads), want)  # +-1 values: exact


@pytest.mark.parametrize("cin, cout, stride, expand, op", [
    (16, 8, 1, "zeropad", "group_mean"),   # mean over groups of 2
    (12, 8, 1, "zeropad", None),           # g = 1: the first 8 channels
    (8, 20, 1, "zeropad", None),           # 12 zero channels
    (8, 20, 2, "tile", "avgpool2d"),       # tiled 3 times, cut at 20, 3x3 stride-2 pool
    (32, 8, 2, "tile", "group_mean"),
])
def test_pokebnn_shortcut_reshape(cin, cout, stride, expand, op):
    model = ShortcutReshape(cin, cout, stride, expand).eval()
    x = torch.randn(2, cin, 6, 6)
    counts = convert_graph(model, x).op_counts()
    assert op is None or op in counts
    assert counts.get("gather_channels", 0) <= 1
    with torch.no_grad():
        want = model(x).numpy()
    np.testing.assert_allclose(_runtime(model, x), want, rtol=1e-6, atol=1e-6)


def test_dprelu_shifts_fold_into_one_op():
    torch.manual_seed(1)
    model = _randomize(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), bnn.DPReLU(8)))
    x = torch.randn(2, 3, 7, 7)
    g = convert_graph(model, x)
    assert g.op_counts() == {"conv2d": 1, "dprelu": 1}
    dprelu = g.ops[1]
    np.testing.assert_array_equal(dprelu.inputs[1].data, model[1].shift_x.detach().numpy())
    np.testing.assert_array_equal(dprelu.inputs[4].data, model[1].shift_y.detach().numpy())
    with torch.no_grad():
        want = model(x).numpy()
    np.testing.assert_allclose(_runtime(model, x), want, rtol=1e-6, atol=1e-6)


def test_dynamic_range_quantizers_and_int8_weights():
    torch.manual_seed(2)
    model = torch.nn.Sequential(
        bnn.QuantConv2d(3, 8, 3, input_quantizer=quantizers.SymmetricQuantizer(8),
                        kernel_quantizer=quantizers.SymmetricQuantizer(8, per_channel=True)),
        torch.nn.ReLU(), torch.nn.Flatten(),
        bnn.QuantLinear(8 * 5 * 5, 4, input_quantizer=quantizers.UnsignedQuantizer(4),
                        kernel_quantizer=quantizers.SymmetricQuantizer(4, per_channel=True))).eval()
    x = torch.randn(2, 3, 7, 7)
    mf = F.read(convert(model, x))
    quants = [n for n in mf.nodes if n.op == "dynamic_fake_quant"]
    assert [(n.attrs["qmax"], n.attrs.get("signed", 1)) for n in quants] == [(127, 1), (15, 0)]
    weights = [mf.tensors[n.inputs[1]] for n in mf.nodes if n.op in ("conv2d", "dense")]
    assert [w.dtype for w in weights] == ["i8", "i8"]
    np.testing.assert_array_equal(  # q * s is the quantizer's own weight, exactly
        weights[0].numpy().astype(np.float32) * mf.tensors[mf.nodes[1].inputs[2]].numpy().reshape(-1, 1, 1, 1),
        model[0].quantized_weight().detach().numpy())
    with torch.no_grad():
        want = model(x).numpy()
    np.testing.assert_allclose(_runtime(model, x), want, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------- still refused


class _Lambda(torch.nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def _reflect_conv():
    return bnn.QuantConv2d(4, 4, 3, padding=1, padding_mode="reflect", input_quantizer="ste_sign",
                           kernel_quantizer="ste_sign")


@pytest.mark.parametrize("make, match", [
    (_reflect_conv, r"aten\.pad\.default.*module '\(top level\)' \(QuantConv2d\).*padding mode 'reflect'.*replicate"),
    (lambda: _Lambda(lambda x: torch.where(x >= 1.0, 2.0, 0.5) * x), r"aten\.ge\.Scalar.*x >= 0.*DPReLU"),
    (lambda: _Lambda(lambda x: torch.relu(x.unflatten(1, (2, -1))).flatten(1, 2)),
     r"aten\.relu\.default.*channel-split tensor of shape \(1, 2, 2, 3, 3\)"),
    (lambda: _Lambda(lambda x: x[:, :, 1:] * 2.0), r"aten\.slice\.Tensor.*channel axes"),
    (lambda: _Lambda(lambda x: x.repeat(2, 1, 1, 1)), r"aten\.repeat\.default.*repeats 1 for N, H and W"),
    (lambda: _Lambda(lambda x: torch.nn.functional.pad(x, (0, 0, 1, 0, 2, 0))), r"aten\..*pad.*zero channels"),
    (lambda: _Lambda(lambda x: (x.unsqueeze(1) + x).flatten(1, 2)), r"aten\.add\.Tensor.*element-wise 'add'"),
])
def test_unsupported_patterns_name_op_and_module(make, match):
    with pytest.raises(ConversionError, match=match):
        convert(make().eval(), torch.randn(1, 4, 3, 3))
