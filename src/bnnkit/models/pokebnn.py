"""PokeBNN (Zhang et al., "PokeBNN: A Binary Pursuit of Lightweight Accuracy", CVPR 2022,
arXiv 2112.00133; reference code: google/aqt, ``aqt/jax_legacy/jax/imagenet/pokebnn.py``).

A ResNet-50 bottleneck layout (blocks 3, 4, 6, 3; widths 64, 128, 256, 512 times a width
multiplier; expansion 4; stride 2 on the 3x3 conv of each stage's first block) in which
every conv is a *PokeConv*::

    y = BN1(bconv(x))                               binary conv, 1-bit input and weights
    y = y + reshape(x)                              local shortcut, channels zero-padded
    y = y + reshape(r)                              block shortcut r (third conv only), tiled
    y = BN2(DPReLU(y) * gate(x))                    gate: 4-bit squeeze-excite of x
    gate(x) = hardsigmoid(fc2(relu(fc1(mean_hw(x)))))   hardsigmoid(u) = relu6(u + 3) / 6

``reshape`` matches a shortcut to the output: when it has more channels they are averaged
in groups of ``C_in // C_out`` consecutive channels (the first ``C_out * g`` channels,
AQT's "consecutive" shrink); fewer channels are zero-padded (local) or tiled (block); a
spatial stride is matched by a 3x3 stride-2 average pool. fc1 maps C_in -> C_in // 8
(4-bit signed input, 4-bit weights, with bias), fc2 C_in // 8 -> C_out (4-bit unsigned
input after the ReLU, 4-bit weights, with bias).

*PokeInit* stem: 8-bit 4x4 stride-4 conv 3 -> 32 -> BN -> DPReLU -> 8-bit 3x3 conv 32 -> 64
with 32 groups -> BN -> DPReLU (a 56x56x64 map at 224x224). Head: global mean -> 8-bit
dense with bias. DPReLU: ``s (x - b_x) - b_y``, s = pos/neg slope per channel.

Quantization, as the reference configuration (``pokebnn_config.py``): binary activations
``clipped_sign`` with bound B = 3.0 (STE gradient where |x| <= B); binary weights
``ste_sign`` with an identity STE. AQT scales the binary weights by max|w| per output
channel and its activations by B/2; both scales are per output channel of a conv that is
followed by batch norm, which is invariant to them (exactly, up to its eps), so they are
left out and the layers keep the plain +-1 form the converter packs. The stem and the head
use 8-bit symmetric quantizers (per-channel max|w| weights, per-tensor max|x| inputs
where AQT calibrates a bound), the gate 4-bit ones. Binary convs pad with 0, as JAX pads
the quantized input; PyTorch pads symmetrically where JAX's 'SAME' puts the odd pixel at
the end, for the stride-2 conv and the shortcut's average pool alike.

Arithmetic computation effort (ACE = MACs x weight bits x input bits) at 224x224 and 1000
classes, as the reference's ``size_stats`` test: conv 4,091,469,824 and dense 131,072,000
for 1.0x; the 0.75x variant totals 2.59 G (paper: 2.6 G ACE, 70.5% top-1).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from bnnkit import nn as bnn
from bnnkit import quantizers

from ._blocks import GlobalAvgPool, check_input_size, conv_out
from ._registry import register_model

STAGES = ((3, 64, 1), (4, 128, 2), (6, 256, 2), (3, 512, 2))  # (blocks, width, stride)
EXPANSION = 4
STEM_CHANNELS, STEM_GROUPS = 64, 32
ACT_BOUND = 3.0  # clip bound of the binary activations (AQT fixed_bound)
SE_RATIO = 8  # fc1 maps C_in -> C_in // SE_RATIO


def _bn(channels: int, zero_init: bool = False) -> nn.BatchNorm2d:
    """Flax BatchNorm(momentum 0.9, eps 1e-5) = PyTorch momentum 0.1; gamma 0 if ``zero_init``."""
    bn = nn.BatchNorm2d(channels, eps=1e-5, momentum=0.1)
    if zero_init:
        nn.init.zeros_(bn.weight)
    return bn


def _kbit_conv(cin: int, cout: int, kernel: int, bits: int, *, stride=1, padding=0, groups=1,
               bias=False, unsigned_input=False) -> bnn.QuantConv2d:  # fmt: skip
    """A conv with ``bits``-bit symmetric per-channel weights and ``bits``-bit inputs."""
    act = quantizers.UnsignedQuantizer(bits) if unsigned_input else quantizers.SymmetricQuantizer(bits)
    return bnn.QuantConv2d(
        cin, cout, kernel, stride=stride, padding=padding, groups=groups, bias=bias,
        input_quantizer=act, kernel_quantizer=quantizers.SymmetricQuantizer(bits, per_channel=True),
        pad_value=0.0,
    )  # fmt: skip


def _binary_conv(cin: int, cout: int, kernel: int, stride: int) -> bnn.QuantConv2d:
    return bnn.QuantConv2d(
        cin, cout, kernel, stride=stride, padding=kernel // 2, bias=False,
        input_quantizer=quantizers.ClippedSign(ACT_BOUND),
        kernel_quantizer=quantizers.SteSign(clip_value=None),
        pad_value=0.0,
    )  # fmt: skip


class ShortcutReshape(nn.Module):
    """Match a shortcut (N, C_in, H, W) to (N, C_out, H / stride, W / stride).

    Channels: C_in > C_out -> mean over groups of g = C_in // C_out consecutive channels
    of the first C_out * g; C_in < C_out -> ``"zeropad"`` (zeros after the C_in channels)
    or ``"tile"`` (the C_in channels repeated, cut at C_out). Space: stride 2 -> 3x3
    average pool, stride 2, padding 1, padding counted (Flax's ``avg_pool``).
    """

    def __init__(self, cin: int, cout: int, stride: int, expand: str):
        super().__init__()
        if expand not in ("zeropad", "tile"):
            raise ValueError(f"expand must be 'zeropad' or 'tile', got {expand!r}")
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride!r}")
        self.cin, self.cout, self.stride, self.expand = cin, cout, stride, expand

    def _channels(self, r: Tensor) -> Tensor:
        if self.cin > self.cout:
            g = self.cin // self.cout
            n, _, h, w = r.shape
            return r[:, : self.cout * g].reshape(n, self.cout, g, h, w).mean(dim=2)
        if self.cin < self.cout and self.expand == "zeropad":
            return F.pad(r, (0, 0, 0, 0, 0, self.cout - self.cin))
        if self.cin < self.cout:
            reps = -(-self.cout // self.cin)
            return r.repeat(1, reps, 1, 1)[:, : self.cout]
        return r

    def forward(self, r: Tensor) -> Tensor:
        r = self._channels(r)
        if self.stride == 2:
            r = F.avg_pool2d(r, 3, stride=2, padding=1, count_include_pad=True)
        return r

    def extra_repr(self) -> str:
        return f"{self.cin}, {self.cout}, stride={self.stride}, expand={self.expand!r}"


class PokeGate(nn.Module):
    """The 4-bit squeeze-excite gate: hardsigmoid(fc2(relu(fc1(mean_hw(x))))), (N, C_out, 1, 1)."""

    def __init__(self, cin: int, cout: int, bits: int = 4):
        super().__init__()
        hidden = max(cin // SE_RATIO, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = _kbit_conv(cin, hidden, 1, bits, bias=True)
        self.relu = nn.ReLU()
        self.fc2 = _kbit_conv(hidden, cout, 1, bits, bias=True, unsigned_input=True)
        self.gate = nn.Hardsigmoid()

    def forward(self, x: Tensor) -> Tensor:
        return self.gate(self.fc2(self.relu(self.fc1(self.pool(x)))))


class PokeConv(nn.Module):
    """One PokeConv (see the module docstring); ``forward(x, r=None)``, ``r`` the block input."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1,
                 block_in: int | None = None, block_stride: int = 1):  # fmt: skip
        super().__init__()
        last = block_in is not None
        self.conv = _binary_conv(cin, cout, kernel, stride)
        self.bn = _bn(cout, zero_init=last)  # ResNet's zero-init of the block's last BN
        self.shortcut = ShortcutReshape(cin, cout, stride, "zeropad")
        self.block_shortcut = ShortcutReshape(block_in, cout, block_stride, "tile") if last else None
        self.act = bnn.DPReLU(cout)
        self.gate = PokeGate(cin, cout)
        self.bn_out = _bn(cout)

    def forward(self, x: Tensor, r: Tensor | None = None) -> Tensor:
        y = self.bn(self.conv(x)) + self.shortcut(x)
        if self.block_shortcut is not None:
            y = y + self.block_shortcut(r)
        return self.bn_out(self.act(y) * self.gate(x))


class PokeBottleneck(nn.Module):
    """Three PokeConvs: 1x1 C_in -> w, 3x3 w -> w (stride), 1x1 w -> 4w with the block shortcut."""

    def __init__(self, cin: int, width: int, stride: int):
        super().__init__()
        self.conv1 = PokeConv(cin, width, 1)
        self.conv2 = PokeConv(width, width, 3, stride)
        self.conv3 = PokeConv(width, EXPANSION * width, 1, block_in=cin, block_stride=stride)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv3(self.conv2(self.conv1(x)), x)


def _poke_init(in_channels: int) -> nn.Sequential:
    """PokeInit: 8-bit 4x4/4 conv -> BN -> DPReLU -> 8-bit grouped 3x3 conv -> BN -> DPReLU."""
    mid = STEM_GROUPS
    return nn.Sequential(
        _kbit_conv(in_channels, mid, 4, 8, stride=4),
        _bn(mid),
        bnn.DPReLU(mid),
        _kbit_conv(mid, STEM_CHANNELS, 3, 8, padding=1, groups=STEM_GROUPS),
        _bn(STEM_CHANNELS),
        bnn.DPReLU(STEM_CHANNELS),
    )


class PokeBNN(nn.Module):
    """PokeBNN with width multiplier ``width`` (0.5, 0.75, 1.0 in the paper)."""

    def __init__(self, width: float = 1.0, num_classes: int = 1000, in_channels: int = 3):
        super().__init__()
        self.stem = _poke_init(in_channels)
        blocks, cin = [], STEM_CHANNELS
        for n, base, stride in STAGES:
            w = int(base * width)
            for i in range(n):
                blocks.append(PokeBottleneck(cin, w, stride if i == 0 else 1))
                cin = EXPANSION * w
        self.blocks = nn.Sequential(*blocks)
        self.pool = GlobalAvgPool()
        self.head = bnn.QuantLinear(
            cin, num_classes, bias=True,
            input_quantizer=quantizers.SymmetricQuantizer(8),
            kernel_quantizer=quantizers.SymmetricQuantizer(8, per_channel=True),
        )  # fmt: skip

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.pool(self.blocks(self.stem(x))))


def _create_pokebnn(width: float, num_classes: int, input_size: int, in_channels: int = 3) -> PokeBNN:
    check_input_size(input_size, f"pokebnn {width}x")
    conv_out(input_size, 4, 4, layer="stem.0 (PokeInit 4x4 stride-4 conv)")
    return PokeBNN(width, num_classes, in_channels)


@register_model
def pokebnn_0_5x(num_classes: int = 1000, input_size: int = 224, **kwargs) -> PokeBNN:
    """PokeBNN-0.5x: widths 32, 64, 128, 256."""
    return _create_pokebnn(0.5, num_classes, input_size, **kwargs)


@register_model
def pokebnn_0_75x(num_classes: int = 1000, input_size: int = 224, **kwargs) -> PokeBNN:
    """PokeBNN-0.75x: widths 48, 96, 192, 384 (paper: 70.5% top-1 at 2.6 G ACE)."""
    return _create_pokebnn(0.75, num_classes, input_size, **kwargs)


@register_model
def pokebnn_1_0x(num_classes: int = 1000, input_size: int = 224, **kwargs) -> PokeBNN:
    """PokeBNN-1.0x: widths 64, 128, 256, 512 (ResNet-50's)."""
    return _create_pokebnn(1.0, num_classes, input_size, **kwargs)
