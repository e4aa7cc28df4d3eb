"""The earlier CAM layer with the BatchNorm-mixing caveat handled (issue 17's CAM-layer ablation).

The ablation's ``features.2`` row (14×14, fine enough to resolve the 8×8 patch) trained on CAMs that
mix the batch: ``simple_cnn`` has BatchNorm after that layer, and in train mode the gradient of the
batch's summed scores reaches each image's activations from every image through the batch
statistics. These cells run it again with ``cam_batch_statistics="constant"`` (per-image CAMs, the
same activations): at the ablation's λ on the test split, 5 seeds, and λ 1/10/100 on the validation
split (seed 0, as the study's selection), so the option's λ is chosen on validation too.

Per-image CAMs at ``features.2`` did worse than at ``features``. A 14×14 CAM can resolve the patch,
and the class-mean prototypes carry the training images' label-coded patches: the masked cells build
the prototypes without the patches (``prototype_mask="decoy"``), at both layers, to see whether the
prototypes' patches are what the finer layer is pulled toward.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from reproduction.cells import Cell
from reproduction.study import BATCHCAM, SELECTION_SEEDS, STUDY_SEEDS

EARLIER_LAYER = "features.2"
# Batch-CAM L1 at ``features.2`` with the batch statistics held constant in the loss's CAMs: a
# recipe of its own, so ``reproduction.selection.choose`` picks its λ as it does the study's methods'.
PER_IMAGE_LAYER = replace(
    BATCHCAM,
    name=f"Batch-CAM L1, CAM layer {EARLIER_LAYER}, per-image CAMs",
    extra={**BATCHCAM.extra, "target_layer": EARLIER_LAYER, "cam_batch_statistics": "constant"},
)


def per_image_layer_cell(lam: float, seed: int, **more: Any) -> Cell:
    return PER_IMAGE_LAYER.cell(lam, seed, **more)


def per_image_layer_cells(lam: float, seeds: Sequence[int] = STUDY_SEEDS) -> list[Cell]:
    """The test split at ``lam`` (the ablation's, Batch-CAM L1's chosen λ), seed by seed."""
    return [per_image_layer_cell(lam, seed) for seed in seeds]


def per_image_layer_selection_cells(seeds: Sequence[int] = SELECTION_SEEDS) -> list[Cell]:
    """Batch-CAM's λ on the validation split with the option; the baseline's cells are the study's."""
    return [
        per_image_layer_cell(lam, seed, evaluation_split="validation")
        for seed in seeds
        for lam in BATCHCAM.lambdas
    ]


def masked_prototype_cells(lam: float, seeds: Sequence[int] = STUDY_SEEDS) -> list[Cell]:
    """Per-image ``features.2`` and the reference layer, each with decoy-masked prototypes, at ``lam``."""
    return [
        cell
        for seed in seeds
        for cell in (
            per_image_layer_cell(lam, seed, prototype_mask="decoy"),
            BATCHCAM.cell(lam, seed, prototype_mask="decoy"),
        )
    ]
