"""What the CAM losses pull toward: the class prototypes, or one of three controls.

The controls answer "does the *class-specific* prototype matter?":

- ``gaussian``: every class toward the same centred Gaussian blob (σ = a fifth of the side);
- ``global-mean``: every class toward one prototype, the mean of all training images;
- ``permuted``: each class toward another class's prototype, by a fixed derangement (recorded).

If a control matches the class prototypes on accuracy, faithfulness and the shortcut test, the
class shape is not what helps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from batchcam.cam.postprocess import DEFAULT_POSTPROCESS
from batchcam.data.dataset import ImageDataset
from batchcam.errors import ConfigError
from batchcam.prototypes import class_prototypes
from batchcam.spec.names import PROTOTYPE_TARGETS, PrototypeTarget

GAUSSIAN_SIGMA = 0.2  # of the image side: a blob over the centre, like most objects in these datasets
DERANGEMENT_SEED = 0  # one permutation for every run, so seeds differ only in training
STREAM_BATCH = 4096


@dataclass(frozen=True)
class Targets:
    """K×H×W maps in [0, 1], one per class, and how they were made (for the report)."""

    maps: torch.Tensor
    kind: PrototypeTarget
    permutation: tuple[int, ...] | None = None  # permuted: class k is pulled toward permutation[k]

    def describe(self) -> dict[str, Any]:
        described: dict[str, Any] = {"kind": self.kind}
        if self.permutation is not None:
            described["permutation"] = list(self.permutation)
        return described


def training_targets(prototypes: torch.Tensor, kind: PrototypeTarget, train_data: ImageDataset) -> Targets:
    """The maps a run's CAM losses pull toward, given its class prototypes (K×H×W)."""
    if kind == "class":
        return Targets(prototypes, kind)
    if kind == "gaussian":
        blob = gaussian_blob(int(prototypes.shape[-2]), int(prototypes.shape[-1]))
        return Targets(blob.expand_as(prototypes).clone(), kind)
    if kind == "global-mean":
        return Targets(global_mean(train_data).expand_as(prototypes).clone(), kind)
    if kind == "permuted":
        permutation = derangement(int(prototypes.shape[0]))
        return Targets(prototypes[list(permutation)].clone(), kind, permutation)
    raise ConfigError(
        f"unknown prototype_target {kind!r}; accepted: {', '.join(PROTOTYPE_TARGETS)}", code="invalid_config"
    )


def gaussian_blob(height: int, width: int) -> torch.Tensor:
    """A centred isotropic Gaussian, peak 1, σ = ``GAUSSIAN_SIGMA`` of the shorter side."""
    sigma = GAUSSIAN_SIGMA * min(height, width)
    rows = torch.arange(height, dtype=torch.float32) - (height - 1) / 2
    columns = torch.arange(width, dtype=torch.float32) - (width - 1) / 2
    squared = rows[:, None].pow(2) + columns[None, :].pow(2)
    return DEFAULT_POSTPROCESS(torch.exp(-squared / (2 * sigma**2))[None], (height, width))[0]


def global_mean(train_data: ImageDataset) -> torch.Tensor:
    """The mean of all training images as one prototype (H×W), normalised like the CAMs."""
    chunks = torch.split(train_data.images, STREAM_BATCH)
    batches = ((images, torch.zeros(len(images), dtype=torch.int64)) for images in chunks)
    return class_prototypes(batches, num_classes=1)[0]  # every image in one class


def derangement(classes: int) -> tuple[int, ...]:
    """A fixed permutation of ``range(classes)`` with no fixed point (no class keeps its prototype)."""
    if classes < 2:
        raise ConfigError("the permuted control needs at least 2 classes")
    rng = np.random.default_rng(DERANGEMENT_SEED)
    while True:  # a random permutation is a derangement with probability ≈ 1/e: a few draws
        permutation = tuple(int(k) for k in rng.permutation(classes))
        if all(target != k for k, target in enumerate(permutation)):
            return permutation
