"""Lowering of channel rearrangements: the reshapes, slices, stacks, repeats, channel
zero-pads and channel means with which BoolNet handles its binary slices and PokeBNN
matches its shortcuts to a layer's width.

Such graphs split the channel axis of an (N, C, H, W) map into several axes, e.g.
``x.unflatten(1, (4, -1))[:, :, :32].flatten(1, 2)`` or ``torch.stack([a, b], 3)``. Each
result is kept as a :class:`ChannelView`: a lazy tensor of logical shape
``(N, d1, ..., dm, H, W)`` whose element ``(n, i1..im, h, w)`` is channel
``index[i1..im]`` of the concatenated channels of its 4-D ``sources`` at ``(n, h, w)``
(index -1: zero). Splitting and merging channel axes reshapes ``index``, slicing slices
it, stacking stacks it, and so on, with no op emitted. Because the channel axes are
contiguous, the row-major order of the view equals that of the 4-D tensor
``(N, d1*...*dm, H, W)``, so a view reaches an ordinary op as that 4-D tensor, built by
one ``gather_channels`` op (none for the identity of one source; a ``concat`` for an
in-order concatenation of float maps). Views of bits maps gather bits.

Element-wise ``add``/``sub``/``mul`` on views broadcast the index (BoolNet's thermometer
code ``x.unsqueeze(1) + offsets`` tiles ``x`` k times) and run on the 4-D tensors; a mean
over one channel axis becomes a gather that makes each averaged group consecutive, then
``group_mean``. All of this moves values without arithmetic (or, for the mean, sums in
float32 as PyTorch does up to rounding order), so it is exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .ir import Value


@dataclass(eq=False)
class ChannelView:
    """Channels ``index`` (any shape) of the concatenated ``sources`` (4-D values)."""

    sources: list
    index: np.ndarray
    cache: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple:
        n, _, h, w = self.sources[0].shape
        return (n, *self.index.shape, h, w)

    @property
    def wide(self) -> bool:
        """True when the channels are split into several axes (rank > 4)."""
        return self.index.ndim != 1


def as_view(x) -> ChannelView | None:
    """``x`` as a view: itself, the identity view of a 4-D activation, or None."""
    if isinstance(x, ChannelView):
        return x
    if isinstance(x, Value) and not x.constant and len(x.shape) == 4:
        return ChannelView([x], np.arange(x.shape[1], dtype=np.int64))
    return None


def merge(views: list) -> tuple[list, list]:
    """(shared sources, each view's index renumbered into them)."""
    sources, offsets = [], {}
    for v in views:
        for s in v.sources:
            if id(s) not in offsets:
                offsets[id(s)] = sum(t.shape[1] for t in sources)
                sources.append(s)
    out = []
    for v in views:
        table = np.concatenate([offsets[id(s)] + np.arange(s.shape[1]) for s in v.sources]).astype(np.int64)
        out.append(np.where(v.index < 0, -1, table[np.maximum(v.index, 0)]))
    return sources, out


def _same_pixels(views: list) -> bool:
    first = views[0].shape
    return all(v.shape[0] == first[0] and v.shape[-2:] == first[-2:] for v in views)


def _prune(sources: list, flat: np.ndarray) -> tuple[list, np.ndarray]:
    """Drop sources no index entry reads and renumber."""
    starts = np.cumsum([0] + [s.shape[1] for s in sources])
    keep, table = [], np.full(starts[-1], -1, np.int64)
    for i, s in enumerate(sources):
        if np.any((flat >= starts[i]) & (flat < starts[i + 1])):
            table[starts[i]:starts[i + 1]] = sum(t.shape[1] for t in keep) + np.arange(s.shape[1])
            keep.append(s)
    if not keep:  # only zero channels: read the first source (gather needs an input)
        keep, table = sources[:1], table
    return keep, np.where(flat < 0, -1, table[np.maximum(flat, 0)])


def materialize(lw, view: ChannelView, node, want: str = "any") -> Value:
    """The 4-D value ``(N, prod(dims), H, W)`` of ``view`` (bits kept unless ``want="f32"``)."""
    key = want
    if key not in view.cache:
        view.cache[key] = _materialize(lw, view, node, want)
    return view.cache[key]


def _materialize(lw, view, node, want):
    sources, flat = _prune(view.sources, view.index.reshape(-1))
    n, _, h, w = sources[0].shape
    if len(sources) == 1 and np.array_equal(flat, np.arange(sources[0].shape[1])):
        return lw.value(sources[0], node, want)
    bits = want == "any" and all(s.dtype == "bits" for s in sources) and not np.any(flat < 0)
    ins = [lw.value(s, node, "any" if bits else "f32") for s in sources]
    shape = (n, len(flat), h, w)
    name = lw.module_name(node)
    total = sum(s.shape[1] for s in sources)
    if not bits and len(sources) > 1 and np.array_equal(flat, np.arange(total)):
        return lw.g.add("concat", ins, "f32", shape, {"axis": 1}, name=name)
    return lw.g.add("gather_channels", ins, "bits" if bits else "f32", shape,
                    {"index": [int(i) for i in flat]}, name=name)


def _out_shape(node) -> tuple:
    return tuple(int(d) for d in node.meta["val"].shape)


def _norm_dim(dim: int, rank: int) -> int:
    return dim % rank if -rank <= dim < rank else dim


def is_view_shape(view: ChannelView, shape: tuple) -> bool:
    """True when ``shape`` keeps the view's N, H and W and only regroups its channels."""
    n, *_, h, w = view.shape
    return len(shape) >= 4 and shape[0] == n and tuple(shape[-2:]) == (h, w)


def reshape(lw, node, x):
    """A reshape/view/flatten/unflatten/(un)squeeze that only regroups channels, or None."""
    v = as_view(x)
    out = _out_shape(node)
    if v is None or not is_view_shape(v, out):
        return None
    return ChannelView(v.sources, v.index.reshape(out[1:-2]))


def slice_(lw, node, x, dim=0, start=None, end=None, step=1):
    v = as_view(x)
    if v is not None:
        d = _norm_dim(dim, len(v.shape))
        if 1 <= d <= v.index.ndim:
            sl = [slice(None)] * v.index.ndim
            sl[d - 1] = slice(start, end, step)
            return ChannelView(v.sources, v.index[tuple(sl)])
        if 0 <= d < len(v.shape) and slice(start, end, step).indices(v.shape[d]) == (0, v.shape[d], 1):
            return x  # a full slice
    raise lw.fail(node, "slicing is supported along the channel axes of (N, C, H, W) activations only "
                  "(and the axes a reshape splits them into); slice batch or spatial axes outside the model")


def _views_or_fail(lw, node, tensors, what: str) -> list:
    views = [as_view(t) for t in tensors]
    if any(v is None for v in views) or not _same_pixels(views):
        raise lw.fail(node, f"{what} is supported only for activations of one (N, ..., H, W) size along "
                      "their channel axes")
    return views


def stack(lw, node, tensors, dim=0):
    views = _views_or_fail(lw, node, tensors, "stack")
    d = _norm_dim(dim, len(views[0].shape) + 1)
    if not 1 <= d <= views[0].index.ndim + 1 or len({v.index.shape for v in views}) != 1:
        raise lw.fail(node, f"stack along dim {dim} is supported only between the channel axes of "
                      "equally shaped (N, ..., H, W) activations")
    sources, idx = merge(views)
    return ChannelView(sources, np.stack(idx, axis=d - 1))


def cat(lw, node, tensors, dim=0):
    """A concatenation along a channel axis, or None (the caller emits ``concat``)."""
    views = [as_view(t) for t in tensors]
    if any(v is None for v in views) or not _same_pixels(views):
        return None
    d = _norm_dim(dim, len(views[0].shape))
    if not 1 <= d <= views[0].index.ndim or len({v.index.ndim for v in views}) != 1:
        return None
    sources, idx = merge(views)
    try:
        return ChannelView(sources, np.concatenate(idx, axis=d - 1))
    except ValueError:
        return None


def repeat(lw, node, x, repeats):
    v = as_view(x)
    reps = list(repeats)
    if v is None or len(reps) != len(v.shape) or reps[0] != 1 or reps[-2:] != [1, 1]:
        raise lw.fail(node, f"repeat {reps} is supported only along the channel axes of (N, C, H, W) "
                      "activations (repeats 1 for N, H and W)")
    return ChannelView(v.sources, np.tile(v.index, reps[1:-2]))


def channel_pad(lw, node, x, pad, value):
    """``F.pad`` of (N, C, H, W) with zeros before/after the channels only (pad of length 6)."""
    v = as_view(x)
    if v is None or v.wide or len(pad) != 6 or any(pad[:4]) or min(pad) < 0 or float(value) != 0.0:
        raise lw.fail(node, f"padding {list(pad)} with value {value} is not supported: pad (N, C, H, W) "
                      "activations either spatially (4 entries) or with zero channels (6 entries, "
                      "[0, 0, 0, 0, before, after])")
    before, after = np.full(pad[4], -1, np.int64), np.full(pad[5], -1, np.int64)
    return ChannelView(v.sources, np.concatenate([before, v.index, after]))


def mean(lw, node, x, dims, keepdim=False):
    """A mean over one channel axis of a view: gather the groups together, ``group_mean``."""
    v = as_view(x)
    ds = [_norm_dim(d, len(v.shape)) for d in dims]
    if len(ds) != 1 or not 1 <= ds[0] <= v.index.ndim:
        raise lw.fail(node, f"mean over dims {list(dims)} of a channel-split tensor of shape {v.shape} is not "
                      "supported (only over one channel axis)")
    idx = np.moveaxis(v.index, ds[0] - 1, -1)
    group = idx.shape[-1]
    grouped = materialize(lw, ChannelView(v.sources, idx.reshape(-1)), node, "f32")
    n, c, h, w = grouped.shape
    out = grouped
    if group > 1:
        out = lw.g.add("group_mean", [grouped], "f32", (n, c // group, h, w), {"group": group},
                       name=lw.module_name(node))
    rest = idx.shape[:-1]
    if keepdim:
        rest = rest[:ds[0] - 1] + (1,) + rest[ds[0] - 1:]
    return ChannelView([out], np.arange(out.shape[1], dtype=np.int64).reshape(rest))


# ---------------------------------------------------------------------- arithmetic


def _broadcast_const(c: np.ndarray, out: tuple) -> np.ndarray:
    """A constant broadcast against ``out = (N, d..., H, W)``, as a 4-D (N|1, D|1, H|1, W|1)."""
    c = c.reshape((1,) * (len(out) - c.ndim) + c.shape)
    mid = c.shape[1:-2]
    if all(d == 1 for d in mid):
        return c.reshape(c.shape[0], 1, *c.shape[-2:])
    full = np.broadcast_to(c, (c.shape[0], *out[1:-2], *c.shape[-2:]))
    return full.reshape(c.shape[0], -1, *c.shape[-2:])


def arith(lw, node, op: str, a, b, negate_b: bool):
    """add/sub/mul where an operand is a channel-split view (rank > 4)."""
    out = _out_shape(node)
    if not isinstance(a, ChannelView) and op in ("add", "mul") and not negate_b:
        a, b = b, a
    va, vb = as_view(a), as_view(b)
    lower_rank = isinstance(b, Value) and len(b.shape) != len(out)  # would align N with a channel axis
    if va is None or not is_view_shape(va, out) or (vb is not None and not is_view_shape(vb, out)) or lower_rank:
        raise lw.fail(node, f"element-wise '{op}' of shapes {getattr(a, 'shape', a)} and "
                      f"{getattr(b, 'shape', b)} is supported only for channel-split activations of one "
                      "(N, ..., H, W) size or with a constant")
    dims = out[1:-2]
    name = lw.module_name(node)
    x = materialize(lw, ChannelView(va.sources, _bcast(lw, node, va.index, dims)), node, "f32")
    if vb is not None:
        y = materialize(lw, ChannelView(vb.sources, _bcast(lw, node, vb.index, dims)), node, "f32")
        if negate_b:
            y = lw.g.add("mul", [y, lw.g.const(f"{node.name}_minus1", [-1.0])], "f32", y.shape, name=name)
    else:
        c = np.asarray(b.detach().float().numpy() if isinstance(b, torch.Tensor) else b, np.float32)
        c = -c if negate_b else c
        y = lw.g.const(f"{node.name}_const", _broadcast_const(c, out))
    res = lw.g.add(op, [x, y], "f32", x.shape, name=name)
    return ChannelView([res], np.arange(res.shape[1], dtype=np.int64).reshape(dims))


def _bcast(lw, node, index: np.ndarray, dims: tuple) -> np.ndarray:
    try:
        return np.broadcast_to(index, dims)
    except ValueError:
        raise lw.fail(node, f"channel axes {index.shape} do not broadcast to {dims}") from None
