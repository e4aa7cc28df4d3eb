"""Class prototypes: the pixel-wise mean training image of each class, normalised like the CAMs."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from batchcam.cam.postprocess import DEFAULT_POSTPROCESS, CamPostprocess
from batchcam.errors import DataValidationError


def class_prototypes(
    batches: Iterable[tuple[torch.Tensor, ...]],
    num_classes: int,
    normalize: CamPostprocess = DEFAULT_POSTPROCESS,
) -> torch.Tensor:
    """One streaming pass over (uint8 images B×C×H×W, labels B) batches → K×H×W prototypes in [0, 1].

    A batch may carry a third tensor, a boolean B×H×W mask of pixels to leave out (a planted decoy
    patch): each prototype pixel is then the mean over the class's images where it is not masked,
    so a label-coded artefact does not become part of what the class "looks like".

    Colour images are averaged over channels (grayscale, like a CAM). Only per-class sums are held,
    so the dataset never needs to fit in memory. Classes without images, and pixels masked in every
    image of their class, are zero.
    """
    sums: torch.Tensor | None = None
    counts: torch.Tensor | None = None
    for images, labels, *excluded in batches:
        gray = images.to(torch.float64).mean(dim=1) / 255.0  # B×H×W
        kept = torch.ones_like(gray) if not excluded else (~excluded[0]).to(torch.float64)
        if sums is None or counts is None:
            sums = torch.zeros(num_classes, *gray.shape[1:], dtype=torch.float64)
            counts = torch.zeros_like(sums)
        sums.index_add_(0, labels, gray * kept)
        counts.index_add_(0, labels, kept)
    if sums is None or counts is None:
        raise DataValidationError("cannot compute prototypes of an empty dataset", code="empty_dataset")
    means = (sums / counts.clamp(min=1)).to(torch.float32)
    # The same per-image normalisation as the CAMs (no ReLU needed: means are non-negative).
    return normalize(means, (int(means.shape[-2]), int(means.shape[-1])))


def class_median_prototypes(
    images: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    excluded: torch.Tensor | None = None,
    normalize: CamPostprocess = DEFAULT_POSTPROCESS,
) -> torch.Tensor:
    """Per-pixel median of each class's (grayscale) images → K×H×W prototypes in [0, 1].

    Unlike the mean this holds one class's images at a time (MNIST: 6,000 × 784 floats). Pixels in
    ``excluded`` (B×H×W) are left out of their image's vote; the median of an even count is the lower
    middle value. Classes without images, and pixels excluded everywhere, are zero.
    """
    if len(images) == 0:
        raise DataValidationError("cannot compute prototypes of an empty dataset", code="empty_dataset")
    medians = torch.zeros(num_classes, *images.shape[-2:], dtype=torch.float32)
    for label in range(num_classes):
        rows = labels == label
        if not bool(rows.any()):
            continue
        gray = images[rows].to(torch.float32).mean(dim=1) / 255.0
        if excluded is not None:
            gray = gray.masked_fill(excluded[rows], float("nan"))
        medians[label] = gray.nanmedian(dim=0).values.nan_to_num(0.0)
    return normalize(medians, (int(medians.shape[-2]), int(medians.shape[-1])))


class PrototypeCache:
    """Prototypes stored as safetensors under a folder, keyed by dataset fingerprint."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path_for(self, fingerprint: str) -> Path:
        return self.folder / f"prototypes-{fingerprint[:32]}.safetensors"

    def load(self, fingerprint: str) -> torch.Tensor | None:
        """The cached prototypes, or None when absent or unreadable (then they are recomputed)."""
        path = self.path_for(fingerprint)
        if not path.exists():
            return None
        try:
            return load_file(path)["prototypes"]
        except (SafetensorError, OSError, KeyError):
            return None  # damaged (a full disk, a killed writer): a cache miss, not an error

    def store(self, fingerprint: str, prototypes: torch.Tensor) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.path_for(fingerprint)
        # A temporary file of its own in the same folder, then an atomic rename: concurrent
        # writers never share a partial file, and readers never see half of one.
        with tempfile.NamedTemporaryFile(
            dir=self.folder, prefix=path.name, suffix=".partial", delete=False
        ) as file:
            partial = Path(file.name)
        try:
            save_file({"prototypes": prototypes.contiguous()}, partial, metadata={"fingerprint": fingerprint})
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)
