"""What the CAM losses pull toward: the class prototypes, the three controls, median prototypes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from batchcam.data import load_dataset, load_shapes
from batchcam.pipeline import prototypes_for
from batchcam.prototypes import class_median_prototypes
from batchcam.targets import derangement, gaussian_blob, global_mean, training_targets


@pytest.fixture(scope="module")
def shapes_train():
    return load_shapes(seed=0, n_train=300, n_test=10).train


def minmax(x: torch.Tensor) -> torch.Tensor:
    return (x - x.min()) / (x.max() - x.min() + 1e-7)


def test_class_targets_are_the_prototypes(shapes_train) -> None:
    prototypes = prototypes_for(shapes_train)
    targets = training_targets(prototypes, "class", shapes_train)
    assert targets.maps is prototypes and targets.describe() == {"kind": "class"}


def test_gaussian_target_is_one_centred_blob_for_every_class(shapes_train) -> None:
    prototypes = prototypes_for(shapes_train)
    maps = training_targets(prototypes, "gaussian", shapes_train).maps
    assert maps.shape == prototypes.shape and all(torch.equal(maps[0], m) for m in maps)
    blob = gaussian_blob(28, 28)
    assert torch.allclose(maps[0], blob)
    assert blob.max() == pytest.approx(1.0, abs=1e-6) and blob.min() == pytest.approx(0.0, abs=1e-6)
    assert torch.allclose(blob, blob.flip(0)) and torch.allclose(blob, blob.T)  # centred, isotropic
    assert blob[13:15, 13:15].min() > 0.95 and blob[0, 0] < 0.01


def test_global_mean_target_is_the_mean_of_all_training_images(shapes_train) -> None:
    expected = minmax(shapes_train.images.double().mean(dim=(0, 1)) / 255).float()
    assert torch.allclose(global_mean(shapes_train), expected, atol=1e-5)
    maps = training_targets(prototypes_for(shapes_train), "global-mean", shapes_train).maps
    assert all(torch.allclose(m, expected, atol=1e-5) for m in maps)


def test_permuted_target_moves_every_class_to_another_ones_prototype(shapes_train) -> None:
    prototypes = prototypes_for(shapes_train)
    targets = training_targets(prototypes, "permuted", shapes_train)
    assert targets.permutation is not None
    assert sorted(targets.permutation) == list(range(5))
    assert all(source != k for k, source in enumerate(targets.permutation))
    for k, source in enumerate(targets.permutation):
        assert torch.equal(targets.maps[k], prototypes[source])
    assert targets.describe() == {"kind": "permuted", "permutation": list(targets.permutation)}
    assert derangement(10) == derangement(10)  # fixed: every run of the control pulls the same way


@pytest.mark.parametrize("classes", [2, 3, 7, 10])
def test_derangement_has_no_fixed_point(classes: int) -> None:
    permutation = derangement(classes)
    assert sorted(permutation) == list(range(classes)) and all(p != k for k, p in enumerate(permutation))


def test_median_prototypes_match_numpy() -> None:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (40, 3, 6, 6), dtype=torch.uint8, generator=generator)
    labels = torch.arange(40) % 3
    excluded = torch.rand(40, 6, 6, generator=generator) > 0.8
    medians = class_median_prototypes(images, labels, 4, excluded)
    gray = images.double().mean(dim=1).numpy() / 255
    for label in range(3):
        rows = (labels == label).numpy()
        values = np.where(excluded.numpy()[rows], np.nan, gray[rows])
        # torch's median of an even count is the lower middle value: numpy's "lower" quantile
        expected = torch.from_numpy(np.nanquantile(values, 0.5, axis=0, method="lower"))
        assert torch.allclose(medians[label], minmax(expected).float(), atol=1e-5)
    assert torch.equal(medians[3], torch.zeros(6, 6))  # a class without images


def test_median_prototypes_leave_out_a_decoy_patch_that_the_means_hold() -> None:
    """Each corner holds a class's patch in a quarter of its images: the mean moves, the median not."""
    clean, decoy = load_dataset("shapes", seed=0).train, load_dataset("decoy-shapes", seed=0).train
    assert decoy.decoy_masks is not None
    corners = decoy.decoy_masks.any(dim=0)
    for statistic, moved in (("mean", True), ("median", False)):
        shift = (
            prototypes_for(decoy, statistic=statistic) - prototypes_for(clean, statistic=statistic)
        ).abs()
        assert (shift[:, corners].mean() > 0.1) == moved
