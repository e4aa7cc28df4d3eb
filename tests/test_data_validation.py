"""The validation split held out of the training images, and the large-patch decoy variant."""

from __future__ import annotations

import pytest
import torch

from batchcam.data import load_dataset, load_shapes, make_decoy
from batchcam.data.decoy import signalled_classes
from batchcam.data.validation import holdout_validation
from batchcam.errors import DataValidationError
from batchcam.pipeline import prepare_data
from batchcam.spec.datasets import clean_name, decoy_patch_size
from batchcam.training import TrainConfig


def rows_of(images: torch.Tensor) -> set[bytes]:
    return {image.numpy().tobytes() for image in images}


def test_validation_is_a_fixed_sixth_of_the_training_images_and_disjoint_from_training() -> None:
    splits = load_shapes(seed=0, n_train=600, n_test=50)
    held = holdout_validation(splits)
    assert held.validation and len(held.test) == 100 and len(held.train) == 500
    assert rows_of(held.train.images).isdisjoint(rows_of(held.test.images))
    assert rows_of(held.train.images) | rows_of(held.test.images) == rows_of(splits.train.images)
    assert torch.equal(holdout_validation(splits).test.images, held.test.images)  # fixed split
    assert holdout_validation(held) is held  # never held out twice


def test_decoy_validation_is_painted_like_a_test_split() -> None:
    """Random levels: a shortcut model fails there as on the test split; training stays label-tied."""
    splits = load_dataset("decoy-shapes", seed=0, validation=True)
    assert splits.validation and splits.name == "decoy-shapes[validation]"
    agreeing = (signalled_classes(splits.test) == splits.test.labels).float().mean()
    assert agreeing < 0.4  # 1/5 by chance
    assert torch.equal(signalled_classes(splits.train), splits.train.labels)


def test_a_config_asking_for_validation_evaluates_there_once() -> None:
    config = TrainConfig(dataset="decoy-shapes", evaluation_split="validation")
    prepared = prepare_data(config)
    assert prepared.validation
    again = prepare_data(config, splits=prepared)  # the trainer's second look: nothing held out twice
    assert len(again.train) == len(prepared.train) and torch.equal(again.test.images, prepared.test.images)
    uploaded = load_shapes(seed=0, n_train=120, n_test=10)  # given splits (an upload) are held out too
    assert len(prepare_data(config, splits=uploaded).test) == 20


def test_too_small_a_training_split_for_validation_is_a_clear_error() -> None:
    tiny = load_shapes(seed=0, n_train=2, n_test=2)
    with pytest.raises(DataValidationError, match="too small to hold out a validation split"):
        holdout_validation(tiny)


def test_the_large_decoy_variant_paints_8_by_8_patches() -> None:
    assert decoy_patch_size("decoy-large-mnist") == 8 and decoy_patch_size("decoy-mnist") == 4
    assert decoy_patch_size("mnist") is None
    assert clean_name("decoy-large-fashion-mnist") == "fashion-mnist" == clean_name("decoy-fashion-mnist")
    for patch_size, prefix in ((4, "decoy-"), (8, "decoy-large-")):
        splits = make_decoy(load_shapes(seed=0, n_train=40, n_test=10), seed=0, patch_size=patch_size)
        assert splits.name == f"{prefix}shapes" and splits.train.decoy_masks is not None
        assert set(splits.train.decoy_masks.sum(dim=(1, 2)).tolist()) == {patch_size**2}
        assert torch.equal(signalled_classes(splits.train), splits.train.labels)
