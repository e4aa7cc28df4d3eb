"""The study's protocol on the original Decoy-Fashion-MNIST (4×4 patch), issue 17.

The study itself runs on the 8×8 variant, where the baseline loses more than 20 points; the issue
also asks to keep the original 4×4 patch. Same recipe (``simple_cnn``, 1 epoch, recalibrated
BatchNorm, full splits), λ chosen on the validation split, 5 test seeds. A CPU budget keeps it to
the paper's two losses and one annotation ceiling (RRR, the best annotation method on the 8×8
patch); the clean baseline is the 8×8 study's (same images, same key).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from reproduction.cells import Cell
from reproduction.study import METHODS, STUDY_SEEDS, Method, selection_cells, study_cells

SMALL_PATCH_DATASET = "decoy-fashion-mnist"
# RRR without λ = 1000: it lost to smaller λ on the 8×8 patch; three λ each keep the budget.
SMALL_PATCH_METHODS: tuple[Method, ...] = tuple(
    replace(m, lambdas=m.lambdas[:3]) for m in METHODS if m.name in ("prototype L1", "Batch-CAM L1", "RRR")
)
SMALL_PATCH_SELECTION_SEEDS = (0,)  # as the 8×8 study's selection: one seed per λ


def small_patch_selection_cells(seeds: Sequence[int] = SMALL_PATCH_SELECTION_SEEDS) -> list[Cell]:
    return selection_cells(seeds, SMALL_PATCH_DATASET, SMALL_PATCH_METHODS)


def small_patch_cells(chosen: dict[str, float], seeds: Sequence[int] = STUDY_SEEDS) -> list[Cell]:
    """Clean and decoy baselines and each method at its chosen λ on the test split; no controls."""
    return study_cells(chosen, seeds, SMALL_PATCH_DATASET, SMALL_PATCH_METHODS, controls=())
