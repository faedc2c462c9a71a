"""Tests for bnnkit.optim: Bop (Larq 0.14 semantics), CaseOptimizer, split_parameters,
make_bop_optimizer and FlipRatio. Expected values are derived by hand in the comments."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from torch import nn

from bnnkit.optim import (
    Bop,
    CaseOptimizer,
    FlipRatio,
    StepDecay,
    make_bop_optimizer,
    split_parameters,
)

F32 = torch.float32
QUARTER_UP = float(np.nextafter(np.float32(0.25), np.float32(1)))  # smallest f32 > 0.25
QUARTER_DOWN = float(np.nextafter(np.float32(0.25), np.float32(0)))  # largest f32 < 0.25


def param(values, dtype=F32):
    return nn.Parameter(torch.tensor(values, dtype=dtype))


def bop_step(opt, p, grad):
    p.grad = torch.as_tensor(grad, dtype=p.dtype).clone()
    opt.step()
    return p.detach().clone()


def momentum(opt, p):
    return opt.state[p]["momentum"]


# ----------------------------------------------------------------------------- Bop: flips


def test_tie_makes_weight_plus_one_whatever_it_was():
    # gamma 0.5, g = +-0.5 -> m = +-0.25, so w*m == 0.25 == threshold for both weights.
    p = param([1.0, -1.0])
    opt = Bop([p], gamma=0.5, threshold=0.25)
    assert bop_step(opt, p, [0.5, -0.5]).tolist() == [1.0, 1.0]
    assert momentum(opt, p).tolist() == [0.25, -0.25]


def test_strict_inequality_just_above_and_below_threshold():
    # gamma = 1 -> m = g. w*m one ulp above tau flips, one ulp below keeps.
    p = param([1.0, 1.0, -1.0, -1.0])
    opt = Bop([p], gamma=1.0, threshold=0.25)
    grads = [QUARTER_UP, QUARTER_DOWN, -QUARTER_UP, -QUARTER_DOWN]
    assert bop_step(opt, p, grads).tolist() == [-1.0, 1.0, 1.0, -1.0]


def test_flip_needs_momentum_to_agree_with_weight():
    # w*m < 0 never flips, however large |m| is (sign(m) != sign(w)).
    p = param([1.0, -1.0])
    opt = Bop([p], gamma=1.0, threshold=1e-8)
    assert bop_step(opt, p, [-5.0, 5.0]).tolist() == [1.0, -1.0]
    assert bop_step(opt, p, [5.0, -5.0]).tolist() == [-1.0, 1.0]


def test_first_step_binarizes_real_weights():
    # Zero gradient: w*m = 0 < tau -> w <- sign(w) with sign(0) = sign(-0) = +1.
    p = param([0.3, -0.2, 0.0, -0.0, 2.5, -7.0])
    opt = Bop([p])
    assert bop_step(opt, p, [0.0] * 6).tolist() == [1, -1, 1, 1, 1, -1]


def test_first_step_binarizes_and_flips_real_weights():
    # gamma 1, tau 0.1: w*m = [0.3, 0.05, -0.2, 0.0] -> [flip -> -1, keep +1, keep -1, +1]
    p = param([0.3, 0.5, -0.2, 0.0])
    opt = Bop([p], gamma=1.0, threshold=0.1)
    assert bop_step(opt, p, [1.0, 0.1, 1.0, 3.0]).tolist() == [-1, 1, -1, 1]


def test_zero_threshold_zero_gradient_is_a_tie():
    # Larq exactness: tau = 0 and m = 0 give w*m - tau = 0 -> every weight becomes +1.
    p = param([1.0, -1.0, -1.0])
    opt = Bop([p], threshold=0.0)
    assert bop_step(opt, p, [0.0, 0.0, 0.0]).tolist() == [1, 1, 1]


def test_momentum_accumulates_over_steps():
    # gamma 0.5, g = 1: m = 0.5, 0.75, 0.875, 0.9375. tau = 0.8 -> w = +1 flips at step 3;
    # at step 4 w = -1 and w*m = -0.9375 < tau, so it stays -1.
    p = param([1.0])
    opt = Bop([p], gamma=0.5, threshold=0.8)
    expected = [(0.5, 1.0), (0.75, 1.0), (0.875, -1.0), (0.9375, -1.0)]
    for m, w in expected:
        assert bop_step(opt, p, [1.0]).tolist() == [w]
        assert momentum(opt, p).tolist() == [m]
    # Opposite gradients pull m back: m = 0.9375 + 0.5(-3 - 0.9375) = -1.03125,
    # w*m = 1.03125 > 0.8 -> flips back to +1.
    assert bop_step(opt, p, [-3.0]).tolist() == [1.0]
    assert momentum(opt, p).tolist() == [-1.03125]


def larq_bop_oracle(w, grads, gamma, tau):
    """Larq 0.14's Bop._resource_apply_dense in numpy float64."""
    m = np.zeros_like(w)
    for g in grads:
        m = m + gamma * (g - m)
        w = np.sign(np.sign(-np.sign(w * m - tau) * w) + 0.1)  # larq.math.sign
    return w, m


def test_matches_numpy_oracle_on_random_sequences():
    rng = np.random.default_rng(0)
    w0 = rng.normal(size=(7, 5))
    grads = rng.normal(scale=1e-2, size=(12, 7, 5))
    p = param(w0, torch.float64)
    opt = Bop([p], gamma=0.3, threshold=2e-3)
    for g in grads:
        bop_step(opt, p, g)
    w, m = larq_bop_oracle(w0, grads, 0.3, 2e-3)
    np.testing.assert_array_equal(p.detach().numpy(), w)
    np.testing.assert_allclose(momentum(opt, p).numpy(), m, rtol=1e-12)
    assert 0 < (w != np.sign(w0 + 1e-300)).sum()  # something flipped


def test_weights_stay_exactly_plus_minus_one_in_their_dtype():
    torch.manual_seed(0)
    for dtype in (torch.float16, torch.bfloat16, F32, torch.float64):
        p = nn.Parameter(torch.randn(64, dtype=dtype))
        opt = Bop([p], gamma=0.5, threshold=1e-3)
        for _ in range(5):
            bop_step(opt, p, torch.randn(64))
        assert p.dtype == dtype
        assert bool(((p == 1) | (p == -1)).all())


def test_parameter_without_gradient_is_untouched():
    a, b = param([0.3, -0.4]), param([0.7])
    opt = Bop([a, b], gamma=1.0)
    a.grad = torch.zeros(2)
    opt.step()
    assert a.tolist() == [1, -1] and b.tolist() == pytest.approx([0.7])
    assert b not in opt.state
    assert opt.param_groups[0]["step"] == 1


def test_closure_is_evaluated_with_grad():
    p = param([1.0])
    opt = Bop([p], gamma=1.0, threshold=0.1)

    def closure():
        opt.zero_grad()
        loss = (p * 2.0).sum()  # dloss/dp = 2 -> m = 2, w*m = 2 > 0.1 -> flip
        loss.backward()
        return loss

    assert opt.step(closure).item() == 2.0
    assert p.tolist() == [-1.0]


# ------------------------------------------------------------------- Bop: hyper-parameters


def test_schedules_are_called_with_completed_step_count():
    # gamma_t = 1, 0.5, 0.25; g = 1, 0, 0 -> m = 1, 0.5, 0.375.
    # tau_t = 2, 0.6, 0.1 -> w*m < tau, < tau, > tau: w flips only at the third step.
    seen = []

    def tau(step):
        seen.append(step)
        return [2.0, 0.6, 0.1][step]

    p = param([1.0])
    opt = Bop([p], gamma=StepDecay(1.0, 0.5, 1), threshold=tau)
    results = [bop_step(opt, p, [g]).item() for g in (1.0, 0.0, 0.0)]
    assert results == [1.0, 1.0, -1.0]
    assert momentum(opt, p).tolist() == [0.375]
    assert seen == [0, 1, 2]


def test_step_decay_values():
    s = StepDecay(1e-3, 0.1, 100)
    assert [s(0), s(99), s(100), s(250)] == pytest.approx([1e-3, 1e-3, 1e-4, 1e-5])
    with pytest.raises(ValueError, match="every"):
        StepDecay(1.0, 0.5, 0)


def test_schedule_returning_bad_value_raises_naming_the_step():
    p = param([1.0])
    opt = Bop([p], gamma=lambda step: 1.0 if step == 0 else 2.0)
    bop_step(opt, p, [0.0])
    p.grad = torch.zeros(1)
    with pytest.raises(ValueError, match=r"gamma must be in \(0, 1\].*step 1"):
        opt.step()


def test_param_groups_override_gamma_and_threshold():
    a, b = param([1.0]), param([1.0])
    opt = Bop([{"params": [a]}, {"params": [b], "gamma": 1.0, "threshold": 0.5}], gamma=0.5)
    a.grad, b.grad = torch.tensor([0.6]), torch.tensor([0.4])
    opt.step()
    # group 0 (gamma 0.5, tau 1e-8): m = 0.5 * 0.6 = 0.3 > tau -> flips.
    # group 1 (gamma 1, tau 0.5): m = 0.4 < tau -> kept (with group 0's tau it would flip).
    assert a.tolist() == [-1.0] and b.tolist() == [1.0]
    assert momentum(opt, a).tolist() == pytest.approx([0.3])
    assert momentum(opt, b).tolist() == pytest.approx([0.4])


@pytest.mark.parametrize(
    "kwargs, error",
    [
        (dict(gamma=0.0), ValueError),
        (dict(gamma=1.5), ValueError),
        (dict(gamma=-1e-4), ValueError),
        (dict(gamma=math.nan), ValueError),
        (dict(threshold=-1e-8), ValueError),
        (dict(threshold=math.inf), ValueError),
        (dict(gamma="fast"), TypeError),
        (dict(threshold=True), TypeError),
    ],
)
def test_bad_hyper_parameters_raise_at_construction(kwargs, error):
    with pytest.raises(error, match="Bop"):
        Bop([param([1.0])], **kwargs)


def test_gamma_one_is_allowed_and_bad_group_override_raises():
    Bop([param([1.0])], gamma=1.0, threshold=0.0)
    with pytest.raises(ValueError, match="gamma"):
        Bop([{"params": [param([1.0])], "gamma": 2.0}])


def test_integer_parameters_are_rejected():
    with pytest.raises(TypeError, match="floating point"):
        Bop([torch.ones(3, dtype=torch.int32)])


# ---------------------------------------------------------------------- Bop: bad input


def test_nan_gradient_raises_naming_parameter_and_changes_nothing():
    good, bad = param([1.0, -1.0]), param([1.0, 1.0])
    opt = Bop([("layer1.weight", good), ("layer2.weight", bad)], gamma=1.0)
    bop_step(opt, good, [0.5, 0.5])  # only `good` has a gradient (and state) so far
    before = good.detach().clone(), momentum(opt, good).clone()
    good.grad = torch.tensor([1.0, -1.0])
    bad.grad = torch.tensor([float("nan"), 0.0])
    with pytest.raises(FloatingPointError, match="'layer2.weight'.*NaN or inf"):
        opt.step()
    assert torch.equal(good, before[0]) and torch.equal(momentum(opt, good), before[1])
    assert bad.tolist() == [1.0, 1.0] and bad not in opt.state
    bad.grad = torch.tensor([math.inf, 0.0])
    with pytest.raises(FloatingPointError, match="layer2.weight"):
        opt.step()


def test_unnamed_parameter_is_named_by_its_position():
    p = param([[1.0, 1.0]])
    opt = Bop([p])
    p.grad = torch.tensor([[0.0, -math.inf]])
    with pytest.raises(FloatingPointError, match=r"param_groups\[0\]\['params'\]\[0\]"):
        opt.step()


def test_non_binary_values_after_binarization_raise():
    p = param([0.5, -0.5, 2.0])
    opt = Bop([("w", p)])
    bop_step(opt, p, [0.0, 0.0, 0.0])  # first step binarizes: [1, -1, 1]
    with torch.no_grad():
        p[2] = 0.9  # e.g. weight decay from another optimizer
    p.grad = torch.zeros(3)
    with pytest.raises(ValueError, match=r"'w' holds 1 value\(s\) that are not \+-1"):
        opt.step()
    assert p.tolist() == pytest.approx([1.0, -1.0, 0.9])


def test_non_finite_initial_weight_raises():
    p = param([1.0, math.nan])
    opt = Bop([p])
    p.grad = torch.zeros(2)
    with pytest.raises(ValueError, match="non-finite initial"):
        opt.step()


# ------------------------------------------------------------------- Bop: checkpoints


def grad_sequence(n, shape, seed):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=gen) * 1e-2 for _ in range(n)]


def roundtrip(state_dict):
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def test_state_dict_round_trip_continues_like_uninterrupted_training():
    w0 = torch.randn(6, 4, generator=torch.Generator().manual_seed(1))
    grads = grad_sequence(10, (6, 4), seed=2)
    kwargs = dict(gamma=StepDecay(0.5, 0.5, 3), threshold=3e-3)

    full = nn.Parameter(w0.clone())
    opt = Bop([full], **kwargs)
    for g in grads:
        bop_step(opt, full, g)

    half = nn.Parameter(w0.clone())
    opt = Bop([half], **kwargs)
    for g in grads[:5]:
        bop_step(opt, half, g)
    saved, saved_w = roundtrip(opt.state_dict()), half.detach().clone()
    assert saved["param_groups"][0]["step"] == 5
    assert saved["param_groups"][0]["gamma"] == "<schedule>"

    resumed = nn.Parameter(saved_w)
    opt = Bop([resumed], **kwargs)
    opt.load_state_dict(saved)
    assert opt.param_groups[0]["step"] == 5 and opt.param_groups[0]["gamma"] is kwargs["gamma"]
    for g in grads[5:]:
        bop_step(opt, resumed, g)
    assert torch.equal(resumed, full)
    assert 0 < int((full != torch.where(w0 >= 0, 1.0, -1.0)).sum())  # something flipped


def test_loading_a_schedule_checkpoint_into_a_constant_bop_raises():
    p = param([1.0])
    opt = Bop([p], gamma=lambda step: 0.5)
    bop_step(opt, p, [0.0])
    other = Bop([param([1.0])], gamma=0.5)
    with pytest.raises(ValueError, match="schedule for gamma"):
        other.load_state_dict(opt.state_dict())


# -------------------------------------------------------------------- split_parameters


class _Quantizer(nn.Module):
    def __init__(self, precision):
        super().__init__()
        self.precision = precision


class _QuantLinear(nn.Linear):
    """Duck-typed stand-in: split_parameters only reads kernel_quantizer.precision."""

    def __init__(self, n_in, n_out, precision=1, bias=True):
        super().__init__(n_in, n_out, bias=bias)
        self.kernel_quantizer = _Quantizer(precision)


def test_split_parameters_duck_typed():
    shared = _QuantLinear(4, 4)
    model = nn.Sequential(
        nn.Linear(3, 4),  # float
        _QuantLinear(4, 4, bias=False),  # binary weight
        nn.BatchNorm1d(4),
        shared,
        shared,  # the same layer twice: its weight must appear once
        _QuantLinear(4, 2, precision=8),  # 8-bit: not binary
    )
    model.register_parameter("shift", nn.Parameter(torch.zeros(4)))
    binary, other = split_parameters(model)
    assert [id(p) for p in binary] == [id(model[1].weight), id(shared.weight)]
    all_ids = [id(p) for p in model.parameters()]
    assert sorted(map(id, binary + other)) == sorted(all_ids)
    assert len(binary) + len(other) == len(all_ids) == 10
    assert id(model[5].weight) in map(id, other) and id(model.shift) in map(id, other)


# ----------------------------------------------------------------------- CaseOptimizer


def test_case_optimizer_with_lr_scheduler():
    w, b = param([1.0, -1.0]), param([0.0])
    bop = Bop([w], gamma=1.0, threshold=0.5)
    sgd = torch.optim.SGD([b], lr=1.0)
    opt = CaseOptimizer(bop, sgd)
    assert len(opt.param_groups) == 2 and opt.param_groups[1] is sgd.param_groups[0]
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    # SGD: b = 0 - 1*1 = -1, then lr 0.5: -1.5, then lr 0.25: -1.75.
    # Bop ignores lr: g = [0.6, 0.4] -> m = g; w*m = [0.6, -0.4] -> only w[0] flips;
    # then g = [-0.6, -0.6]: w*m = [0.6, 0.6] -> both flip; then g = [0.6, -0.6]:
    # w*m = [0.6, -0.6] -> only w[0] flips.
    expected = [(-1.0, [-1.0, -1.0]), (-1.5, [1.0, 1.0]), (-1.75, [-1.0, 1.0])]
    for grad_w, (b_val, w_val) in zip(([0.6, 0.4], [-0.6, -0.6], [0.6, -0.6]), expected):
        w.grad, b.grad = torch.tensor(grad_w), torch.tensor([1.0])
        opt.step()
        sched.step()
        assert b.item() == b_val and w.tolist() == w_val
    assert sgd.param_groups[0]["lr"] == 0.125
    assert bop.param_groups[0]["gamma"] == 1.0


def test_case_optimizer_with_cosine_schedule_and_adam():
    model = nn.Sequential(_QuantLinear(3, 3), nn.Linear(3, 1))
    opt = make_bop_optimizer(model, gamma=1e-2, threshold=1e-4, lr=0.1)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4)
    lrs = []
    for _ in range(4):
        model(torch.randn(5, 3)).sum().backward()
        opt.step()
        opt.zero_grad()
        sched.step()
        lrs.append(opt.optimizers[1].param_groups[0]["lr"])
    # eta_t = 0.1 * (1 + cos(pi t / 4)) / 2
    expected = [0.1 * (1 + math.cos(math.pi * t / 4)) / 2 for t in (1, 2, 3, 4)]
    assert lrs == pytest.approx(expected)
    w = model[0].weight
    assert bool(((w == 1) | (w == -1)).all())


def test_case_optimizer_zero_grad():
    a, b = param([1.0]), param([2.0])
    opt = CaseOptimizer(Bop([a]), torch.optim.Adam([b]))
    a.grad, b.grad = torch.ones(1), torch.ones(1)
    opt.zero_grad(set_to_none=False)
    assert a.grad.tolist() == [0.0] and b.grad.tolist() == [0.0]
    opt.zero_grad()
    assert a.grad is None and b.grad is None


def test_case_optimizer_rejects_overlap_and_non_optimizers():
    shared = param([1.0, 1.0])
    owners = r"optimizer 0 \(Bop\) and in optimizer 1 \(SGD\).*disjoint"
    with pytest.raises(ValueError, match=owners):
        CaseOptimizer(Bop([shared]), torch.optim.SGD([shared, param([0.0])], lr=0.1))
    with pytest.raises(TypeError, match="argument 1 is list"):
        CaseOptimizer(Bop([shared]), [shared])
    with pytest.raises(ValueError, match="at least one"):
        CaseOptimizer()


def test_case_optimizer_closure_and_step_hooks():
    w, b = param([1.0]), param([0.0])
    opt = CaseOptimizer(Bop([w], gamma=1.0, threshold=0.1), torch.optim.SGD([b], lr=0.5))
    calls = []
    opt.register_step_post_hook(lambda *_: calls.append("post"))

    def closure():
        calls.append("closure")
        opt.zero_grad()
        loss = (2.0 * w + 3.0 * b).sum()
        loss.backward()
        return loss

    assert opt.step(closure).item() == 2.0
    assert calls == ["closure", "post"]
    assert w.tolist() == [-1.0] and b.tolist() == [-1.5]


def _train_steps(model, opt, data, steps):
    x, y = data
    for i in steps:
        opt.zero_grad()
        nn.functional.cross_entropy(model(x[i]), y[i]).backward()
        opt.step()


def _toy_model(seed):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8), _QuantLinear(8, 8), nn.BatchNorm1d(8), nn.Linear(8, 3))


def test_case_optimizer_state_dict_round_trip_continues_identically():
    gen = torch.Generator().manual_seed(3)
    data = torch.randn(8, 16, 4, generator=gen), torch.randint(0, 3, (8, 16), generator=gen)
    full = _toy_model(0)
    opt = make_bop_optimizer(full, gamma=1e-1, threshold=1e-3, lr=1e-2)
    _train_steps(full, opt, data, range(8))

    half = _toy_model(0)
    opt = make_bop_optimizer(half, gamma=1e-1, threshold=1e-3, lr=1e-2)
    _train_steps(half, opt, data, range(4))
    saved = roundtrip({"model": half.state_dict(), "opt": opt.state_dict()})

    resumed = _toy_model(1)  # different initialization: everything must come from `saved`
    resumed.load_state_dict(saved["model"])
    opt = make_bop_optimizer(resumed, gamma=1e-1, threshold=1e-3, lr=1e-2)
    opt.load_state_dict(saved["opt"])
    _train_steps(resumed, opt, data, range(4, 8))
    for (name, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_case_optimizer_load_state_dict_mismatch():
    opt = CaseOptimizer(Bop([param([1.0])]), torch.optim.Adam([param([0.0])]))
    other = CaseOptimizer(Bop([param([1.0])]), torch.optim.SGD([param([0.0])], lr=0.1))
    with pytest.raises(ValueError, match=r"\['Bop', 'Adam'\].*\['Bop', 'SGD'\]"):
        other.load_state_dict(opt.state_dict())
    with pytest.raises(ValueError, match="not a CaseOptimizer state_dict"):
        other.load_state_dict(other.optimizers[1].state_dict())


def test_make_bop_optimizer_choices_and_errors():
    model = nn.Sequential(_QuantLinear(3, 3), nn.Linear(3, 1))
    opt = make_bop_optimizer(model, other="SGD", lr=0.1, weight_decay=1e-4, momentum=0.9)
    bop, sgd = opt.optimizers
    assert isinstance(bop, Bop) and isinstance(sgd, torch.optim.SGD)
    assert bop.param_groups[0]["param_names"] == ["0.weight"]
    assert sgd.param_groups[0]["param_names"] == ["0.bias", "1.weight", "1.bias"]
    assert sgd.param_groups[0]["momentum"] == 0.9 and sgd.param_groups[0]["weight_decay"] == 1e-4
    known = r"\['adam', 'adamw', 'sgd'\]"
    with pytest.raises(ValueError, match=r"unknown optimizer 'rmsprop'.*" + known):
        make_bop_optimizer(model, other="rmsprop")
    with pytest.raises(ValueError, match="no binary weight"):
        make_bop_optimizer(nn.Linear(2, 2))
    only_binary = make_bop_optimizer(_QuantLinear(2, 2, bias=False))
    assert [type(o) for o in only_binary.optimizers] == [Bop]


# --------------------------------------------------------------------------- FlipRatio


def test_flip_ratio_on_a_constructed_sequence():
    a, b = param([1.0, 1.0, -1.0]), param([-1.0])  # N = 4
    fr = FlipRatio([a, b])
    assert fr.update() is None and fr.value is None  # first update ignored

    def set_weights(va, vb):
        with torch.no_grad():
            a.copy_(torch.tensor(va))
            b.copy_(torch.tensor(vb))

    set_weights([-1.0, 1.0, -1.0], [-1.0])  # 1 of 4 flipped
    assert fr.update() == 0.25
    set_weights([1.0, 0.0, -1.0], [1.0])  # a[0] and b flip; 0.0 counts as +1 (no flip)
    assert fr.update() == 0.5
    assert fr.value == pytest.approx(0.375)
    assert fr.update() == 0.0  # nothing changed
    assert fr.value == pytest.approx(0.25) and fr.count == 3 and fr.last == 0.0
    fr.reset()
    assert fr.update() is None and fr.value is None


def test_flip_ratio_attached_to_bop_counts_its_flips():
    p = param([1.0, 1.0, 1.0, 1.0])
    opt = Bop([p], gamma=1.0, threshold=0.5)
    fr = FlipRatio(p)
    handle = fr.attach(opt)
    ratios = []
    for g in ([0.0] * 4, [1.0, 1.0, 0.0, 0.0], [1.0] * 4):
        bop_step(opt, p, g)
        ratios.append(fr.last)
    # step 2: w*m = [1, 1, 0, 0] -> 2 flips; step 3: w = [-1,-1,1,1], w*m = [-1,-1,1,1] -> 2.
    assert ratios == [None, 0.5, 0.5]
    handle.remove()
    with pytest.raises(ValueError, match="no parameters"):
        FlipRatio([])


def test_flip_ratio_from_a_model_watches_its_binary_weights():
    model = nn.Sequential(nn.Linear(2, 3), _QuantLinear(3, 5))
    fr = FlipRatio(model)
    assert fr.params == [model[1].weight] and fr.size == 15


# ------------------------------------------------- with bnnkit.nn layers, end to end


def test_split_parameters_on_bnnkit_nn_layers():
    from bnnkit.nn import QuantConv2d, QuantLinear

    model = nn.Sequential(
        QuantConv2d(3, 4, 3, kernel_quantizer="ste_sign"),  # binary kernel, float bias
        QuantConv2d(4, 4, 3, bias=False, input_quantizer="ste_sign",
                    kernel_quantizer="magnitude_aware_sign"),  # precision 1 too
        QuantConv2d(4, 4, 1, bias=False, kernel_quantizer="dorefa"),  # 2-bit: not binary
        nn.Flatten(),
        QuantLinear(4, 2, input_quantizer="ste_sign"),  # no kernel quantizer: float
    )
    binary, other = split_parameters(model)
    assert [id(p) for p in binary] == [id(model[0].weight), id(model[1].weight)]
    assert [id(p) for p in other] == [
        id(model[0].bias), id(model[2].weight), id(model[4].weight), id(model[4].bias)
    ]


def _train_toy_binary_mlp(threshold):
    """Bop + Adam on 4 Gaussian clusters in R^16; returns (accuracy, model, flip ratio)."""
    from bnnkit.nn import QuantLinear

    torch.manual_seed(0)
    centers = torch.randn(4, 16)
    y = torch.randint(0, 4, (512,))
    x = centers[y] + 0.5 * torch.randn(512, 16)
    model = nn.Sequential(
        QuantLinear(16, 32, bias=False, kernel_quantizer="ste_sign"),
        nn.BatchNorm1d(32),
        QuantLinear(32, 4, bias=False, input_quantizer="ste_sign", kernel_quantizer="ste_sign"),
        nn.BatchNorm1d(4),
    )
    opt = make_bop_optimizer(model, gamma=1e-2, threshold=threshold, lr=1e-2)
    flips = FlipRatio(model)
    flips.attach(opt)
    for _ in range(8):
        for i in range(0, 512, 64):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[i : i + 64]), y[i : i + 64]).backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(x).argmax(1) == y).float().mean().item()
    return accuracy, model, flips


def test_binary_mlp_trained_with_bop_and_adam_learns_a_toy_task():
    accuracy, model, flips = _train_toy_binary_mlp(threshold=1e-6)
    # Control: a threshold no |m| reaches freezes the binary weights after the first
    # (binarizing) step, leaving only batch-norm to Adam. Bop's flips must matter.
    frozen_accuracy, _, frozen_flips = _train_toy_binary_mlp(threshold=1e9)
    assert accuracy >= 0.95  # chance is 0.25
    assert frozen_accuracy <= 0.85 and accuracy - frozen_accuracy >= 0.15
    assert flips.value > 0 and frozen_flips.value == 0
    for w in split_parameters(model)[0]:
        assert w.dtype == F32 and bool(((w == 1) | (w == -1)).all())
