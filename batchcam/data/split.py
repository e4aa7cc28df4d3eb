"""The deterministic stratified train/test split used for uploads that bring no test set."""

from __future__ import annotations

import numpy as np
import torch

from batchcam.data.dataset import DatasetSplits, ImageDataset
from batchcam.errors import DataValidationError

TEST_FRACTION = 0.2


def stratified_split_indices(
    labels: torch.Tensor, num_classes: int, *, seed: int, test_fraction: float = TEST_FRACTION
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorted train and test row indices: about ``test_fraction`` of each class goes to test.

    A class with at least two images gives at least one to test; every class keeps at least one in
    train, so training always sees every class.
    """
    rng = np.random.default_rng(seed)
    label_array = labels.numpy()
    train_parts: list[np.ndarray] = []
    test_parts: list[np.ndarray] = []
    for label in range(num_classes):
        rows = rng.permutation(np.flatnonzero(label_array == label))
        n_test = min(len(rows) - 1, max(1, round(test_fraction * len(rows))))
        n_test = max(n_test, 0)
        test_parts.append(rows[:n_test])
        train_parts.append(rows[n_test:])
    return as_sorted_index(train_parts), as_sorted_index(test_parts)


def as_sorted_index(parts: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.sort(np.concatenate(parts)).astype(np.int64))


def split_dataset(dataset: ImageDataset, *, name: str, seed: int) -> DatasetSplits:
    """An 80/20 stratified split of ``dataset``; refuses data too small to leave any test image."""
    train_rows, test_rows = stratified_split_indices(dataset.labels, dataset.num_classes, seed=seed)
    if len(test_rows) == 0:
        raise DataValidationError(
            f"dataset {name!r} is too small to split into train and test: at least one class needs "
            "two or more images (or provide test_images and test_labels)",
            code="too_few_images",
        )
    return DatasetSplits(name=name, train=dataset.subset(train_rows), test=dataset.subset(test_rows))
