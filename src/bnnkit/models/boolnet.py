"""BoolNet, k = 4 (Chen et al., "BoolNet: Minimizing the Energy Consumption of Binary
Neural Networks", arXiv 2106.06991): the variant of the paper's main table, 57.6 % top-1.

Facts from the authors' code (``hpi-xnor/BoolNet``, folder ``BoolNet_k_4``: ``boolnet18``,
``max_slices=4``, ``--binary_downsample``); our own code.

Feature maps between blocks are binary, in k = 4 *slices*: a real map ``x`` (N, C, H, W)
becomes ``sign(x + o_s)`` for the fixed offsets ``o = (-2/3, -1/3, 1/3, 2/3)`` (a
thermometer code; ``GhostSign``). We keep slices in the channel axis, slice-major:
(N, k*C, H, W) with slice s in channels ``[s*C, (s+1)*C)``, exactly the reference's
``view(N, -1, H, W)`` of its (N, k, C, H, W) tensors.

* Multi-slice binary conv: a grouped binary conv with one group per slice,
  ``k*C_in -> C_out``, weights ``mean|w| * sign(w)`` per output channel.
* Block (input x, shortcut r = x or its binary downsampling):
  ``u = XNOR(GhostSign(BN1(conv1(x))), r)``, ``v = GhostSign(BN2(conv2(u)))``,
  output = channel-interleave(OR(v, r), r') per slice, so the width doubles; the next
  block convolves the first half of that map (per slice) and passes the second half on as
  r'. XNOR(a, b) = a*b and OR(a, b) = clamp(a + b + 1, -1, 1) on +-1 values: logic ops
  instead of 32-bit additions.
* Downsampling shortcut (binary): 1x1 binary conv (with bias) over all slices ->
  max-pool 2x2 -> BN -> GhostSign.
* Stem (float): 7x7 conv 64 stride 2 -> BN -> max-pool 3x3 stride 2 -> ``BN1(x) +
  BN(dwconv3x3(BN2(x)))`` -> GhostSign. Last block (real output):
  ``BN2(conv2(u)) + BN3(mean over slices of u)``; head PReLU -> global pool -> dense.

Binary convs pad by replicating the border (the reference's ``ReplicationPad2d``;
``padding_mode="replicate"``), which keeps the padded map binary; ``pad_mode="one"`` pads
with +1 instead (free in the packed domain). Activations are binarized by ``ste_sign``
(clip 1, as the reference's ``hardtanh``-then-sign); a binary conv's input quantizer is ``ste_sign`` too, which is
the identity, forward and backward, on its already +-1 input and marks the conv binary.
Differences from the reference: sign(0) = +1 (reference: 0); the kernel scale is a
constant for the gradient (reference: differentiated); training-time weight temperature
annealing is not part of the model.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from bnnkit import nn as bnn
from bnnkit import quantizers

from ._blocks import GlobalAvgPool, check_input_size, conv_out
from ._registry import register_model

SLICES = 4
PAD_MODES = ("replicate", "one")


def thermometer_offsets(slices: int) -> list[float]:
    """GhostSign's uniform offsets ``i / (k/2 + 1)`` for ``i`` in ``-k/2..k/2``, ``i != 0``."""
    if slices < 2 or slices % 2:
        raise ValueError(f"BoolNet: slices must be an even number >= 2, got {slices}")
    half = slices // 2
    return [i / (half + 1) for i in range(-half, half + 1) if i != 0]


class GhostSign(nn.Module):
    """(N, C, H, W) real -> (N, k*C, H, W) binary: ``sign(x + o_s)`` for each slice s."""

    def __init__(self, slices: int = SLICES):
        super().__init__()
        self.register_buffer("offsets", torch.tensor(thermometer_offsets(slices)))
        self.sign = quantizers.SteSign(clip_value=1.0)

    def forward(self, x: Tensor) -> Tensor:
        shifted = x.unsqueeze(1) + self.offsets.view(1, -1, 1, 1, 1)
        return self.sign(shifted.flatten(1, 2))


def xnor(a: Tensor, b: Tensor) -> Tensor:
    """Logical XNOR of +-1 maps (+1 = true): ``a * b``."""
    return a * b


def logical_or(a: Tensor, b: Tensor) -> Tensor:
    """Logical OR of +-1 maps (+1 = true): ``clamp(a + b + 1, -1, 1)``.

    The gradient (1 to both inputs unless both are +1) equals the reference's
    ``clamp((a+1)/2 + (b+1)/2, 0, 1) * 2 - 1``.
    """
    return torch.clamp(a + b + 1.0, -1.0, 1.0)


def _slices_view(x: Tensor, slices: int) -> Tensor:
    return x.unflatten(1, (slices, -1))


def first_half(x: Tensor, slices: int) -> Tensor:
    """Channels ``[:C/2]`` of every slice."""
    v = _slices_view(x, slices)
    return v[:, :, : v.shape[2] // 2].flatten(1, 2)


def second_half(x: Tensor, slices: int) -> Tensor:
    """Channels ``[C/2:]`` of every slice."""
    v = _slices_view(x, slices)
    return v[:, :, v.shape[2] // 2 :].flatten(1, 2)


def interleave(a: Tensor, b: Tensor, slices: int) -> Tensor:
    """Per slice, channels ``a0 b0 a1 b1 ...`` (the reference's concat + channel shuffle)."""
    pair = torch.stack([_slices_view(a, slices), _slices_view(b, slices)], dim=3)
    return pair.flatten(1, 3)


def _bconv(in_channels: int, out_channels: int, kernel: int, stride: int = 1, *,
           groups: int = 1, bias: bool = False, pad_mode: str = "replicate") -> nn.Module:
    """A binary conv on an already binary input, with replicate or one padding."""
    return bnn.QuantConv2d(
        in_channels,
        out_channels,
        kernel,
        stride=stride,
        padding=kernel // 2,
        groups=groups,
        bias=bias,
        padding_mode="replicate" if pad_mode == "replicate" else "zeros",
        input_quantizer=quantizers.SteSign(clip_value=1.0),
        kernel_quantizer=quantizers.MagnitudeAwareSign(),
        pad_value=1.0,
    )


class BoolBlock(nn.Module):
    """One BoolNet block; see the module docstring. ``in_width``: channels per input slice."""

    def __init__(self, in_width: int, conv_in: int, out: int, stride: int, *, last: bool,
                 slices: int = SLICES, pad_mode: str = "replicate"):
        super().__init__()
        if in_width not in (conv_in, 2 * conv_in):
            raise ValueError(
                f"BoolBlock: input width {in_width} must be {conv_in} or {2 * conv_in}"
            )
        self.slices, self.last, self.split = slices, last, in_width == 2 * conv_in
        self.conv1 = _bconv(slices * conv_in, out, 3, stride, groups=slices, pad_mode=pad_mode)
        self.bn1, self.sign1 = nn.BatchNorm2d(out), GhostSign(slices)
        self.conv2 = _bconv(slices * out, out, 3, groups=slices, pad_mode=pad_mode)
        self.bn2 = nn.BatchNorm2d(out)
        self.downsample = None
        if stride != 1 or conv_in != out:
            self.downsample = nn.Sequential(
                _bconv(slices * in_width, out, 1, bias=True),
                nn.MaxPool2d(stride, stride=stride, ceil_mode=True),
                nn.BatchNorm2d(out),
                GhostSign(slices),
            )
        if last:
            self.bn3 = nn.BatchNorm2d(out)
        else:
            self.sign2 = GhostSign(slices)

    def forward(self, x: Tensor) -> Tensor:
        inp = first_half(x, self.slices) if self.split else x
        residual = inp if self.downsample is None else self.downsample(inp)
        u = xnor(self.sign1(self.bn1(self.conv1(inp))), residual)
        if self.last:
            return self.bn2(self.conv2(u)) + self.bn3(_slices_view(u, self.slices).mean(1))
        v = logical_or(self.sign2(self.bn2(self.conv2(u))), residual)
        passed = second_half(x, self.slices) if self.split else residual
        return interleave(v, passed, self.slices)


class BoolStem(nn.Module):
    """Float stem: 7x7 conv/2 -> BN -> max-pool -> BN1(x) + BN(dw3x3(BN2(x))) -> GhostSign."""

    def __init__(self, in_channels: int, width: int, slices: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, width, 7, stride=2, padding=3, bias=False)
        self.pool = nn.Sequential(nn.BatchNorm2d(width), nn.MaxPool2d(3, stride=2, padding=1))
        self.bn1, self.bn2 = nn.BatchNorm2d(width), nn.BatchNorm2d(width)
        self.zero_points = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1, groups=width, bias=False), nn.BatchNorm2d(width)
        )
        self.sign = GhostSign(slices)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool(self.conv(x))
        return self.sign(self.bn1(x) + self.zero_points(self.bn2(x)))


class BoolNet(nn.Module):
    """BoolNet-18 layout: stem, 4 stages of 2 BoolBlocks (64, 128, 256, 512), PReLU head."""

    def __init__(self, num_classes=1000, blocks=(2, 2, 2, 2), widths=(64, 128, 256, 512),
                 slices=SLICES, in_channels=3, pad_mode="replicate"):
        super().__init__()
        if pad_mode not in PAD_MODES:
            raise ValueError(f"BoolNet: pad_mode must be one of {PAD_MODES}, got {pad_mode!r}")
        self.stem = BoolStem(in_channels, widths[0], slices)
        layers, in_width, planes = [], widths[0], widths[0]
        for stage, (n, w) in enumerate(zip(blocks, widths)):
            for i in range(n):
                first = i == 0
                conv_in = 2 * planes if (first and w != planes) else w
                last = stage == len(blocks) - 1 and i == n - 1
                stride = 2 if (first and stage > 0) else 1
                layers.append(BoolBlock(in_width, conv_in, w, stride, last=last, slices=slices,
                                        pad_mode=pad_mode))
                in_width, planes = 2 * w, w
        self.body = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.PReLU(widths[-1]), GlobalAvgPool(), nn.Linear(widths[-1], num_classes)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(self.stem(x)))


def _check_sizes(input_size: int) -> None:
    size = conv_out(input_size, 7, 2, 3, layer="stem.conv (7x7 conv, stride 2)")
    size = conv_out(size, 3, 2, 1, layer="stem.pool (max-pool 3x3, stride 2)")
    for stage in (1, 2, 3):
        size = conv_out(size, 3, 2, 1, layer=f"body.{2 * stage}.conv1 (binary 3x3, stride 2)")


@register_model
def boolnet(num_classes: int = 1000, input_size: int = 224, *, in_channels: int = 3,
            pad_mode: str = "replicate") -> BoolNet:
    """BoolNet (k = 4, binary downsampling), the paper's main-table variant; 57.6 % top-1."""
    _check_sizes(check_input_size(input_size, "boolnet"))
    return BoolNet(num_classes=num_classes, in_channels=in_channels, pad_mode=pad_mode)
