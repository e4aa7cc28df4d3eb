"""The in-memory image dataset every part of the library consumes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property

import torch
from torch.utils.data import Dataset

from batchcam.errors import ConfigError, DataValidationError

Index = int | list[int] | torch.Tensor | slice


@dataclass(frozen=True, eq=False)
class ImageDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Images as uint8 ``N×C×H×W``, labels as int64 ``N``, optional boolean ``N×H×W`` masks.

    ``object_masks`` marks the class-defining object (procedural data), ``decoy_masks`` a planted
    spurious patch (decoy variants); both are used only for evaluation.

    Indexing accepts an int or a batch of indices (list, tensor, slice) and returns uint8 images
    with their labels, so a ``DataLoader(ds, sampler=batches, batch_size=None)`` fetches a whole
    batch with one tensor gather instead of N Python calls.
    """

    images: torch.Tensor
    labels: torch.Tensor
    class_names: tuple[str, ...]
    object_masks: torch.Tensor | None = None
    decoy_masks: torch.Tensor | None = None
    description: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        images, labels = self.images, self.labels
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise DataValidationError(
                f"images must be uint8 N×C×H×W, got {images.dtype} {tuple(images.shape)}"
            )
        if images.shape[1] not in (1, 3):
            raise DataValidationError(f"images must have 1 or 3 channels, got {images.shape[1]}")
        if labels.dtype != torch.int64 or labels.ndim != 1 or len(labels) != len(images):
            raise DataValidationError(
                f"labels must be int64 with one label per image ({len(images)}), "
                f"got {labels.dtype} {tuple(labels.shape)}"
            )
        if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= len(self.class_names)):
            raise DataValidationError(
                f"labels must lie in [0, {len(self.class_names)}) for {len(self.class_names)} classes"
            )
        for name in ("object_masks", "decoy_masks"):
            mask = getattr(self, name)
            if mask is not None and (
                mask.dtype != torch.bool or mask.shape != (len(images), *images.shape[2:])
            ):
                raise DataValidationError(f"{name} must be bool N×H×W matching the images")

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: Index) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[index], self.labels[index]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def in_channels(self) -> int:
        return int(self.images.shape[1])

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.images.shape[2]), int(self.images.shape[3])

    @cached_property
    def fingerprint(self) -> str:
        """Content hash (images, labels, class names): equal data gives an equal fingerprint."""
        digest = hashlib.sha256()
        digest.update(repr((tuple(self.images.shape), self.class_names)).encode())
        digest.update(self.images.contiguous().numpy().tobytes())
        digest.update(self.labels.contiguous().numpy().tobytes())
        return digest.hexdigest()

    def class_counts(self) -> torch.Tensor:
        return torch.bincount(self.labels, minlength=self.num_classes)

    def subset(self, indices: torch.Tensor) -> ImageDataset:
        """A new dataset holding the given rows (masks included)."""
        return ImageDataset(
            images=self.images[indices],
            labels=self.labels[indices],
            class_names=self.class_names,
            object_masks=None if self.object_masks is None else self.object_masks[indices],
            decoy_masks=None if self.decoy_masks is None else self.decoy_masks[indices],
            description=self.description,
        )


@dataclass(frozen=True, eq=False)
class DatasetSplits:
    """A named dataset: a training split, a test split and where it came from.

    ``validation``: ``test`` is a validation split held out of the training images (settings are
    chosen on it), not the dataset's test split. Derived splits keep it (``dataclasses.replace``).
    """

    name: str
    train: ImageDataset
    test: ImageDataset
    validation: bool = False

    def __post_init__(self) -> None:
        if self.train.class_names != self.test.class_names:
            raise DataValidationError("train and test splits must have the same classes")
        if self.train.images.shape[1:] != self.test.images.shape[1:]:
            raise DataValidationError("train and test images must have the same channels and size")

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.train.class_names

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256((self.train.fingerprint + self.test.fingerprint).encode()).hexdigest()


def as_model_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 images → float32 in [0, 1], the input every model in this library expects."""
    if images.dtype != torch.uint8:  # float images are most likely in [0, 1] already
        raise ConfigError(f"images must be uint8 (0 to 255), got {images.dtype}")
    return images.div(255.0)  # true division: a new float32 tensor
