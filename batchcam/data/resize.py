"""Resizing whole datasets to a model's input size."""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F

from batchcam.data.dataset import DatasetSplits, ImageDataset
from batchcam.errors import ConfigError

RESIZE_CHUNK = 4096  # images interpolated at once: bounds the float copy in memory


def resize_splits(splits: DatasetSplits, size: int) -> DatasetSplits:
    """Both splits at ``size × size``: images antialiased bilinear, masks nearest-neighbour."""
    if size < 1:
        raise ConfigError(
            f"image size must be a positive number of pixels, got {size}", code="invalid_image_size"
        )
    return replace(
        splits,
        train=resize_dataset(splits.train, size),
        test=resize_dataset(splits.test, size),
    )


def resize_dataset(dataset: ImageDataset, size: int) -> ImageDataset:
    if dataset.image_size == (size, size):
        return dataset
    return ImageDataset(
        images=resize_images(dataset.images, size),
        labels=dataset.labels,
        class_names=dataset.class_names,
        object_masks=resize_masks(dataset.object_masks, size),
        decoy_masks=resize_masks(dataset.decoy_masks, size),
        description=f"{dataset.description}, resized to {size}×{size}",
    )


def resize_images(images: torch.Tensor, size: int) -> torch.Tensor:
    resized = torch.empty((len(images), images.shape[1], size, size), dtype=torch.uint8)
    for start in range(0, len(images), RESIZE_CHUNK):
        chunk = images[start : start + RESIZE_CHUNK].float()
        scaled = F.interpolate(chunk, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        resized[start : start + RESIZE_CHUNK] = scaled.round_().clamp_(0, 255).to(torch.uint8)
    return resized


def resize_masks(masks: torch.Tensor | None, size: int) -> torch.Tensor | None:
    if masks is None:
        return None
    resized = torch.empty((len(masks), size, size), dtype=torch.bool)
    for start in range(0, len(masks), RESIZE_CHUNK):
        chunk = masks[start : start + RESIZE_CHUNK, None].float()
        resized[start : start + RESIZE_CHUNK] = (
            F.interpolate(chunk, size=(size, size), mode="nearest-exact")[:, 0] > 0.5
        )
    return resized
