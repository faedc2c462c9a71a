"""Activations and small learnable blocks used around binary layers.

Functions ``hard_tanh`` and ``leaky_tanh`` follow Larq's ``larq.activations`` (including
the gradient at the kinks, see :func:`leaky_tanh`). The per-channel modules
(``LearnableBias``, ``RPReLU``, ``DPReLU``) work on channel axis 1, for NCHW feature maps
as well as (N, C) or (N, C, L) inputs; parameters have shape (C,).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..quantizers._base import channel_view, check_int, check_positive


def hard_tanh(x: Tensor) -> Tensor:
    r"""Hard tanh (Larq): y = clip(x, -1, 1); gradient 1 on [-1, 1] (inclusive), else 0."""
    return x.clamp(-1.0, 1.0)


def leaky_tanh(x: Tensor, alpha: float = 0.2) -> Tensor:
    r"""Leaky tanh (Larq): hard tanh with slope ``alpha`` outside [-1, 1].

    y = clip(x, -1, 1) + alpha (max(x, 1) - 1) + alpha (min(x, -1) + 1).
    Gradient: 1 inside (-1, 1), alpha outside, and 1 + alpha at exactly x = +-1 (TF's
    clip and max/min both pass the gradient on ties; torch.maximum would split it).
    """
    zero = torch.zeros_like(x)
    above = torch.where(x >= 1.0, x - 1.0, zero)
    below = torch.where(x <= -1.0, x + 1.0, zero)
    return x.clamp(-1.0, 1.0) + alpha * (above + below)


class HardTanh(nn.Module):
    """Module form of :func:`hard_tanh`."""

    def forward(self, x: Tensor) -> Tensor:
        return hard_tanh(x)


class LeakyTanh(nn.Module):
    """Module form of :func:`leaky_tanh`."""

    def __init__(self, alpha: float = 0.2):
        super().__init__()
        self.alpha = check_positive("alpha", alpha)

    def forward(self, x: Tensor) -> Tensor:
        return leaky_tanh(x, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


def _check_input(module: nn.Module, x: Tensor, channels: int) -> None:
    if x.dim() < 2 or x.shape[1] != channels:
        raise ValueError(
            f"{type(module).__name__}({channels}) expects input of shape (N, {channels}, ...), "
            f"got {tuple(x.shape)}"
        )


class LearnableBias(nn.Module):
    """y = x + b, one learnable b per channel (init 0) -- ReActNet's shift."""

    def __init__(self, channels: int):
        super().__init__()
        self.channels = check_int("channels", channels, 1, 1 << 24)
        self.bias = nn.Parameter(torch.zeros(self.channels))

    def forward(self, x: Tensor) -> Tensor:
        _check_input(self, x, self.channels)
        return x + channel_view(self.bias, x)

    def extra_repr(self) -> str:
        return f"{self.channels}"


class RPReLU(nn.Module):
    r"""ReActNet's RPReLU: shift -> PReLU (per-channel slope) -> shift.

    y = PReLU(x - gamma; beta) + zeta, i.e. y = x - gamma + zeta where x > gamma, else
    beta (x - gamma) + zeta. Init gamma = zeta = 0, beta = ``init_slope`` (0.25).
    Reference: Liu et al., "ReActNet", arXiv 2003.03488, eq. (4).
    """

    def __init__(self, channels: int, init_slope: float = 0.25):
        super().__init__()
        self.channels = check_int("channels", channels, 1, 1 << 24)
        self.shift_in = nn.Parameter(torch.zeros(self.channels))
        self.slope = nn.Parameter(torch.full((self.channels,), float(init_slope)))
        self.shift_out = nn.Parameter(torch.zeros(self.channels))

    def forward(self, x: Tensor) -> Tensor:
        _check_input(self, x, self.channels)
        y = F.prelu(x - channel_view(self.shift_in, x), self.slope)
        return y + channel_view(self.shift_out, x)

    def extra_repr(self) -> str:
        return f"{self.channels}"


class DPReLU(nn.Module):
    r"""PokeBNN's dynamic PReLU.

    y = s (x - b_x) - b_y with s = pos_slope if x - b_x >= 0 else neg_slope, all per
    channel. Init b_x = b_y = 0, pos_slope = 1, neg_slope = 0.25.
    Reference: Zhang et al., "PokeBNN", arXiv 2112.00133, section 3.
    """

    def __init__(self, channels: int, pos_slope: float = 1.0, neg_slope: float = 0.25):
        super().__init__()
        self.channels = check_int("channels", channels, 1, 1 << 24)
        self.shift_x = nn.Parameter(torch.zeros(self.channels))
        self.shift_y = nn.Parameter(torch.zeros(self.channels))
        self.pos_slope = nn.Parameter(torch.full((self.channels,), float(pos_slope)))
        self.neg_slope = nn.Parameter(torch.full((self.channels,), float(neg_slope)))

    def forward(self, x: Tensor) -> Tensor:
        _check_input(self, x, self.channels)
        u = x - channel_view(self.shift_x, x)
        pos, neg = channel_view(self.pos_slope, x), channel_view(self.neg_slope, x)
        return torch.where(u >= 0, pos, neg) * u - channel_view(self.shift_y, x)

    def extra_repr(self) -> str:
        return f"{self.channels}"
