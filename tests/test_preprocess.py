"""A .bnn file carries its preprocessing and class names (issue 15): stored by convert,
filled in by `bnnkit convert` from a training checkpoint, applied with numpy alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import bnnkit
import bnnkit.format as F
from bnnkit import cli, data, models
from bnnkit.preprocess import Preprocess, labels_from_metadata


def _tiny():
    return models.create("quicknet_tiny", num_classes=4, input_size=16, in_channels=1).eval()


def test_apply_matches_training_normalisation_in_every_layout():
    ds = data.synthetic(6, image_size=16, channels=3)
    prep = Preprocess(mean=ds.mean, std=ds.std)
    raw = ds.images.numpy()  # uint8 NCHW
    want = data.normalize(ds.images, ds.mean, ds.std).numpy()
    shape = raw.shape
    np.testing.assert_allclose(prep.apply(raw, shape), want, rtol=0, atol=1e-6)
    np.testing.assert_allclose(prep.apply(raw.transpose(0, 2, 3, 1), shape), want, rtol=0, atol=1e-6)
    one = prep.apply(raw[0].transpose(1, 2, 0), (1, *shape[1:]))  # one HWC image
    np.testing.assert_allclose(one, want[:1], rtol=0, atol=1e-6)
    assert one.dtype == np.float32 and one.flags.c_contiguous


@pytest.mark.parametrize("raw_shape,match", [((2, 16, 16), "fit neither"), ((1, 3, 16, 16), "fit neither")])
def test_apply_names_a_shape_that_does_not_fit(raw_shape, match):
    with pytest.raises(ValueError, match=match):
        Preprocess(mean=[0.5], std=[0.25]).apply(np.zeros(raw_shape, np.uint8), (1, 1, 16, 16))


@pytest.mark.parametrize("kw,match", [({"mean": [0.1], "std": [0.0]}, "std must be finite and > 0"),
                                      ({"mean": [0.1, 0.2], "std": [1.0]}, "one value per channel"),
                                      ({"mean": [float("nan")], "std": [1.0]}, "mean must be finite"),
                                      ({"mean": [0.1], "std": [1.0], "scale": -1}, "scale must be")])
def test_bad_statistics_are_refused(kw, match):
    with pytest.raises(ValueError, match=match):
        Preprocess(**kw)


def test_convert_stores_preprocess_and_labels():
    stats = {"mean": [0.286], "std": [0.353]}
    payload = bnnkit.convert(_tiny(), torch.zeros(1, 1, 16, 16), preprocess=stats, labels=list("abcd"))
    meta = F.read(payload).metadata
    assert Preprocess.from_metadata(meta) == Preprocess(mean=[0.286], std=[0.353])
    assert meta["input.layout"] == "NCHW" and labels_from_metadata(meta) == ["a", "b", "c", "d"]
    plain = F.read(bnnkit.convert(_tiny(), torch.zeros(1, 1, 16, 16))).metadata
    assert Preprocess.from_metadata(plain) is None and labels_from_metadata(plain) is None


def test_convert_refuses_inconsistent_preprocess_and_labels():
    with pytest.raises(ValueError, match="3 labels|3 names for a model with 4 outputs"):
        bnnkit.convert(_tiny(), torch.zeros(1, 1, 16, 16), labels=["a", "b", "c"])
    with pytest.raises(ValueError, match="2 channel statistics"):
        bnnkit.convert(_tiny(), torch.zeros(1, 1, 16, 16), preprocess={"mean": [0, 0], "std": [1, 1]})
    with pytest.raises(ValueError, match="unknown field"):
        bnnkit.convert(_tiny(), torch.zeros(1, 1, 16, 16), preprocess={"mean": [0], "sd": [1]})


def test_cli_convert_fills_preprocess_from_the_checkpoint(tmp_path):
    out = tmp_path / "run"
    assert cli.main(["train", "--model", "quicknet_tiny", "--dataset", "synthetic", "--max-steps", "2",
                     "--batch-size", "32", "--no-progress", "--no-plots", "--out-dir", str(out)]) == 0
    target = tmp_path / "m.bnn"
    assert cli.main(["convert", str(out / "last.pt"), "-o", str(target)]) == 0
    meta = F.read(target.read_bytes()).metadata
    train_ds = data.load_dataset("synthetic", "train")
    assert Preprocess.from_metadata(meta) == Preprocess(mean=train_ds.mean, std=train_ds.std)
    assert labels_from_metadata(meta) == list(train_ds.classes)
