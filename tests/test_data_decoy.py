"""Decoy variants: a label-revealing gray corner patch in train, a random one in test."""

from __future__ import annotations

import pytest
import torch

from batchcam.data import ImageDataset, add_decoy, load_dataset, make_decoy, make_shapes
from batchcam.data.decoy import corner_masks, signalled_classes
from batchcam.errors import DataValidationError


@pytest.fixture(scope="module")
def source() -> ImageDataset:
    return make_shapes(1000, seed=11)


def patch_levels(dataset: ImageDataset) -> torch.Tensor:
    """The gray level inside each image's decoy patch (checking that the patch is uniform)."""
    values = dataset.images.permute(0, 2, 3, 1)[dataset.decoy_masks].reshape(len(dataset), -1)
    assert bool((values == values[:, :1]).all()), "the patch is one flat gray level"
    return values[:, 0].long()


def corner_index(dataset: ImageDataset) -> torch.Tensor:
    """Which of the four corner patches each image carries (asserting it is exactly one of them)."""
    matches = (dataset.decoy_masks[:, None] == corner_masks(*dataset.image_size)[None]).flatten(2).all(2)
    assert bool((matches.sum(1) == 1).all()), "every decoy mask is exactly one 4×4 corner patch"
    return matches.float().argmax(1)


def test_train_patch_encodes_the_label_exactly(source: ImageDataset) -> None:
    decoyed = add_decoy(source, split="train", seed=0)
    assert torch.equal(patch_levels(decoyed), 255 - 25 * source.labels)
    assert decoyed.decoy_masks.flatten(1).sum(1).tolist() == [16] * len(source)
    corners = corner_index(decoyed)
    assert set(corners.tolist()) == {0, 1, 2, 3}
    assert int(torch.bincount(corners).min()) > len(source) / 4 * 0.7, "corners are drawn uniformly"


def test_test_patch_is_not_tied_to_the_label(source: ImageDataset) -> None:
    decoyed = add_decoy(source, split="test", seed=0)
    levels = patch_levels(decoyed)
    assert bool(((255 - levels) % 25 == 0).all()), "levels are still 255 − 25·class"
    implied = (255 - levels) // 25
    assert set(implied.tolist()) == set(range(source.num_classes))
    mismatch = (implied != source.labels).float().mean()
    assert 0.7 < float(mismatch) < 0.9, "about 4 in 5 patches disagree with the label (5 classes)"
    correlation = torch.corrcoef(torch.stack([implied.float(), source.labels.float()]))[0, 1]
    assert abs(float(correlation)) < 0.1


def test_only_the_patch_changes_and_object_masks_exclude_it(source: ImageDataset) -> None:
    decoyed = add_decoy(source, split="train", seed=0)
    outside = ~decoyed.decoy_masks[:, None].expand_as(source.images)
    assert torch.equal(decoyed.images[outside], source.images[outside])
    assert torch.equal(decoyed.labels, source.labels) and decoyed.class_names == source.class_names
    assert torch.equal(decoyed.object_masks, source.object_masks & ~decoyed.decoy_masks)


def test_decoys_are_deterministic_per_seed_and_split(source: ImageDataset) -> None:
    first = add_decoy(source, split="train", seed=5)
    assert torch.equal(first.images, add_decoy(source, split="train", seed=5).images)
    assert not torch.equal(corner_index(first), corner_index(add_decoy(source, split="train", seed=6)))
    assert not torch.equal(corner_index(first), corner_index(add_decoy(source, split="test", seed=5)))


def test_rgb_images_get_a_gray_patch_in_every_channel() -> None:
    gray = make_shapes(40, seed=1)
    rgb = ImageDataset(
        images=gray.images.expand(-1, 3, -1, -1).clone(), labels=gray.labels, class_names=gray.class_names
    )
    decoyed = add_decoy(rgb, split="train", seed=0)
    assert torch.equal(patch_levels(decoyed), 255 - 25 * gray.labels)
    assert decoyed.object_masks is None


def test_make_decoy_names_the_variant_and_keeps_sizes() -> None:
    splits = make_decoy(load_dataset("shapes", seed=2), seed=3)
    assert splits.name == "decoy-shapes"
    assert torch.equal(patch_levels(splits.train), 255 - 25 * splits.train.labels)
    assert float(((255 - patch_levels(splits.test)) // 25 != splits.test.labels).float().mean()) > 0.7
    registry = load_dataset("decoy-shapes", seed=2)
    assert registry.fingerprint == make_decoy(load_dataset("shapes", seed=2), seed=2).fingerprint


def test_more_than_ten_classes_are_refused() -> None:
    dataset = ImageDataset(
        images=torch.zeros(11, 1, 28, 28, dtype=torch.uint8),
        labels=torch.arange(11),
        class_names=tuple(f"class {index}" for index in range(11)),
    )
    with pytest.raises(DataValidationError) as caught:
        add_decoy(dataset, split="train", seed=0)
    assert caught.value.code == "decoy_too_many_classes"
    assert "11" in caught.value.message and "255 − 25·label" in caught.value.message


def test_images_too_small_for_corner_patches_are_refused() -> None:
    dataset = ImageDataset(
        images=torch.zeros(2, 1, 6, 6, dtype=torch.uint8), labels=torch.tensor([0, 1]), class_names=("a", "b")
    )
    with pytest.raises(DataValidationError) as caught:
        add_decoy(dataset, split="test", seed=0)
    assert caught.value.code == "decoy_image_too_small"


def test_signalled_classes_read_back_the_patch_class(source: ImageDataset) -> None:
    train, test = add_decoy(source, split="train", seed=3), add_decoy(source, split="test", seed=3)
    assert torch.equal(signalled_classes(train), source.labels)
    assert torch.equal(signalled_classes(test), (255 - patch_levels(test)) // 25)
    with pytest.raises(DataValidationError):
        signalled_classes(source)
