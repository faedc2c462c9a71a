"""Offline image-classification data: loaders, augmentation and a fast in-memory batch loader.

Every data set is held whole in memory as one ``uint8`` tensor of shape ``(N, C, H, W)`` plus
an ``int64`` label tensor (:class:`ArrayDataset`, a ``torch.utils.data.Dataset``).
:class:`BatchLoader` cuts batches by tensor indexing and augments a whole batch at once, so
no Python code runs per sample; on a small CPU this is much faster than a ``DataLoader`` with
per-sample transforms.

Sources
-------
* ``"fashion_mnist"``: Fashion-MNIST (60k/10k, 28x28 grey, 10 classes) from gzipped IDX
  files. Install it offline with ``apt-get install dataset-fashion-mnist`` (Debian puts the
  files in ``/usr/share/datasets/fashion-mnist``), or put the four files in
  ``$BNNKIT_DATA_DIR/fashion-mnist`` or ``~/.cache/bnnkit/fashion-mnist``.
* ``"digits"``: scikit-learn's bundled 8x8 digits (needs scikit-learn; 1437/360 fixed split).
* ``"synthetic"``: a small learnable data set generated from a seed (tests, smoke runs).
* a path: a directory of IDX files, an ``.npz`` file (arrays ``x``/``y``, or
  ``x_train``/``y_train`` and ``x_test``/``y_test``, optional ``classes``), or an image folder
  (one sub-directory per class, optionally under ``train/`` and ``test/``; ``.npy`` and binary
  PGM/PPM always, PNG/JPEG/BMP when Pillow is installed).

Augmentation (:class:`Augment`) is the standard one for small images: a random crop of the
original size from the image zero-padded by ``crop_padding`` pixels on each side, and a
horizontal flip with probability 1/2. Normalisation is ``(x / 255 - mean) / std`` per channel.
Randomness depends only on ``(seed, epoch, rank, batch index)``, so a run is reproducible and
can resume in the middle of an epoch.
"""

from __future__ import annotations

import gzip
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

__all__ = [
    "ArrayDataset", "Augment", "BatchLoader", "DataError", "DatasetNotFoundError",
    "default_augment", "derive_seed", "list_datasets", "load_dataset", "load_digits",
    "load_fashion_mnist", "load_idx_dataset", "load_image_folder", "load_npz", "read_idx",
    "synthetic", "write_idx",
]


class DataError(ValueError):
    """A data file exists but is malformed (bad magic, sizes, shapes or dtypes)."""


class DatasetNotFoundError(FileNotFoundError):
    """A named data set or a path cannot be found; the message says how to get it."""


# --------------------------------------------------------------------------- IDX files
# IDX (LeCun's MNIST format): 2 zero bytes, a dtype code, the number of dimensions, then
# each dimension as a big-endian uint32, then the data in row-major order, big-endian.
_IDX_DTYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
               0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when it starts with the gzip magic 1f 8b."""
    raw = path.read_bytes()
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"{path}: corrupt gzip stream ({exc})") from exc


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (raw or gzipped) and return its array in native byte order.

    Raises :class:`DataError` naming the file when the magic, the dimensions or the data size
    are wrong (a truncated download, a wrong file), and ``FileNotFoundError`` if it is missing.
    """
    path = Path(path)
    buf = _read_bytes(path)
    if len(buf) < 4 or buf[0] != 0 or buf[1] != 0 or buf[2] not in _IDX_DTYPES:
        raise DataError(f"{path}: not an IDX file (magic {buf[:4].hex() or 'empty'}, "
                        f"expected 0000 + dtype code + ndim)")
    dtype, ndim = _IDX_DTYPES[buf[2]], buf[3]
    if ndim == 0 or len(buf) < 4 + 4 * ndim:
        raise DataError(f"{path}: IDX header truncated or has 0 dimensions (ndim={ndim})")
    dims = tuple(int(d) for d in np.frombuffer(buf, ">u4", count=ndim, offset=4))
    expected = math.prod(dims) * dtype.itemsize
    got = len(buf) - 4 - 4 * ndim
    if got != expected:
        raise DataError(f"{path}: IDX data has {got} bytes but dims {dims} of {dtype.name} "
                        f"need {expected} (file truncated or corrupt)")
    arr = np.frombuffer(buf, dtype, offset=4 + 4 * ndim).reshape(dims)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def write_idx(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write ``array`` as an IDX file, gzipped when ``path`` ends in ``.gz``."""
    path = Path(path)
    array = np.asarray(array)
    codes = {dt.newbyteorder("="): code for code, dt in _IDX_DTYPES.items()}
    code = codes.get(array.dtype.newbyteorder("="))
    if code is None:
        raise TypeError(f"IDX cannot store dtype {array.dtype}; use one of "
                        f"{sorted(str(d) for d in codes)}")
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    body = header + array.astype(_IDX_DTYPES[code]).tobytes()
    path.write_bytes(gzip.compress(body, mtime=0) if path.suffix == ".gz" else body)
    return path


# --------------------------------------------------------------------------- dataset
def _channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of ``images / 255`` (population std)."""
    x = images.to(torch.float64).div_(255.0).transpose(0, 1).reshape(images.shape[1], -1)
    std = x.std(dim=1, correction=0).clamp_min(1e-6)
    return tuple(x.mean(dim=1).tolist()), tuple(std.tolist())


class ArrayDataset(torch.utils.data.Dataset):
    """A whole image-classification data set in memory.

    ``images``: ``uint8`` tensor ``(N, C, H, W)``; ``labels``: ``int64`` tensor ``(N,)`` with
    values in ``[0, num_classes)``. ``mean``/``std`` are per-channel statistics of
    ``images / 255`` used for normalisation (computed from the images when not given; pass the
    training split's statistics to the test split). Indexing returns the normalised
    ``float32`` image and its label, like a torchvision data set.
    """

    def __init__(self, images, labels, *, classes: Sequence[str] | None = None,
                 mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                 name: str = "arrays"):
        self.images = torch.as_tensor(images)
        self.labels = torch.as_tensor(labels).to(torch.int64)
        self._check()
        n_cls = int(self.labels.max()) + 1 if len(self.labels) else 0
        self.classes = list(classes) if classes is not None else [str(i) for i in range(n_cls)]
        if n_cls > len(self.classes):
            raise DataError(f"{name}: label {n_cls - 1} but only {len(self.classes)} classes")
        if mean is None or std is None:
            mean, std = _channel_stats(self.images)
        self.mean, self.std, self.name = tuple(mean), tuple(std), name

    def _check(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise DataError(f"images must be a uint8 (N, C, H, W) tensor, got "
                            f"{self.images.dtype} {tuple(self.images.shape)}")
        if self.labels.shape != (self.images.shape[0],):
            raise DataError(f"{self.images.shape[0]} images but labels of shape "
                            f"{tuple(self.labels.shape)}")
        if len(self.labels) and int(self.labels.min()) < 0:
            raise DataError("labels must be >= 0")

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int):
        return normalize(self.images[index:index + 1], self.mean, self.std)[0], self.labels[index]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)``."""
        return tuple(self.images.shape[1:])

    def subset(self, indices) -> "ArrayDataset":
        """The samples at ``indices`` (an int ``n`` means the first ``n``), same stats/classes."""
        idx = torch.arange(min(indices, len(self))) if isinstance(indices, int) else \
            torch.as_tensor(indices, dtype=torch.int64)
        return ArrayDataset(self.images[idx], self.labels[idx], classes=self.classes,
                            mean=self.mean, std=self.std, name=self.name)

    def __repr__(self) -> str:
        return (f"ArrayDataset({self.name!r}, n={len(self)}, shape={self.image_shape}, "
                f"classes={self.num_classes})")


def normalize(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """``(images / 255 - mean) / std`` per channel, as ``float32`` (one fused multiply-add)."""
    c = images.shape[1]
    scale = torch.tensor([1.0 / (255.0 * s) for s in std], dtype=torch.float32).view(1, c, 1, 1)
    shift = torch.tensor([-m / s for m, s in zip(mean, std)], dtype=torch.float32).view(1, c, 1, 1)
    return torch.addcmul(shift, images.to(torch.float32), scale)


# --------------------------------------------------------------------------- augmentation
@dataclass(frozen=True)
class Augment:
    """Random crop with ``crop_padding`` zero pixels per side, then a flip with probability 1/2."""

    crop_padding: int = 4
    hflip: bool = True

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Augment a uint8 batch ``(B, C, H, W)``; the result is a channels-last tensor."""
        if self.crop_padding > 0:
            images = random_crop(images, self.crop_padding, generator)
        if self.hflip:
            flip = torch.rand(images.shape[0], generator=generator) < 0.5
            images = torch.where(flip.view(-1, 1, 1, 1), images.flip(3), images)
        return images


def random_crop(images: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Crop each image at a random offset in ``[0, 2 * padding]`` from its zero-padded copy.

    One gather for the whole batch: with ``P`` the padded batch in NHWC order,
    ``out[b, i, j] = P[b, oy[b] + i, ox[b] + j]``.
    """
    b, _, h, w = images.shape
    padded = torch.nn.functional.pad(images, (padding,) * 4).permute(0, 2, 3, 1)
    oy = torch.randint(0, 2 * padding + 1, (b, 1, 1), generator=generator)
    ox = torch.randint(0, 2 * padding + 1, (b, 1, 1), generator=generator)
    rows = oy + torch.arange(h).view(1, h, 1)
    cols = ox + torch.arange(w).view(1, 1, w)
    return padded[torch.arange(b).view(b, 1, 1), rows, cols].permute(0, 3, 1, 2)


def default_augment(dataset_name: str, image_size: int) -> Augment:
    """The usual training augmentation: no flips for digits, padding ~ size / 8 (>= 1)."""
    flip = dataset_name not in ("digits", "mnist")
    return Augment(crop_padding=max(1, image_size // 8), hflip=flip)


def derive_seed(*parts: int) -> int:
    """A 63-bit seed that depends on every part (via numpy's SeedSequence hashing)."""
    words = np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts]).generate_state(2)
    return (int(words[0]) << 31 | int(words[1]) >> 1) & 0x7FFF_FFFF_FFFF_FFFF


# --------------------------------------------------------------------------- batch loader
class BatchLoader:
    """Iterate over ``(x, y)`` batches of an :class:`ArrayDataset` without per-sample Python.

    * the order is a permutation drawn from ``(seed, epoch)`` when ``shuffle``; a ``sampler``
      (e.g. ``torch.utils.data.DistributedSampler``) replaces it and gets ``set_epoch``;
    * batch ``i`` is augmented with a generator seeded from ``(seed, epoch, rank, i)``, so
      ``iterate(start=i)`` reproduces exactly the batches an uninterrupted epoch gives from i;
    * ``x`` is normalised ``float32`` (channels-last when ``channels_last``), on ``device``.
    """

    def __init__(self, dataset: ArrayDataset, batch_size: int, *, shuffle: bool = False,
                 augment: Callable | None = None, seed: int = 0, drop_last: bool = False,
                 sampler=None, rank: int = 0, device: str | torch.device = "cpu",
                 channels_last: bool = False):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.dataset, self.batch_size, self.shuffle = dataset, int(batch_size), shuffle
        self.augment, self.seed, self.drop_last, self.sampler = augment, seed, drop_last, sampler
        self.rank, self.device, self.channels_last = rank, torch.device(device), channels_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        if self.sampler is not None and hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def indices(self) -> torch.Tensor:
        """This epoch's sample order (for this rank when a sampler is set)."""
        if self.sampler is not None:
            return torch.as_tensor(list(iter(self.sampler)), dtype=torch.int64)
        if not self.shuffle:
            return torch.arange(len(self.dataset))
        gen = torch.Generator().manual_seed(derive_seed(self.seed, self.epoch, 0x5EED))
        return torch.randperm(len(self.dataset), generator=gen)

    def __len__(self) -> int:
        n = len(self.sampler) if self.sampler is not None else len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self.iterate()

    def iterate(self, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The batches of the current epoch from batch index ``start`` on."""
        order = self.indices()
        for i in range(start, len(self)):
            yield self._batch(order[i * self.batch_size:(i + 1) * self.batch_size], i)

    def _batch(self, idx: torch.Tensor, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        images = self.dataset.images[idx]
        if self.augment is not None:
            gen = torch.Generator().manual_seed(derive_seed(self.seed, self.epoch, self.rank, i))
            images = self.augment(images, gen)
        x = normalize(images, self.dataset.mean, self.dataset.std)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        y = self.dataset.labels[idx]
        if self.device.type != "cpu":
            return x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
        return x, y


# --------------------------------------------------------------------------- loaders
def _to_nchw_uint8(x: np.ndarray, source: str, layout: str = "auto") -> torch.Tensor:
    """Images as uint8 (N, C, H, W): accepts (N, H, W), NHWC or NCHW; uint8 or floats in [0, 1]."""
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and (layout == "nhwc" or (layout == "auto" and x.shape[-1] in (1, 3, 4)
                                              and x.shape[1] not in (1, 3))):
        x = x.transpose(0, 3, 1, 2)
    elif x.ndim != 4:
        raise DataError(f"{source}: images must have 3 or 4 dimensions, got shape {x.shape}")
    if x.dtype.kind == "f":
        if x.size and (x.min() < 0 or x.max() > 1):
            raise DataError(f"{source}: float images must lie in [0, 1] (got "
                            f"[{x.min():g}, {x.max():g}]); store uint8 0..255 instead")
        x = np.rint(x * 255.0)
    elif x.dtype != np.uint8 and x.size and (x.min() < 0 or x.max() > 255):
        raise DataError(f"{source}: integer images must lie in 0..255, dtype {x.dtype}")
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.uint8))


def load_idx_dataset(images_path, labels_path, *, classes=None, name: str = "idx",
                     mean=None, std=None) -> ArrayDataset:
    """A data set from an IDX image file ``(N, H, W)`` or ``(N, H, W, C)`` and a label file ``(N,)``."""
    x, y = read_idx(images_path), read_idx(labels_path)
    if y.ndim != 1:
        raise DataError(f"{labels_path}: labels must be 1-D, got shape {y.shape}")
    if x.ndim not in (3, 4) or x.shape[0] != y.shape[0]:
        raise DataError(f"{images_path}: {x.shape} images do not match {y.shape[0]} labels "
                        f"in {labels_path}")
    images = _to_nchw_uint8(x, str(images_path), layout="nhwc")
    return ArrayDataset(images, torch.from_numpy(y.astype(np.int64)), classes=classes,
                        mean=mean, std=std, name=name)


_NPZ_KEYS = {"train": ("x_train", "y_train"), "test": ("x_test", "y_test")}


def load_npz(path, split: str = "train", *, x_key: str | None = None,
             y_key: str | None = None) -> ArrayDataset:
    """A data set from an ``.npz`` file.

    Keys: ``x_key``/``y_key`` if given; else ``x_<split>``/``y_<split>`` if present; else
    ``x``/``y``. Images: uint8 0..255 (or floats in [0, 1]) shaped (N, H, W), NHWC or NCHW.
    An optional string array ``classes`` names the classes.
    """
    path = Path(path)
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read npz ({exc})") from exc
    with archive as z:
        xk, yk = x_key, y_key
        if xk is None or yk is None:
            xk, yk = _NPZ_KEYS.get(split, ("x", "y"))
            xk, yk = (xk, yk) if xk in z else ("x", "y")
        missing = [k for k in (xk, yk) if k not in z]
        if missing:
            raise DataError(f"{path}: missing array(s) {missing}; found {sorted(z.files)} "
                            f"(expected x/y or x_train/y_train + x_test/y_test)")
        x, y = z[xk], z[yk]
        classes = [str(c) for c in z["classes"]] if "classes" in z else None
    if y.ndim != 1 or y.shape[0] != x.shape[0] or y.dtype.kind not in "iu":
        raise DataError(f"{path}: labels {yk!r} must be integers of shape ({x.shape[0]},), "
                        f"got {y.dtype} {y.shape}")
    return ArrayDataset(_to_nchw_uint8(x, str(path)), torch.from_numpy(y.astype(np.int64)),
                        classes=classes, name=path.stem)


_PIL_EXT = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
_OWN_EXT = {".npy", ".pgm", ".ppm"}


def _read_pnm(path: Path) -> np.ndarray:
    """Binary PGM (P5, grey) or PPM (P6, RGB) with maxval <= 255, as (H, W) or (H, W, 3)."""
    data = path.read_bytes()
    fields, pos = [], 2
    while len(fields) < 3:
        while pos < len(data) and data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            pos = data.index(b"\n", pos)
            continue
        end = pos
        while end < len(data) and not data[end:end + 1].isspace():
            end += 1
        fields.append(int(data[pos:end]))
        pos = end
    w, h, maxval = fields
    channels = 1 if data[:2] == b"P5" else 3
    pixels = np.frombuffer(data, np.uint8, count=w * h * channels, offset=pos + 1)
    if maxval > 255:
        raise DataError(f"{path}: 16-bit PNM is not supported")
    return pixels.reshape(h, w) if channels == 1 else pixels.reshape(h, w, 3)


def _read_image(path: Path) -> np.ndarray:
    """One image as a uint8 (H, W) or (H, W, C) array."""
    ext = path.suffix.lower()
    try:
        if ext == ".npy":
            return np.load(path, allow_pickle=False)
        if ext in (".pgm", ".ppm"):
            if path.read_bytes()[:2] not in (b"P5", b"P6"):
                raise DataError(f"{path}: only binary PGM (P5) / PPM (P6) files are supported")
            return _read_pnm(path)
    except (ValueError, IndexError) as exc:
        raise DataError(f"{path}: cannot read image ({exc})") from exc
    try:
        from PIL import Image
    except ImportError:
        raise ImportError(f"reading {ext} images needs Pillow: pip install pillow "
                          f"(or store images as .npy / binary .pgm files)") from None
    with Image.open(path) as im:
        return np.asarray(im.convert("L" if im.mode in ("1", "L", "P", "I;16") else "RGB"))


def load_image_folder(root) -> ArrayDataset:
    """A data set from ``root/<class name>/<image files>``; classes sorted by name.

    All images must have the same size and channel count.
    """
    root = Path(root)
    classes = sorted(d.name for d in root.iterdir() if d.is_dir())
    if not classes:
        raise DataError(f"{root}: no class sub-directories (expected root/<class>/<images>)")
    xs, ys, first = [], [], None
    for label, cls in enumerate(classes):
        for f in sorted(p for p in (root / cls).iterdir() if p.suffix.lower() in _PIL_EXT | _OWN_EXT):
            img = _read_image(f)
            img = img[..., None] if img.ndim == 2 else img
            first = first or (img.shape, f)
            if img.shape != first[0] or img.dtype != np.uint8:
                raise DataError(f"{f}: image {img.dtype} {img.shape} differs from "
                                f"{first[1]} (uint8 {first[0]}); resize all images to one size")
            xs.append(img)
            ys.append(label)
    if not xs:
        raise DataError(f"{root}: no images found (extensions {sorted(_PIL_EXT | _OWN_EXT)})")
    images = torch.from_numpy(np.ascontiguousarray(np.stack(xs).transpose(0, 3, 1, 2)))
    return ArrayDataset(images, torch.tensor(ys), classes=classes, name=root.name)


# --------------------------------------------------------------------------- named sets
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle boot")
# Statistics of the 60k training images / 255 (computed from the Debian package's files).
FASHION_MNIST_STATS = ((0.2860406,), (0.3530242,))
_FASHION_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
                  "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
DEBIAN_DATA_DIR = Path("/usr/share/datasets")


def _data_roots(data_dir) -> list[Path]:
    """Where named data sets are searched, in order."""
    roots = [Path(data_dir)] if data_dir else []
    if os.environ.get("BNNKIT_DATA_DIR"):
        roots.append(Path(os.environ["BNNKIT_DATA_DIR"]))
    return roots + [Path.home() / ".cache" / "bnnkit", DEBIAN_DATA_DIR]


def _find_file(dirs: list[Path], stem: str) -> Path | None:
    for d in dirs:
        for name in (stem + ".gz", stem):
            if (d / name).is_file():
                return d / name
    return None


def _check_split(split: str) -> None:
    if split not in ("train", "test"):
        raise ValueError(f"unknown split {split!r}; known: train, test")


def load_fashion_mnist(split: str = "train", *, data_dir=None) -> ArrayDataset:
    """Fashion-MNIST (Xiao et al. 2017, arXiv 1708.07747): 28x28 grey, 10 classes."""
    _check_split(split)
    dirs = [r / sub for r in _data_roots(data_dir) for sub in ("fashion-mnist", "fashion_mnist", "")]
    paths = [_find_file(dirs, stem) for stem in _FASHION_FILES[split]]
    if None in paths:
        searched = "\n  ".join(str(d) for d in dirs)
        raise DatasetNotFoundError(
            f"Fashion-MNIST {split} files ({', '.join(_FASHION_FILES[split])}[.gz]) not found. "
            f"Get them with one of:\n  sudo apt-get install dataset-fashion-mnist   "
            f"(Debian/Ubuntu, offline; installs into {DEBIAN_DATA_DIR / 'fashion-mnist'})\n"
            f"  or copy the four IDX files into $BNNKIT_DATA_DIR/fashion-mnist or pass "
            f"data_dir=...\nSearched:\n  {searched}")
    mean, std = FASHION_MNIST_STATS
    try:
        return load_idx_dataset(*paths, classes=FASHION_MNIST_CLASSES, name="fashion_mnist",
                                mean=mean, std=std)
    except DataError as exc:
        raise DataError(
            f"Fashion-MNIST {split} files are corrupt: {exc}\nGet a good copy with "
            f"`sudo apt-get install --reinstall dataset-fashion-mnist` (Debian/Ubuntu, "
            f"offline), or replace {paths[0].parent} with the four original IDX files") from exc


def load_digits(split: str = "train", *, data_dir=None) -> ArrayDataset:
    """scikit-learn's 8x8 digits (1797 images, 0..16 scaled to 0..255); fixed 1437/360 split."""
    _check_split(split)
    try:
        from sklearn.datasets import load_digits as sk_load_digits
    except ImportError:
        raise DatasetNotFoundError("the 'digits' data set comes with scikit-learn: "
                                   "pip install scikit-learn") from None
    bunch = sk_load_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)
    order = np.random.default_rng(0).permutation(len(images))
    idx = order[:1437] if split == "train" else order[1437:]
    return ArrayDataset(torch.from_numpy(images[idx][:, None].copy()),
                        torch.from_numpy(bunch.target[idx].astype(np.int64)),
                        classes=[str(i) for i in range(10)], name="digits")


def synthetic(n: int = 512, *, num_classes: int = 4, image_size: int = 16, channels: int = 1,
              seed: int = 0, sample_seed: int = 1, noise: float = 40.0) -> ArrayDataset:
    """A learnable toy data set: class ``k`` is a random template (from ``seed``) plus noise.

    Splits of one task share ``seed`` (the templates) and differ in ``sample_seed``.
    """
    g = torch.Generator().manual_seed(seed)
    templates = torch.rand(num_classes, channels, image_size, image_size, generator=g) * 255
    g = torch.Generator().manual_seed(derive_seed(seed, sample_seed))
    labels = torch.randperm(n, generator=g) % num_classes
    x = templates[labels] + noise * torch.randn(n, channels, image_size, image_size, generator=g)
    return ArrayDataset(x.round().clamp(0, 255).to(torch.uint8), labels, name="synthetic")


def _load_synthetic(split: str = "train", *, data_dir=None) -> ArrayDataset:
    _check_split(split)
    return synthetic(512 if split == "train" else 128, sample_seed=1 if split == "train" else 2)


_NAMED = {"fashion_mnist": load_fashion_mnist, "digits": load_digits, "synthetic": _load_synthetic}


def list_datasets() -> list[str]:
    """Names that :func:`load_dataset` accepts besides paths."""
    return sorted(_NAMED)


def _load_path(path: Path, split: str) -> ArrayDataset:
    if path.is_file():
        if path.suffix == ".npz":
            return load_npz(path, split)
        raise DataError(f"{path}: unknown data file type (expected .npz or a directory)")
    files = {p.name for p in path.iterdir()}
    if any(n.startswith("train-images-idx") for n in files):
        prefix = "train" if split == "train" else "t10k"
        imgs = _find_file([path], f"{prefix}-images-idx3-ubyte")
        labels = _find_file([path], f"{prefix}-labels-idx1-ubyte")
        if imgs is None or labels is None:
            raise DatasetNotFoundError(f"{path}: missing {prefix}-images/labels IDX files")
        return load_idx_dataset(imgs, labels, name=path.name)
    sub = path / split
    return load_image_folder(sub if sub.is_dir() else path)


def load_dataset(name_or_path: str | os.PathLike, split: str = "train", *,
                 data_dir=None) -> ArrayDataset:
    """Load a named data set (:func:`list_datasets`) or one at a path, as an :class:`ArrayDataset`.

    ``split`` is ``"train"`` or ``"test"``. Image folders with no ``train``/``test``
    sub-directory are returned whole. Named sets are searched in ``data_dir``,
    ``$BNNKIT_DATA_DIR``, ``~/.cache/bnnkit`` and ``/usr/share/datasets`` (Debian).
    """
    key = str(name_or_path)
    if key.lower().replace("-", "_") in _NAMED:
        return _NAMED[key.lower().replace("-", "_")](split, data_dir=data_dir)
    path = Path(name_or_path).expanduser()
    if not path.exists():
        raise DatasetNotFoundError(f"unknown data set {key!r}: not a known name "
                                   f"({', '.join(list_datasets())}) and no such file or directory")
    return _load_path(path, split)
