"""Quantized layers equal the plain torch op on pre-quantized inputs and weights (every pad
value, stride, dilation, groups, 'same'/'valid'), weight clips, export; activations and
learnable blocks against closed forms."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from bnnkit import nn as bnn
from bnnkit import quantizers as q


def sign(x):
    return torch.where(x >= 0, 1.0, -1.0)


def pad_by_hand(x, pads, value):
    """Embed x (N, C, *spatial) in a larger tensor filled with value; pads per spatial
    dim as (before, after), in dim order."""
    shape = list(x.shape[:2]) + [s + a + b for s, (a, b) in zip(x.shape[2:], pads)]
    out = torch.full(shape, float(value), dtype=x.dtype)
    inner = tuple(slice(a, a + s) for s, (a, _) in zip(x.shape[2:], pads))
    out[(slice(None), slice(None)) + inner] = x
    return out


# stride, dilation, groups, padding, kernel
CONV2D_CASES = [
    (1, 1, 1, 1, 3),
    (2, 1, 1, 1, 3),
    (1, 2, 1, 2, 3),
    (1, 1, 2, 1, 3),
    (2, 1, 4, (1, 2), (3, 2)),
    (1, 1, 1, 0, 1),
]


@pytest.mark.parametrize("pad_value", [0, 1, -1])
@pytest.mark.parametrize("stride,dilation,groups,padding,kernel", CONV2D_CASES)
def test_quant_conv2d_equals_torch_conv_on_quantized_operands(
    pad_value, stride, dilation, groups, padding, kernel
):
    torch.manual_seed(0)
    layer = bnn.QuantConv2d(4, 8, kernel, stride=stride, padding=padding, dilation=dilation,
                            groups=groups, input_quantizer="ste_sign",
                            kernel_quantizer="ste_sign", pad_value=pad_value)  # fmt: skip
    x = torch.randn(2, 4, 7, 6)
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    xp = pad_by_hand(sign(x), [(ph, ph), (pw, pw)], pad_value)
    ref = F.conv2d(xp, sign(layer.weight), layer.bias, stride, 0, dilation, groups)
    torch.testing.assert_close(layer(x), ref)
    if pad_value == 0:  # torch's own zero padding agrees
        ref0 = F.conv2d(sign(x), sign(layer.weight), layer.bias, stride, padding, dilation, groups)
        torch.testing.assert_close(layer(x), ref0)


@pytest.mark.parametrize("pad_value", [0, 1, -1])
@pytest.mark.parametrize("kernel,dilation", [(3, 1), (4, 1), (2, 3)])
def test_quant_conv2d_same_padding(pad_value, kernel, dilation):
    layer = bnn.QuantConv2d(3, 5, kernel, padding="same", dilation=dilation, bias=False,
                            input_quantizer="ste_sign", kernel_quantizer="ste_sign",
                            pad_value=pad_value)  # fmt: skip
    x = torch.randn(1, 3, 6, 7)
    total = dilation * (kernel - 1)
    before, after = total // 2, total - total // 2  # extra padding after, as TF/Larq
    ref = F.conv2d(pad_by_hand(sign(x), [(before, after)] * 2, pad_value), sign(layer.weight),
                   dilation=dilation)  # fmt: skip
    out = layer(x)
    assert out.shape == (1, 5, 6, 7)
    torch.testing.assert_close(out, ref)


def test_valid_padding_and_reflect_mode():
    x = torch.randn(1, 2, 5, 5)
    valid = bnn.QuantConv2d(2, 3, 3, padding="valid", input_quantizer="ste_sign")
    torch.testing.assert_close(valid(x), F.conv2d(sign(x), valid.weight, valid.bias))
    refl = bnn.QuantConv2d(2, 3, 3, padding=1, padding_mode="reflect",
                           input_quantizer="ste_sign", kernel_quantizer="ste_sign")  # fmt: skip
    ref = F.conv2d(F.pad(sign(x), [1, 1, 1, 1], mode="reflect"), sign(refl.weight), refl.bias)
    torch.testing.assert_close(refl(x), ref)


@pytest.mark.parametrize("pad_value", [0, 1, -1])
@pytest.mark.parametrize("stride,dilation,groups", [(1, 1, 1), (2, 2, 2)])
def test_quant_conv1d(pad_value, stride, dilation, groups):
    layer = bnn.QuantConv1d(4, 6, 3, stride=stride, padding=2, dilation=dilation, groups=groups,
                            input_quantizer="approx_sign", kernel_quantizer="ste_sign",
                            pad_value=pad_value)  # fmt: skip
    x = torch.randn(2, 4, 9)
    ref = F.conv1d(pad_by_hand(sign(x), [(2, 2)], pad_value), sign(layer.weight), layer.bias,
                   stride, 0, dilation, groups)  # fmt: skip
    torch.testing.assert_close(layer(x), ref)


@pytest.mark.parametrize("pad_value", [0, 1, -1])
@pytest.mark.parametrize("multiplier,stride", [(1, 1), (2, 2)])
def test_quant_depthwise_conv2d(pad_value, multiplier, stride):
    layer = bnn.QuantDepthwiseConv2d(3, 3, depth_multiplier=multiplier, stride=stride, padding=1,
                                     input_quantizer="ste_sign",
                                     kernel_quantizer="magnitude_aware_sign",
                                     pad_value=pad_value)  # fmt: skip
    assert layer.weight.shape == (3 * multiplier, 1, 3, 3) and layer.groups == 3
    x = torch.randn(2, 3, 6, 6)
    w = layer.weight
    wq = w.abs().mean(dim=(1, 2, 3), keepdim=True) * sign(w)
    ref = F.conv2d(pad_by_hand(sign(x), [(1, 1)] * 2, pad_value), wq, layer.bias, stride,
                   groups=3)  # fmt: skip
    torch.testing.assert_close(layer(x), ref)


def test_quant_linear():
    layer = bnn.QuantLinear(5, 3, input_quantizer="ste_sign", kernel_quantizer="ste_sign")
    x = torch.randn(4, 5)
    torch.testing.assert_close(layer(x), F.linear(sign(x), sign(layer.weight), layer.bias))
    plain = bnn.QuantLinear(5, 3)
    torch.testing.assert_close(plain(x), F.linear(x, plain.weight, plain.bias))


def test_input_gradient_follows_the_ste_mask():
    layer = bnn.QuantConv2d(1, 1, 1, bias=False, input_quantizer="ste_sign")
    with torch.no_grad():
        layer.weight.fill_(2.0)
    x = torch.tensor([[[[-1.5, -1.0, 0.3, 1.0, 1.01]]]], requires_grad=True)
    layer(x).sum().backward()
    assert x.grad.flatten().tolist() == [0.0, 2.0, 2.0, 2.0, 0.0]


def test_kernel_gradient_follows_the_ste_mask():
    layer = bnn.QuantLinear(4, 1, bias=False, kernel_quantizer=q.SteSign(clip_value=1.25))
    _set(layer.weight, [[-2.0, -1.25, 0.5, 1.3]])
    layer(torch.tensor([[1.0, 2.0, 3.0, 4.0]])).sum().backward()
    assert layer.weight.grad.tolist() == [[0.0, 2.0, 3.0, 0.0]]


def test_plain_function_quantizers_are_accepted():
    layer = bnn.QuantConv2d(2, 2, 3, padding=1, input_quantizer=q.ste_sign,
                            kernel_quantizer=q.ste_sign)  # fmt: skip
    assert layer.is_binary and layer.pad_value == 1.0
    x = torch.randn(1, 2, 4, 4)
    ref = F.conv2d(pad_by_hand(sign(x), [(1, 1)] * 2, 1.0), sign(layer.weight), layer.bias)
    torch.testing.assert_close(layer(x), ref)
    assert _targets(layer, x).count("bnnkit.ste_sign.default") == 2


# --------------------------------------------------------------------------- attributes


def test_default_pad_value_and_precisions():
    binary = bnn.QuantConv2d(2, 2, 3, padding=1, input_quantizer="ste_sign",
                             kernel_quantizer="ste_sign")  # fmt: skip
    assert binary.pad_value == 1.0 and binary.is_binary
    assert (binary.input_precision, binary.kernel_precision) == (1, 1)
    weights_only = bnn.QuantConv2d(2, 2, 3, padding=1, kernel_quantizer="ste_sign")
    assert weights_only.pad_value == 0.0 and not weights_only.is_binary
    assert weights_only.input_precision == 32
    int8 = bnn.QuantConv2d(2, 2, 3, input_quantizer=q.SymmetricQuantizer(8),
                           kernel_quantizer=q.SymmetricQuantizer(8, per_channel=True))  # fmt: skip
    assert int8.pad_value == 0.0 and int8.kernel_precision == 8
    explicit = bnn.QuantConv2d(2, 2, 3, input_quantizer="ste_sign", pad_value=0)
    assert explicit.pad_value == 0.0 and isinstance(explicit.pad_value, float)
    assert isinstance(binary.input_quantizer, q.SteSign)
    assert "input_quantizer" in dict(binary.named_children())


def test_layers_subclass_the_torch_layers_they_replace():
    assert isinstance(bnn.QuantConv1d(2, 2, 3), torch.nn.Conv1d)
    assert isinstance(bnn.QuantConv2d(2, 2, 3), torch.nn.Conv2d)
    assert isinstance(bnn.QuantDepthwiseConv2d(2, 3), torch.nn.Conv2d)
    assert isinstance(bnn.QuantLinear(2, 2), torch.nn.Linear)


@pytest.mark.parametrize("bad,error", [(0.5, ValueError), (2, ValueError), ("1", TypeError)])
def test_bad_pad_value(bad, error):
    with pytest.raises(error, match="pad_value must be one of 0, 1, -1"):
        bnn.QuantConv2d(2, 2, 3, pad_value=bad)


def test_bad_quantizer_and_weight_clip():
    with pytest.raises(ValueError, match="Did you mean 'ste_sign'"):
        bnn.QuantLinear(2, 2, kernel_quantizer="ste_sing")
    with pytest.raises(ValueError, match="weight_clip"):
        bnn.QuantLinear(2, 2, weight_clip=0)
    with pytest.raises(TypeError):
        bnn.QuantConv2d(2, 2, 3, 1, 1, 1, 1, True, "zeros", None, None, "ste_sign")  # keyword-only


def test_weight_clip():
    model = torch.nn.Sequential(
        bnn.QuantConv2d(2, 3, 3, kernel_quantizer="ste_sign", weight_clip=1.25),
        bnn.QuantLinear(4, 4, weight_clip=0.5),
        bnn.QuantLinear(4, 4),
        torch.nn.Linear(4, 4),
    )
    for p in model.parameters():
        with torch.no_grad():
            p.copy_(torch.linspace(-3, 3, p.numel()).view_as(p))
    before = [m.weight.clone() for m in model]
    assert bnn.apply_weight_clips_(model) == 2
    torch.testing.assert_close(model[0].weight, before[0].clamp(-1.25, 1.25))
    torch.testing.assert_close(model[1].weight, before[1].clamp(-0.5, 0.5))
    assert model[0].weight.abs().max().item() == 1.25
    assert torch.equal(model[2].weight, before[2]) and torch.equal(model[3].weight, before[3])
    assert model[0].weight.requires_grad and model[0].weight.grad_fn is None
    assert model[0].bias.abs().max().item() > 1.25  # biases are not clipped


# --------------------------------------------------------------------------- export


def _targets(module, x):
    ep = torch.export.export(module, (x,))
    return [str(n.target) for n in ep.graph.nodes if n.op == "call_function"]


def test_binary_conv_exports_quantizers_pad_and_conv():
    layer = bnn.QuantConv2d(4, 8, 3, padding=1, bias=False, input_quantizer="ste_sign",
                            kernel_quantizer="ste_sign")  # fmt: skip
    targets = _targets(layer, torch.randn(1, 4, 5, 5))
    assert sorted(targets) == sorted(
        ["bnnkit.ste_sign.default", "bnnkit.ste_sign.default",
         "aten.constant_pad_nd.default", "aten.conv2d.default"]
    )  # fmt: skip
    assert _targets(bnn.QuantConv2d(4, 8, 3, input_quantizer="ste_sign"),
                    torch.randn(1, 4, 5, 5)).count("aten.constant_pad_nd.default") == 0  # fmt: skip


def test_linear_and_depthwise_export():
    lin = bnn.QuantLinear(4, 2, input_quantizer="ste_sign", kernel_quantizer="ste_sign")
    assert sorted(_targets(lin, torch.randn(3, 4))) == sorted(
        ["bnnkit.ste_sign.default", "bnnkit.ste_sign.default", "aten.linear.default"]
    )
    dw = bnn.QuantDepthwiseConv2d(4, 3, padding=1, input_quantizer=q.RSign(4),
                                  kernel_quantizer="ste_sign")  # fmt: skip
    targets = _targets(dw, torch.randn(1, 4, 5, 5))
    assert "bnnkit.rsign.default" in targets and "aten.constant_pad_nd.default" in targets


# --------------------------------------------------------------------------- activations


def _grad(fn, x):
    x = x.clone().requires_grad_(True)
    fn(x).sum().backward()
    return x.grad


def test_hard_tanh():
    x = torch.tensor([-2.0, -1.0, -0.5, 0.0, 1.0, 1.5])
    assert bnn.hard_tanh(x).tolist() == [-1.0, -1.0, -0.5, 0.0, 1.0, 1.0]
    assert _grad(bnn.hard_tanh, x).tolist() == [0, 1, 1, 1, 1, 0]
    assert torch.equal(bnn.HardTanh()(x), bnn.hard_tanh(x))


def test_leaky_tanh_values_and_gradient_at_kinks():
    x = torch.tensor([-3.0, -1.0, 0.0, 0.5, 1.0, 3.0])
    torch.testing.assert_close(bnn.leaky_tanh(x), torch.tensor([-1.4, -1.0, 0.0, 0.5, 1.0, 1.4]))
    # TF passes the gradient through both clip and max/min at x = +-1: 1 + alpha there
    torch.testing.assert_close(_grad(bnn.leaky_tanh, x), torch.tensor([0.2, 1.2, 1, 1, 1.2, 0.2]))
    torch.testing.assert_close(bnn.LeakyTanh(0.1)(x), bnn.leaky_tanh(x, 0.1))


def _set(param, values):
    with torch.no_grad():
        param.copy_(torch.tensor(values))


def test_dprelu_closed_form_nc_and_nchw():
    m = bnn.DPReLU(2)
    assert m.pos_slope.tolist() == [1, 1] and m.neg_slope.tolist() == [0.25, 0.25]
    assert m.shift_x.tolist() == [0, 0] and m.shift_y.tolist() == [0, 0]
    _set(m.shift_x, [0.5, -1.0])
    _set(m.shift_y, [0.25, 2.0])
    _set(m.pos_slope, [2.0, 1.0])
    _set(m.neg_slope, [0.5, 0.1])
    x = torch.tensor([[1.5, -3.0], [0.5, 0.0]])  # u = x - b_x = [[1, -2], [0, 1]]
    expected = torch.tensor([[2 * 1 - 0.25, 0.1 * -2 - 2.0], [0.0 - 0.25, 1.0 - 2.0]])
    torch.testing.assert_close(m(x), expected)
    x4 = x.view(2, 2, 1, 1).expand(2, 2, 3, 2).contiguous()
    torch.testing.assert_close(m(x4), expected.view(2, 2, 1, 1).expand(2, 2, 3, 2))


def test_rprelu_closed_form():
    m = bnn.RPReLU(2)
    assert m.slope.tolist() == [0.25, 0.25]
    _set(m.shift_in, [1.0, 0.0])
    _set(m.shift_out, [0.5, -0.5])
    _set(m.slope, [0.1, 0.2])
    x = torch.tensor([[3.0, -1.0], [0.0, 2.0]])  # x - gamma = [[2, -1], [-1, 2]]
    torch.testing.assert_close(m(x), torch.tensor([[2.5, -0.7], [0.4, 1.5]]))


def test_learnable_bias():
    m = bnn.LearnableBias(3)
    _set(m.bias, [1.0, -2.0, 0.5])
    x = torch.zeros(2, 3, 2, 2)
    assert m(x)[:, :, 1, 1].tolist() == [[1.0, -2.0, 0.5]] * 2
    assert m(torch.zeros(1, 3)).tolist() == [[1.0, -2.0, 0.5]]


def test_learnable_blocks_gradcheck_away_from_kinks():
    torch.manual_seed(0)
    x = torch.randn(3, 2, 2, 2, dtype=torch.float64)
    x = x + 0.2 * torch.sign(x)  # keep |x - shift| away from 0
    for m in [bnn.DPReLU(2), bnn.RPReLU(2), bnn.LearnableBias(2)]:
        m = m.double()
        params = tuple(m.parameters())

        def fn(inp, *ps, m=m):
            names = [n for n, _ in m.named_parameters()]
            return torch.func.functional_call(m, dict(zip(names, ps)), (inp,))

        assert torch.autograd.gradcheck(fn, (x.clone().requires_grad_(True), *params))


@pytest.mark.parametrize("block", [bnn.DPReLU, bnn.RPReLU, bnn.LearnableBias])
def test_blocks_reject_wrong_channels(block):
    with pytest.raises(ValueError, match=r"expects input of shape \(N, 4, \.\.\.\)"):
        block(4)(torch.zeros(2, 3, 5))
