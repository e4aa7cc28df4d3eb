"""Annotation masks for the annotation-supervised losses: where explanations must not look."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from batchcam.data.dataset import ImageDataset, Index
from batchcam.errors import ConfigError


def irrelevant_regions(dataset: ImageDataset) -> torch.Tensor:
    """Boolean N×H×W: the planted decoy patch where there is one, else everything off the object.

    Raises a ConfigError naming what is accepted when the dataset carries neither kind of mask.
    """
    if dataset.decoy_masks is not None:
        return dataset.decoy_masks
    if dataset.object_masks is not None:
        return ~dataset.object_masks
    raise ConfigError(
        "the annotation modes (rrr, rrr-gradcam, energy) need a mask per training image; this dataset "
        "has none. Accepted: a decoy dataset (the patch is the mask), shapes (its object masks), or "
        "an .npz upload with 'masks'",
        code="annotations_missing",
    )


class AnnotatedImages(Dataset[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]):
    """A dataset's (images, labels) with each image's irrelevant-region mask, fetched per batch."""

    def __init__(self, data: ImageDataset) -> None:
        self.data = data
        self.masks = irrelevant_regions(data)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: Index) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        images, labels = self.data[index]
        return images, labels, self.masks[index]
