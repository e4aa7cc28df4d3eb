"""The built-in procedural ``shapes`` dataset."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from batchcam.data import load_dataset, load_shapes, make_shapes
from batchcam.errors import ConfigError
from batchcam.spec.datasets import BUILTIN_DATASETS

CIRCLE, SQUARE, TRIANGLE, PLUS, RING = range(5)


@pytest.fixture(scope="module")
def shapes() -> torch.utils.data.Dataset:
    return make_shapes(1000, seed=3)


def test_same_seed_gives_identical_data_and_other_seeds_differ() -> None:
    first, again, other = make_shapes(200, seed=7), make_shapes(200, seed=7), make_shapes(200, seed=8)
    assert torch.equal(first.images, again.images)
    assert torch.equal(first.labels, again.labels)
    assert torch.equal(first.object_masks, again.object_masks)
    assert first.fingerprint == again.fingerprint
    assert not torch.equal(first.images, other.images)
    assert first.fingerprint != other.fingerprint


def test_result_does_not_depend_on_render_chunking(monkeypatch: pytest.MonkeyPatch) -> None:
    whole = make_shapes(300, seed=1)
    monkeypatch.setattr("batchcam.data.shapes.CHUNK", 64)
    assert torch.equal(make_shapes(300, seed=1).images, whole.images)


def test_layout_classes_balanced_and_shuffled() -> None:
    dataset = make_shapes(1003, seed=0)
    assert dataset.images.shape == (1003, 1, 28, 28) and dataset.images.dtype == torch.uint8
    assert dataset.object_masks.shape == (1003, 28, 28) and dataset.object_masks.dtype == torch.bool
    assert dataset.class_names == ("circle", "square", "triangle", "plus", "ring")
    counts = dataset.class_counts()
    assert int(counts.max() - counts.min()) <= 1 and int(counts.sum()) == 1003
    assert (dataset.labels != torch.arange(1003) % 5).float().mean() > 0.5  # not in generation order


def test_masks_cover_the_bright_object_and_stay_inside_the_frame(shapes) -> None:
    images, masks = shapes.images[:, 0].float(), shapes.object_masks
    assert bool(masks.flatten(1).any(1).all()), "every image has an object"
    assert not bool(masks[:, 0].any() or masks[:, -1].any() or masks[:, :, 0].any() or masks[:, :, -1].any())
    inside, outside = images[masks], images[~masks]
    assert (inside > 60).float().mean() > 0.99, "masked pixels are object ink"
    assert inside.mean() > 150 and outside.median() < 40
    # the ground truth explains the image: almost all bright pixels are inside the mask
    bright = images > 150
    assert (bright & masks).sum() / bright.sum() > 0.9


def test_distractors_appear_outside_the_object(shapes) -> None:
    images, masks = shapes.images[:, 0].float(), shapes.object_masks
    near_object = torch.nn.functional.max_pool2d(masks[:, None].float(), 3, stride=1, padding=1)[:, 0] > 0
    bright_elsewhere = ((images > 110) & ~near_object).flatten(1).any(1)
    assert bright_elsewhere.float().mean() > 0.85


def test_mask_geometry_matches_the_class(shapes) -> None:
    masks, labels = shapes.object_masks, shapes.labels
    area = masks.flatten(1).sum(1).float()
    grid_y, grid_x = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    centre_y = ((masks * grid_y).flatten(1).sum(1) / area).round().long()
    centre_x = ((masks * grid_x).flatten(1).sum(1) / area).round().long()
    centre_inked = masks[torch.arange(len(masks)), centre_y, centre_x]
    assert bool(centre_inked[labels == CIRCLE].all()), "a circle is filled"
    assert not bool(centre_inked[labels == RING].any()), "a ring is hollow"
    mean_area = {label: float(area[labels == label].mean()) for label in range(5)}
    assert mean_area[CIRCLE] > mean_area[SQUARE] > mean_area[TRIANGLE]
    assert mean_area[RING] < 0.7 * mean_area[CIRCLE]


def test_load_shapes_gives_distinct_train_and_test() -> None:
    splits = load_shapes(seed=0, n_train=100, n_test=50)
    assert splits.name == "shapes"
    assert (len(splits.train), len(splits.test)) == (100, 50)
    assert splits.train.fingerprint != splits.test.fingerprint
    assert not torch.equal(splits.train.images[:50], splits.test.images)
    assert splits.fingerprint == load_shapes(seed=0, n_train=100, n_test=50).fingerprint
    assert splits.fingerprint != load_shapes(seed=1, n_train=100, n_test=50).fingerprint


def test_other_image_sizes_scale_the_objects() -> None:
    small, large = make_shapes(100, seed=2), make_shapes(100, seed=2, image_size=56)
    assert large.images.shape == (100, 1, 56, 56)
    ratio = large.object_masks.float().mean() / small.object_masks.float().mean()
    assert 0.8 < float(ratio) < 1.25, "objects cover the same fraction of the frame"


@pytest.mark.parametrize(("n", "image_size"), [(0, 28), (10, 8)])
def test_bad_options_are_refused(n: int, image_size: int) -> None:
    with pytest.raises(ConfigError) as caught:
        make_shapes(n, seed=0, image_size=image_size)
    assert caught.value.code == "invalid_dataset_option"


def test_six_thousand_images_generate_fast() -> None:
    make_shapes(50, seed=0)  # warm up
    start = time.perf_counter()
    make_shapes(6000, seed=0)
    assert time.perf_counter() - start < 2.0


def test_registry_serves_shapes_and_resizes_them() -> None:
    assert set(BUILTIN_DATASETS) == {
        "shapes",
        "mnist",
        "fashion-mnist",
        "decoy-shapes",
        "decoy-mnist",
        "decoy-fashion-mnist",
        "decoy-large-mnist",
        "decoy-large-fashion-mnist",
    }
    splits = load_dataset("shapes", seed=4)
    assert (len(splits.train), len(splits.test)) == (4000, 1000)
    resized = load_dataset("shapes", seed=4, image_size=40)
    assert resized.train.images.shape[1:] == (1, 40, 40)
    assert resized.train.object_masks.shape[1:] == (40, 40)
    assert torch.equal(resized.train.labels, splits.train.labels)
    fraction = resized.train.object_masks.float().mean() / splits.train.object_masks.float().mean()
    assert 0.9 < float(fraction) < 1.1
    assert abs(resized.train.images.float().mean() - splits.train.images.float().mean()) < 2


def test_unknown_dataset_names_the_accepted_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        load_dataset("cifar10")
    assert caught.value.code == "unknown_dataset"
    assert "cifar10" in caught.value.message and "fashion-mnist" in caught.value.message


def test_pixels_are_not_saturated_noise() -> None:
    images = make_shapes(200, seed=5).images.numpy()
    assert 0 < np.mean(images == 0) < 0.6, "background noise is visible but clipped at black"
    assert np.mean(images == 255) < 0.05
