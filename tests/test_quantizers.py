"""Quantizers: forward values and STE gradients against closed forms (Larq 0.14 semantics),
edge points (exactly +-clip, the next float either side, 0, -0.0), rounding ties, export
as one named node, get()/precision_of and argument validation."""

from __future__ import annotations

import math

import pytest
import torch

from bnnkit import quantizers as q

INF = torch.tensor(math.inf)


def f32(values):
    return torch.tensor(values, dtype=torch.float32)


def up(v: float) -> float:
    """The next float32 above v."""
    return torch.nextafter(f32(v), INF).item()


def down(v: float) -> float:
    """The next float32 below v."""
    return torch.nextafter(f32(v), -INF).item()


def value_and_grad(fn, x: torch.Tensor, *args, dy=None):
    x = x.clone().requires_grad_(True)
    y = fn(x, *args)
    y.backward(torch.ones_like(y) if dy is None else dy)
    return y.detach(), x.grad


def edge_points(c: float) -> torch.Tensor:
    return f32([-2 * c, down(-c), -c, up(-c), -0.0, 0.0, 1e-30, down(c), c, up(c), 2 * c])


# inclusive mask at the points of edge_points(c)
EDGE_MASK = [0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0]
EDGE_SIGN = [-1, -1, -1, -1, 1, 1, 1, 1, 1, 1, 1]


# --------------------------------------------------------------------------- binary


@pytest.mark.parametrize("clip", [1.0, 1.25, 0.5, 3.0])
def test_ste_sign_edges(clip):
    y, g = value_and_grad(q.ste_sign, edge_points(clip), clip)
    assert y.tolist() == EDGE_SIGN
    assert g.tolist() == EDGE_MASK


def test_ste_sign_negative_zero_is_plus_one_and_nan_propagates():
    y = q.ste_sign(f32([-0.0, math.nan]))
    assert y[0].item() == 1.0 and not math.copysign(1.0, y[0].item()) < 0
    assert math.isnan(y[1].item())


def test_ste_sign_no_clip_passes_everything():
    _, g = value_and_grad(q.ste_sign, f32([-100.0, 0.0, 1e6]), None)
    assert g.tolist() == [1, 1, 1]


def test_ste_sign_upstream_gradient_is_multiplied():
    dy = f32([2.0, -3.0, 5.0])
    _, g = value_and_grad(q.ste_sign, f32([0.5, -1.0, 1.5]), 1.0, dy=dy)
    assert g.tolist() == [2.0, -3.0, 0.0]


def test_approx_sign():
    x = f32([-1.5, up(-1.0), -1.0, -0.5, -0.0, 0.0, 0.25, 1.0, 1.5])
    y, g = value_and_grad(q.approx_sign, x)
    assert y.tolist() == [-1, -1, -1, -1, 1, 1, 1, 1, 1]
    expected = [0.0, 2 - 2 * abs(up(-1.0)), 0.0, 1.0, 2.0, 2.0, 1.5, 0.0, 0.0]
    torch.testing.assert_close(g, f32(expected), rtol=0, atol=1e-6)


def test_swish_sign_gradient_is_the_signswish_derivative():
    """The gradient equals d/dx of SignSwish 2 sigmoid(bx)(1 + bx(1 - sigmoid(bx))) - 1."""
    beta = 5.0
    x = torch.linspace(-3, 3, 61, dtype=torch.float64)
    y, g = value_and_grad(q.swish_sign, x, beta)
    assert y.tolist() == [1.0 if v >= 0 else -1.0 for v in x.tolist()]
    xs = x.clone().requires_grad_(True)
    s = torch.sigmoid(beta * xs)
    (2 * s * (1 + beta * xs * (1 - s)) - 1).sum().backward()
    torch.testing.assert_close(g, xs.grad)
    assert g[30].item() == pytest.approx(beta)  # x = 0
    assert (g[x.abs() > 0.5] < 0).all()  # negative for large |x|, as in Larq


def test_swish_sign_closed_form_point():
    _, g = value_and_grad(q.swish_sign, f32([1.0]), 5.0)
    expected = 5 * (2 - 5 * math.tanh(2.5)) / (1 + math.cosh(5))
    assert g.item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("clip", [1.0, 0.75])
def test_ste_heaviside(clip):
    y, g = value_and_grad(q.ste_heaviside, edge_points(clip), clip)
    assert y.tolist() == [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1]
    assert g.tolist() == EDGE_MASK


def test_magnitude_aware_sign_conv_weight_scale_per_output_channel():
    # OIHW (2, 1, 1, 2): channel 0 mean|w| = 2, channel 1 mean|w| = 0.5
    w = f32([[[[1.0, -3.0]]], [[[0.5, -0.5]]]])
    y, g = value_and_grad(q.magnitude_aware_sign, w)
    assert y.tolist() == [[[[2.0, -2.0]]], [[[0.5, -0.5]]]]
    # gradient: scale * 1[|w| <= 1]
    assert g.tolist() == [[[[2.0, 0.0]]], [[[0.5, 0.5]]]]


def test_magnitude_aware_sign_dense_and_4d_reduction_axes():
    w = torch.randn(3, 4, 2, 2)
    scale = w.abs().mean(dim=(1, 2, 3), keepdim=True)
    torch.testing.assert_close(q.magnitude_aware_sign(w), scale * torch.where(w >= 0, 1.0, -1.0))
    d = f32([[1.0, -2.0, 0.0], [-0.3, 0.3, 0.6]])  # (out, in): means 1.0 and 0.4
    torch.testing.assert_close(q.magnitude_aware_sign(d), f32([[1, -1, 1], [-0.4, 0.4, 0.4]]))


def test_rsign_forward_and_gradients():
    x = f32([[0.0, 0.3], [-0.5, 1.0], [0.2, -2.0]])  # (N=3, C=2)
    shift = f32([0.5, -0.3])  # u = x + b
    xs, bs = x.clone().requires_grad_(True), shift.clone().requires_grad_(True)
    y = q.rsign(xs, bs)
    u = [[0.5, 0.0], [0.0, 0.7], [0.7, -2.3]]
    assert y.tolist() == [[1, 1], [1, 1], [1, -1]]  # u = 0 (x = -b exactly) -> +1
    y.backward(torch.ones_like(y))
    gx = [[2 - 2 * abs(v) if abs(v) <= 1 else 0.0 for v in row] for row in u]
    torch.testing.assert_close(xs.grad, f32(gx), rtol=0, atol=1e-6)
    torch.testing.assert_close(bs.grad, f32(gx).sum(0), rtol=0, atol=1e-6)


def test_rsign_module_nchw_shift_gradient_is_sum_over_n_h_w():
    m = q.RSign(3)
    assert m.shift.shape == (3,) and m.shift.tolist() == [0, 0, 0]
    with torch.no_grad():
        m.shift.copy_(f32([0.1, -0.2, 0.3]))
    x = (torch.rand(2, 3, 4, 5) - 0.5).requires_grad_(True)
    y = m(x)
    assert torch.equal(y, torch.where(x + m.shift.view(1, 3, 1, 1) >= 0, 1.0, -1.0))
    dy = torch.randn_like(y)
    y.backward(dy)
    u = (x + m.shift.view(1, 3, 1, 1)).detach()
    gx = dy * torch.where(u.abs() <= 1, 2 - 2 * u.abs(), 0.0)
    torch.testing.assert_close(x.grad, gx)
    torch.testing.assert_close(m.shift.grad, gx.sum(dim=(0, 2, 3)))


def test_rsign_rejects_bad_shift_shape():
    with pytest.raises(ValueError, match=r"shift of shape \(C,\)"):
        q.rsign(torch.zeros(2, 3), torch.zeros(4))


@pytest.mark.parametrize("half_scale,scale", [(False, 1.0), (True, 1.5)])
def test_clipped_sign(half_scale, scale):
    y, g = value_and_grad(q.clipped_sign, edge_points(3.0), 3.0, half_scale)
    assert y.tolist() == [scale * s for s in EDGE_SIGN]
    assert g.tolist() == EDGE_MASK


# --------------------------------------------------------------------------- multi-bit


def test_ste_tern_ties_and_gradient():
    d = 0.05
    x = f32([-1.5, -d, up(-d), -0.0, 0.0, down(d), d, 0.5, up(1.0)])
    y, g = value_and_grad(q.ste_tern, x)
    assert y.tolist() == [-1, -1, 0, 0, 0, 0, 1, 1, 1]  # exactly +-delta -> +-1
    assert g.tolist() == [0, 1, 1, 1, 1, 1, 1, 1, 0]


def test_ste_tern_ternary_weight_networks_threshold():
    x = f32([1.0, -1.0, 0.3, -0.3, 0.5])  # delta = 0.7 * mean|x| = 0.7 * 0.62 = 0.434
    assert q.ste_tern(x, ternary_weight_networks=True).tolist() == [1, -1, 0, 0, 1]
    x = torch.randn(64)
    delta = (0.7 * x.abs().sum() / x.numel()).item()
    torch.testing.assert_close(
        q.ste_tern(x, ternary_weight_networks=True), q.ste_tern(x, threshold_value=delta)
    )


@pytest.mark.parametrize(
    "k_bit,expected",
    [(1, 0.0), (2, 2 / 3), (3, 4 / 7), (4, 8 / 15)],  # n * 0.5 = m + 0.5 -> even m
)
def test_dorefa_activation_rounding_ties_half_to_even(k_bit, expected):
    assert q.dorefa(f32([0.5]), k_bit).item() == pytest.approx(expected, abs=1e-7)


def test_dorefa_activations_values_and_gradient():
    x = f32([-0.5, -0.0, 0.0, 0.1, 0.5, 0.9, 1.0, up(1.0), 2.0])
    y, g = value_and_grad(q.dorefa, x, 2, "activations")
    torch.testing.assert_close(y, f32([0, 0, 0, 0, 2 / 3, 1, 1, 1, 1]))
    assert g.tolist() == [0, 1, 1, 1, 1, 1, 1, 0, 0]


def test_dorefa_weights_mode():
    x = f32([0.0, 1.0, -1.0, 0.2])
    y, g = value_and_grad(q.dorefa, x, 2, "weights")
    # u = tanh(x) / (2 tanh(1)) + 0.5; q = 2 round(3u)/3 - 1; u(0) = 0.5 -> 1.5 -> 2 (even)
    u = [math.tanh(v) / (2 * math.tanh(1.0)) + 0.5 for v in [0.0, 1.0, -1.0, 0.2]]
    expected = [2 * round(3 * v) / 3 - 1 for v in u]
    torch.testing.assert_close(y, f32(expected))
    assert y[0].item() == pytest.approx(1 / 3)
    gexp = [(1 - math.tanh(v) ** 2) / math.tanh(1.0) for v in [0.0, 1.0, -1.0, 0.2]]
    torch.testing.assert_close(g, f32(gexp))


def test_dorefa_weights_all_zero_gives_one_third_and_zero_grad():
    y, g = value_and_grad(q.dorefa, torch.zeros(5), 2, "weights")
    torch.testing.assert_close(y, torch.full((5,), 1 / 3))
    assert g.tolist() == [0.0] * 5


def test_nan_in_a_tensor_wide_statistic_makes_the_output_nan_not_finite():
    """One NaN enters DoReFa's weight max and the TWN threshold: every output (and, for
    DoReFa, every gradient) is NaN, as in Larq, never a silently finite 1/3 or 0."""
    x = f32([0.5, math.nan, -0.3, 2.0])
    y, g = value_and_grad(q.dorefa, x, 2, "weights")
    assert torch.isnan(y).all() and torch.isnan(g).all()
    assert torch.isnan(q.ste_tern(x, ternary_weight_networks=True)).all()
    per_element = q.ste_tern(x)  # fixed threshold: only the NaN element is NaN
    assert per_element[[0, 2, 3]].tolist() == [1, -1, 1] and math.isnan(per_element[1].item())
    activations = q.dorefa(x, 2, "activations")
    assert activations[[0, 2, 3]].tolist() == pytest.approx([2 / 3, 0, 1])
    assert math.isnan(activations[1].item())


def test_noop_is_identity_new_tensor():
    x = torch.randn(4)
    y, g = value_and_grad(q.noop, x, 8)
    assert torch.equal(y, x) and g.tolist() == [1.0] * 4
    assert q.noop(x).data_ptr() != x.data_ptr()
    assert q.NoOp().precision == 32 and q.NoOp(precision=1).precision == 1


def test_symmetric_quant_per_tensor_ties():
    x = f32([7.0, -7.0, 3.5, 2.5, -0.5, 0.0, 1.2])  # bits 4: Q = 7, s = 1
    y, g = value_and_grad(q.symmetric_quant, x, 4)
    assert y.tolist() == [7, -7, 4, 2, 0, 0, 1]
    assert g.tolist() == [1.0] * 7


def test_symmetric_quant_per_channel_and_zero_rows():
    w = f32([[7.0, -3.5, 1.0], [14.0, 5.0, -3.0], [0.0, 0.0, 0.0]])
    y = q.symmetric_quant(w, 4, per_channel=True)  # s = 1, 2, 0
    assert y.tolist() == [[7, -4, 1], [14, 4, -4], [0, 0, 0]]


def test_symmetric_quant_fixed_bound_clips_and_masks():
    x = f32([-2.0, -1.0, 0.5, 1.0, up(1.0)])
    y, g = value_and_grad(q.symmetric_quant, x, 8, False, 1.0)
    s = 1.0 / 127
    torch.testing.assert_close(y, f32([-1, -1, round(0.5 / s) * s, 1, 1]))
    assert g.tolist() == [0, 1, 1, 1, 0]


def test_unsigned_quant_dynamic_and_fixed_range():
    x = f32([-1.0, 0.0, 0.5, 1.5, 3.0])  # bits 2: n = 3, max 3 -> s = 1
    y, g = value_and_grad(q.unsigned_quant, x, 2)
    assert y.tolist() == [0, 0, 0, 2, 3]  # 0.5 -> 0 and 1.5 -> 2 (half-to-even)
    assert g.tolist() == [0, 1, 1, 1, 1]
    y, g = value_and_grad(q.unsigned_quant, f32([0.25, 0.8, 1.5, 2.0]), 2, 1.5)  # s = 0.5
    assert y.tolist() == [0.0, 1.0, 1.5, 1.5]
    assert g.tolist() == [1, 1, 1, 0]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_dtypes_are_preserved(dtype):
    x = torch.tensor([-1.0, 0.0, 0.5], dtype=dtype)
    for name in ["ste_sign", "approx_sign", "ste_tern", "dorefa", "symmetric_quant"]:
        y = q.get(name)(x)
        assert y.dtype == dtype, name


# --------------------------------------------------------------------------- export


def _module_for(alias):
    return q.RSign(4) if alias == "rsign" else q.get(alias)


@pytest.mark.parametrize("alias", q.list_quantizers())
def test_each_quantizer_exports_as_one_named_node(alias):
    module = _module_for(alias)
    ep = torch.export.export(module, (torch.randn(2, 4, 3, 3),))
    calls = [n for n in ep.graph.nodes if n.op == "call_function"]
    name = module.op_name.split("::")[1]
    assert len(calls) == 1
    assert calls[0].target is getattr(torch.ops.bnnkit, name).default
    assert str(calls[0].target) == f"bnnkit.{name}.default"
    assert module.op_name == f"bnnkit::{name}"


def test_export_keeps_op_arguments():
    ep = torch.export.export(q.SteSign(clip_value=1.25), (torch.randn(3),))
    (node,) = [n for n in ep.graph.nodes if n.op == "call_function"]
    assert node.args[1] == 1.25


# --------------------------------------------------------------------------- get and friends

EXPECTED = {
    "ste_sign": (q.SteSign, 1),
    "approx_sign": (q.ApproxSign, 1),
    "swish_sign": (q.SwishSign, 1),
    "ste_heaviside": (q.SteHeaviside, 1),
    "magnitude_aware_sign": (q.MagnitudeAwareSign, 1),
    "ste_tern": (q.SteTern, 2),
    "dorefa": (q.DoReFa, 2),
    "noop": (q.NoOp, 32),
    "rsign": (q.RSign, 1),
    "clipped_sign": (q.ClippedSign, 1),
    "symmetric_quant": (q.SymmetricQuantizer, 8),
    "unsigned_quant": (q.UnsignedQuantizer, 8),
}


@pytest.mark.parametrize("alias", sorted(EXPECTED))
def test_get_alias_returns_new_module_with_precision(alias):
    cls, precision = EXPECTED[alias]
    a, b = q.get(alias), q.get(alias)
    assert type(a) is cls and a is not b
    assert q.precision_of(a) == precision
    assert q.get(cls.__name__).__class__ is cls  # class names resolve too


def test_list_quantizers():
    assert set(EXPECTED) <= set(q.list_quantizers())
    assert q.list_quantizers() == sorted(q.list_quantizers())


def test_get_passes_through_none_callables_and_modules():
    m = q.SteSign(0.5)
    assert q.get(None) is None
    assert q.get(m) is m
    assert q.get(q.ste_sign) is q.ste_sign
    lam = lambda x: x  # noqa: E731
    assert q.get(lam) is lam


def test_get_unknown_alias_lists_close_matches_and_known_names():
    with pytest.raises(ValueError) as err:
        q.get("ste_sgn")
    msg = str(err.value)
    assert "Did you mean 'ste_sign'" in msg
    for alias in EXPECTED:
        assert alias in msg
    with pytest.raises(ValueError, match="Known quantizers: approx_sign"):
        q.get("xyzzy")


def test_get_instantiates_quantizer_classes_and_rejects_other_classes():
    a, b = q.get(q.SteSign), q.get(q.DoReFa)
    assert type(a) is q.SteSign and a.clip_value == 1.0
    assert type(b) is q.DoReFa and b.precision == 2
    assert q.get(q.SteSign) is not a
    with pytest.raises(TypeError, match=r"a class; pass an instance.*ste_sign"):
        q.get(torch.nn.ReLU)


@pytest.mark.parametrize("bad", [3, 1.5, ["ste_sign"], {"name": "ste_sign"}])
def test_get_rejects_other_types(bad):
    with pytest.raises(TypeError, match="ste_sign"):
        q.get(bad)


def test_precision_of():
    assert q.precision_of(None) == 32
    assert q.precision_of(lambda x: x) == 32
    assert q.precision_of(q.ste_sign) == 1
    assert q.precision_of(q.ste_tern) == 2
    assert q.precision_of(q.DoReFa(k_bit=4)) == 4
    assert q.precision_of(q.NoOp(precision=8)) == 8
    assert q.precision_of(q.SymmetricQuantizer(bits=4)) == 4


def test_repr():
    assert repr(q.SteSign(1.25)) == "SteSign(clip_value=1.25)"
    assert repr(q.DoReFa(3, "weights")) == "DoReFa(k_bit=3, mode='weights')"
    assert repr(q.ClippedSign()) == "ClippedSign(bound=3.0, half_scale=False)"


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "make,error,match",
    [
        (lambda: q.SteSign(0.0), ValueError, "clip_value must be a finite number > 0"),
        (lambda: q.SteSign(-1.0), ValueError, "clip_value"),
        (lambda: q.SteSign(math.nan), ValueError, "clip_value"),
        (lambda: q.SteSign("1"), TypeError, "clip_value"),
        (lambda: q.SwishSign(beta=0), ValueError, "beta"),
        (lambda: q.SteTern(threshold_value=-0.1), ValueError, "threshold_value"),
        (lambda: q.SteTern(ternary_weight_networks=1), TypeError, "ternary_weight_networks"),
        (lambda: q.DoReFa(k_bit=0), ValueError, r"k_bit must be in \[1, 16\]"),
        (lambda: q.DoReFa(k_bit=17), ValueError, "k_bit"),
        (lambda: q.DoReFa(k_bit=2.0), TypeError, "k_bit"),
        (lambda: q.DoReFa(mode="weight"), ValueError, r"\['activations', 'weights'\]"),
        (lambda: q.ClippedSign(bound=0), ValueError, "bound"),
        (lambda: q.ClippedSign(half_scale="yes"), TypeError, "half_scale"),
        (lambda: q.SymmetricQuantizer(bits=1), ValueError, "bits"),
        (lambda: q.UnsignedQuantizer(bits=0), ValueError, "bits"),
        (lambda: q.NoOp(precision=0), ValueError, "precision"),
        (lambda: q.ste_sign(torch.zeros(2), clip_value=0), ValueError, "clip_value"),
        (lambda: q.dorefa(torch.zeros(2), mode="both"), ValueError, "mode"),
    ],
)
def test_bad_arguments(make, error, match):
    with pytest.raises(error, match=match):
        make()


@pytest.mark.parametrize("alias", sorted(set(EXPECTED) - {"rsign"}))
@pytest.mark.parametrize("dtype", [torch.int32, torch.int64, torch.bool, torch.uint8])
def test_non_float_inputs_are_rejected(alias, dtype):
    x = torch.ones(2, 3, dtype=dtype)
    with pytest.raises(TypeError, match="floating-point"):
        q.get(alias)(x)


def test_ops_reject_non_float_when_called_directly():
    with pytest.raises(TypeError, match=r"bnnkit::ste_sign: expected a floating-point"):
        torch.ops.bnnkit.ste_sign(torch.ones(3, dtype=torch.int64), 1.0)
    with pytest.raises(TypeError, match="floating-point"):
        q.rsign(torch.ones(2, 3, dtype=torch.int64), torch.zeros(3))
    with pytest.raises(TypeError, match="torch.Tensor"):
        q.ste_sign([1.0, 2.0])


OPCHECK_ARGS = {
    "ste_sign": (1.0,),
    "approx_sign": (),
    "swish_sign": (5.0,),
    "ste_heaviside": (None,),
    "magnitude_aware_sign": (1.0,),
    "rsign": ("shift",),
    "clipped_sign": (3.0, True),
    "ste_tern": (0.05, True, 1.0),
    "dorefa": (2, "weights"),
    "noop": (8,),
    "symmetric_quant": (4, True, None),
    "unsigned_quant": (4, 2.0),
}


@pytest.mark.parametrize("name", sorted(OPCHECK_ARGS))
def test_opcheck_schema_fake_and_autograd_registration(name):
    """torch.library.opcheck: schema, fake kernel, autograd registration, AOT dispatch."""
    assert set(OPCHECK_ARGS) == {cls.op_name.split("::")[1] for cls, _ in EXPECTED.values()}
    x = torch.randn(2, 3, 4, 4, requires_grad=True)
    args = [torch.zeros(3, requires_grad=True) if a == "shift" else a for a in OPCHECK_ARGS[name]]
    result = torch.library.opcheck(getattr(torch.ops.bnnkit, name).default, (x, *args))
    assert set(result.values()) == {"SUCCESS"}


def test_rsign_lazy_shift_from_first_input():
    m = q.get("rsign")
    assert m.shift is None
    y = m(torch.tensor([[0.5, -0.5, 0.0]]))
    assert m.channels == 3 and m.shift.shape == (3,) and y.tolist() == [[1, -1, 1]]
    assert [n for n, _ in m.named_parameters()] == ["shift"]
    with pytest.raises(ValueError, match="shift of shape"):
        m(torch.zeros(1, 4))
