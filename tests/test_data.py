"""bnnkit.data: IDX/npz/image-folder loaders, named sets, augmentation, the batch loader."""

import gzip
import os

import numpy as np
import pytest
import torch

from bnnkit import data

FASHION = data.DEBIAN_DATA_DIR / "fashion-mnist"
needs_fashion = pytest.mark.skipif(not (FASHION / "t10k-images-idx3-ubyte.gz").is_file(),
                                   reason="apt-get install dataset-fashion-mnist")


def _images(n=10, h=5, w=7, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, h, w), dtype=np.uint8)


# --------------------------------------------------------------------------- IDX
@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_idx_roundtrip(tmp_path, suffix, dtype):
    arr = (np.arange(2 * 3 * 4) - 7).astype(dtype).reshape(2, 3, 4) if dtype != np.uint8 \
        else _images(2, 3, 4)
    path = data.write_idx(tmp_path / f"a.idx{suffix}", arr)
    back = data.read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.shape == (2, 3, 4)
    np.testing.assert_array_equal(back, arr)


def test_idx_header_is_big_endian(tmp_path):
    path = data.write_idx(tmp_path / "l.idx", np.array([1, 2, 3], np.uint8))
    assert path.read_bytes() == bytes([0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 3])


def test_idx_truncated_names_file(tmp_path):
    path = data.write_idx(tmp_path / "x.idx", _images(4))
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(data.DataError, match=r"x\.idx.*135 bytes.*\(4, 5, 7\).*140"):
        data.read_idx(path)


def test_idx_bad_magic_and_bad_gzip(tmp_path):
    bad = tmp_path / "bad.idx"
    bad.write_bytes(b"\x01\x02\x08\x01\x00\x00\x00\x01\x00")
    with pytest.raises(data.DataError, match="bad.idx: not an IDX file"):
        data.read_idx(bad)
    gz = tmp_path / "cut.idx.gz"
    gz.write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x04abcd")[:-6])
    with pytest.raises(data.DataError, match="cut.idx.gz: corrupt gzip"):
        data.read_idx(gz)


def test_idx_dataset_label_count_mismatch(tmp_path):
    x = data.write_idx(tmp_path / "x.idx", _images(4))
    y = data.write_idx(tmp_path / "y.idx", np.zeros(3, np.uint8))
    with pytest.raises(data.DataError, match="do not match 3 labels"):
        data.load_idx_dataset(x, y)


def test_idx_directory_by_path(tmp_path):
    for prefix, n in (("train", 6), ("t10k", 4)):
        data.write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", _images(n, 4, 4))
        data.write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte", np.arange(n, dtype=np.uint8) % 3)
    train, test = data.load_dataset(tmp_path, "train"), data.load_dataset(tmp_path, "test")
    assert (len(train), len(test), train.num_classes, train.image_shape) == (6, 4, 3, (1, 4, 4))


# --------------------------------------------------------------------------- npz / folders
def test_npz_split_keys_and_layouts(tmp_path):
    x = _images(6, 4, 4)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=np.arange(6) % 2,
             x_test=np.repeat(x[:2, :, :, None], 3, axis=3), y_test=np.array([1, 0]),
             classes=np.array(["cat", "dog"]))
    train = data.load_dataset(tmp_path / "d.npz", "train")
    test = data.load_dataset(tmp_path / "d.npz", "test")
    assert train.image_shape == (1, 4, 4) and test.image_shape == (3, 4, 4)
    assert train.classes == ["cat", "dog"]
    torch.testing.assert_close(test.images[:, 2], torch.from_numpy(x[:2]))


def test_npz_plain_keys_float_images_and_errors(tmp_path):
    np.savez(tmp_path / "f.npz", x=np.full((2, 3, 3), 0.5, np.float32), y=np.array([0, 1]))
    ds = data.load_npz(tmp_path / "f.npz")
    assert ds.images.unique().tolist() == [128]  # rint(127.5) = 128 (half to even)
    np.savez(tmp_path / "g.npz", images=np.zeros((2, 3, 3)), labels=np.zeros(2))
    with pytest.raises(data.DataError, match=r"missing array\(s\) \['x', 'y'\].*images"):
        data.load_npz(tmp_path / "g.npz")
    np.savez(tmp_path / "h.npz", x=np.full((1, 2, 2), 3.0), y=np.array([0]))
    with pytest.raises(data.DataError, match=r"float images must lie in \[0, 1\]"):
        data.load_npz(tmp_path / "h.npz")


def _write_pgm(path, img):
    path.write_bytes(b"P5\n# comment\n%d %d\n255\n" % (img.shape[1], img.shape[0]) + img.tobytes())


def test_image_folder_npy_and_pgm(tmp_path):
    imgs = _images(3, 4, 5)
    (tmp_path / "train" / "b").mkdir(parents=True)
    (tmp_path / "train" / "a").mkdir()
    np.save(tmp_path / "train" / "a" / "0.npy", imgs[0])
    _write_pgm(tmp_path / "train" / "b" / "1.pgm", imgs[1])
    _write_pgm(tmp_path / "train" / "b" / "2.pgm", imgs[2])
    ds = data.load_dataset(tmp_path, "train")
    assert ds.classes == ["a", "b"] and ds.labels.tolist() == [0, 1, 1]
    torch.testing.assert_close(ds.images[:, 0], torch.from_numpy(imgs))


def test_image_folder_size_mismatch_and_png_without_pillow(tmp_path):
    (tmp_path / "a").mkdir()
    np.save(tmp_path / "a" / "0.npy", _images(1, 4, 4)[0])
    np.save(tmp_path / "a" / "1.npy", _images(1, 5, 4)[0])
    with pytest.raises(data.DataError, match=r"1\.npy.*differs.*resize"):
        data.load_image_folder(tmp_path)
    try:
        import PIL  # noqa: F401
    except ImportError:
        (tmp_path / "a" / "1.npy").unlink()
        (tmp_path / "a" / "2.png").write_bytes(b"\x89PNG")
        with pytest.raises(ImportError, match="pip install pillow"):
            data.load_image_folder(tmp_path)


# --------------------------------------------------------------------------- named sets
def test_missing_fashion_mnist_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "DEBIAN_DATA_DIR", tmp_path / "nowhere")
    monkeypatch.setenv("BNNKIT_DATA_DIR", str(tmp_path / "env"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with pytest.raises(data.DatasetNotFoundError) as err:
        data.load_dataset("fashion_mnist", "test")
    msg = str(err.value)
    assert "apt-get install dataset-fashion-mnist" in msg and "BNNKIT_DATA_DIR" in msg
    assert str(tmp_path / "env" / "fashion-mnist") in msg


def test_fashion_mnist_found_via_env_var(tmp_path, monkeypatch):
    d = tmp_path / "fashion-mnist"
    d.mkdir()
    data.write_idx(d / "t10k-images-idx3-ubyte.gz", _images(5, 28, 28))
    data.write_idx(d / "t10k-labels-idx1-ubyte.gz", np.array([9, 0, 1, 2, 3], np.uint8))
    monkeypatch.setattr(data, "DEBIAN_DATA_DIR", tmp_path / "nowhere")
    monkeypatch.setenv("BNNKIT_DATA_DIR", str(tmp_path))
    ds = data.load_dataset("fashion_mnist", "test")
    assert len(ds) == 5 and ds.classes[9] == "Ankle boot" and ds.mean == (0.2860406,)


def test_corrupt_fashion_mnist_says_how_to_get_a_good_copy(tmp_path, monkeypatch):
    d = tmp_path / "fashion-mnist"
    d.mkdir()
    images = data.write_idx(d / "t10k-images-idx3-ubyte", _images(5, 28, 28))
    data.write_idx(d / "t10k-labels-idx1-ubyte", np.arange(5, dtype=np.uint8))
    images.write_bytes(images.read_bytes()[:-100])  # a truncated copy
    monkeypatch.setattr(data, "DEBIAN_DATA_DIR", tmp_path / "nowhere")
    with pytest.raises(data.DataError) as err:
        data.load_dataset("fashion_mnist", "test", data_dir=tmp_path)
    msg = str(err.value)
    assert "Fashion-MNIST test files are corrupt" in msg and "truncated" in msg
    assert "apt-get install --reinstall dataset-fashion-mnist" in msg and str(d) in msg


def test_unknown_name_lists_known():
    with pytest.raises(data.DatasetNotFoundError, match="fashion_mnist, synthetic"):
        data.load_dataset("cifar-11")
    with pytest.raises(ValueError, match="unknown split 'val'"):
        data.load_dataset("synthetic", "val")


@needs_fashion
def test_real_fashion_mnist_test_split():
    ds = data.load_dataset("fashion_mnist", "test")
    assert ds.images.shape == (10000, 1, 28, 28) and ds.images.dtype == torch.uint8
    assert torch.bincount(ds.labels).tolist() == [1000] * 10  # the published balanced split


@needs_fashion
def test_fashion_mnist_stats_match_train_split():
    ds = data.load_dataset("fashion_mnist", "train")
    assert len(ds) == 60000
    mean, std = data._channel_stats(ds.images)
    assert abs(mean[0] - data.FASHION_MNIST_STATS[0][0]) < 1e-6
    assert abs(std[0] - data.FASHION_MNIST_STATS[1][0]) < 1e-6


def test_digits_needs_sklearn_or_loads():
    try:
        import sklearn  # noqa: F401
    except ImportError:
        with pytest.raises(data.DatasetNotFoundError, match="pip install scikit-learn"):
            data.load_dataset("digits")
        return
    train, test = data.load_dataset("digits"), data.load_dataset("digits", "test")
    assert (len(train), len(test), train.image_shape) == (1437, 360, (1, 8, 8))


# --------------------------------------------------------------------------- augmentation
def test_random_crop_is_a_shifted_window_of_the_padded_image():
    x = torch.arange(2 * 3 * 4 * 5, dtype=torch.int64).reshape(2, 3, 4, 5).to(torch.uint8)
    gen = torch.Generator().manual_seed(3)
    out = data.random_crop(x, 2, gen)
    gen = torch.Generator().manual_seed(3)
    oy = torch.randint(0, 5, (2, 1, 1), generator=gen).flatten()
    ox = torch.randint(0, 5, (2, 1, 1), generator=gen).flatten()
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for b in range(2):
        expect = padded[b, :, oy[b]:oy[b] + 4, ox[b]:ox[b] + 5]
        assert torch.equal(out[b], expect)


def test_hflip_flips_about_half_and_exactly():
    x = torch.randint(0, 256, (400, 1, 3, 3), dtype=torch.uint8)
    out = data.Augment(crop_padding=0, hflip=True)(x, torch.Generator().manual_seed(0))
    same = (out == x).flatten(1).all(1)
    flipped = (out == x.flip(3)).flatten(1).all(1)
    assert bool((same | flipped).all()) and 150 < int(flipped.sum()) < 250


def test_normalize_formula():
    x = torch.tensor([0, 51, 255], dtype=torch.uint8).view(3, 1, 1, 1)
    out = data.normalize(x, (0.2,), (0.5,))
    torch.testing.assert_close(out.flatten(), torch.tensor([-0.4, 0.0, 1.6]))


# --------------------------------------------------------------------------- batch loader
def test_loader_is_deterministic_and_resumable():
    ds = data.synthetic(50, num_classes=3, image_size=8)
    mk = lambda: data.BatchLoader(ds, 8, shuffle=True, augment=data.Augment(2, True), seed=5)
    a, b = mk(), mk()
    a.set_epoch(2)
    b.set_epoch(2)
    full = list(a)
    tail = list(b.iterate(start=3))
    assert len(full) == 7 and len(tail) == 4
    for (x1, y1), (x2, y2) in zip(full[3:], tail):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)
    b.set_epoch(3)
    assert not torch.equal(next(iter(b))[1], full[0][1])


def test_loader_covers_every_sample_once_per_epoch():
    ds = data.synthetic(37, num_classes=37, image_size=4)
    loader = data.BatchLoader(ds, 5, shuffle=True, seed=1)
    loader.set_epoch(4)
    labels = torch.cat([y for _, y in loader])
    assert sorted(labels.tolist()) == list(range(37))
    x, _ = next(iter(data.BatchLoader(ds, 5, channels_last=True)))
    assert x.is_contiguous(memory_format=torch.channels_last)


def test_dataset_getitem_matches_loader():
    ds = data.synthetic(10, image_size=6)
    x, y = next(iter(data.BatchLoader(ds, 10)))
    xi, yi = ds[3]
    torch.testing.assert_close(xi, x[3])
    assert int(yi) == int(y[3])
