"""Decoy variants (Ross et al. 2017, Decoy-MNIST): a gray corner patch that gives the label away.

In the training split the patch's gray level is ``255 − 25·label``, a shortcut a model can learn
instead of the object; in the test split it is ``255 − 25·r`` for a random class ``r``, so a model
that took the shortcut fails there. ``decoy_masks`` marks the patch for evaluating explanations.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Literal

import numpy as np
import torch

from batchcam.data.dataset import DatasetSplits, ImageDataset
from batchcam.errors import DataValidationError
from batchcam.spec.datasets import PATCH_SIZE

GRAY_STEP = 25
MAX_DECOY_CLASSES = 10  # 255 − 25·label stays ≥ 0 up to label 10; 10 classes keep levels ≥ 30
# Train and test draw from independent streams of one seed.
SPLIT_STREAMS: Mapping[str, int] = MappingProxyType({"train": 0, "test": 1})

Split = Literal["train", "test"]


def make_decoy(splits: DatasetSplits, seed: int = 0, patch_size: int = PATCH_SIZE) -> DatasetSplits:
    """The ``decoy-<name>`` variant (``decoy-large-<name>`` with 8×8 patches): label-tied patches in
    train, random-level patches in test."""
    prefix = "decoy-" if patch_size == PATCH_SIZE else "decoy-large-"
    return replace(
        splits,
        name=f"{prefix}{splits.name}",
        train=add_decoy(splits.train, split="train", seed=seed, patch_size=patch_size),
        test=add_decoy(splits.test, split="test", seed=seed, patch_size=patch_size),
    )


def add_decoy(
    dataset: ImageDataset, *, split: Split, seed: int, patch_size: int = PATCH_SIZE
) -> ImageDataset:
    """Paint a square patch into a random corner of every image (all channels), deterministic per seed."""
    check_decoy_possible(dataset, patch_size)
    rng = np.random.default_rng([seed, SPLIT_STREAMS[split]])
    corners = torch.from_numpy(rng.integers(0, 4, size=len(dataset)))
    level_labels = dataset.labels if split == "train" else random_labels(rng, dataset)
    levels = (255 - GRAY_STEP * level_labels).to(torch.uint8)
    patches = corner_masks(*dataset.image_size, patch_size)[corners]
    images = torch.where(patches[:, None], levels[:, None, None, None], dataset.images)
    return ImageDataset(
        images=images,
        labels=dataset.labels,
        class_names=dataset.class_names,
        object_masks=None if dataset.object_masks is None else dataset.object_masks & ~patches,
        decoy_masks=patches,
        description=f"{dataset.description} + {patch_size}×{patch_size} decoy corner patch "
        f"({split}: {decoy_rule(split)})",
    )


def check_decoy_possible(dataset: ImageDataset, patch_size: int = PATCH_SIZE) -> None:
    if dataset.num_classes > MAX_DECOY_CLASSES:
        raise DataValidationError(
            f"a decoy patch encodes the label as gray level 255 − 25·label, which works for at most "
            f"{MAX_DECOY_CLASSES} classes; this dataset has {dataset.num_classes}",
            code="decoy_too_many_classes",
        )
    height, width = dataset.image_size
    if height < 2 * patch_size or width < 2 * patch_size:
        raise DataValidationError(
            f"images of {height}×{width} are too small for {patch_size}×{patch_size} corner patches; "
            f"at least {2 * patch_size}×{2 * patch_size} is needed",
            code="decoy_image_too_small",
        )


def random_labels(rng: np.random.Generator, dataset: ImageDataset) -> torch.Tensor:
    return torch.from_numpy(rng.integers(0, dataset.num_classes, size=len(dataset)))


def corner_masks(height: int, width: int, size: int = PATCH_SIZE) -> torch.Tensor:
    """Four boolean ``H×W`` masks: top-left, top-right, bottom-left, bottom-right patch."""
    masks = torch.zeros(4, height, width, dtype=torch.bool)
    masks[0, :size, :size] = True
    masks[1, :size, -size:] = True
    masks[2, -size:, :size] = True
    masks[3, -size:, -size:] = True
    return masks


def signalled_classes(dataset: ImageDataset) -> torch.Tensor:
    """The class each image's patch signals (``(255 − gray) / 25``), read back from its pixels.

    In a test split this is the random class ``r``: a model whose prediction follows it, where it
    differs from the label, took the shortcut.
    """
    if dataset.decoy_masks is None:
        raise DataValidationError("this dataset has no decoy patches", code="not_a_decoy_dataset")
    masks = dataset.decoy_masks[:, None].expand_as(dataset.images)
    gray = (dataset.images.float() * masks).flatten(1).sum(dim=1) / masks.flatten(1).sum(dim=1)
    return ((255 - gray) / GRAY_STEP).round().long()


def decoy_rule(split: Split) -> str:
    return "gray = 255 − 25·label" if split == "train" else "gray = 255 − 25·random class"
