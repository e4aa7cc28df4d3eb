"""Batch-CAM's metric and λ chosen together on the validation split, over the study's 5 seeds.

The study chose Batch-CAM's λ on one validation seed and for L1 only; its ablation then found L2 and
SSIM settings ahead of L1 on the *test* split, which the protocol may not choose from. This grid
puts every metric × λ on the validation split at 5 seeds, so the metric, too, is chosen there.
L1 cells come first (all seeds), so a grid stopped halfway still chooses L1's λ on 5 seeds.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from batchcam.spec.names import Metric
from reproduction.cells import Cell
from reproduction.study import BATCHCAM, STUDY_DATASET, STUDY_SEEDS, baseline

SELECTION_METRICS: tuple[Metric, ...] = ("l1", "l2", "ssim")


def setting_cell(metric: Metric, lam: float, seed: int) -> Cell:
    """Batch-CAM on the study's validation split; its L1 cells are study-select-cpu's (same keys)."""
    return replace(BATCHCAM.cell(lam, seed, evaluation_split="validation"), metric=metric)


def metric_selection_cells(seeds: Sequence[int] = STUDY_SEEDS) -> list[Cell]:
    """L1 at every seed first, then the other metrics seed by seed (a grid stopped halfway has whole
    seeds of all nine settings), the baseline (a reference only) last."""
    cells = [setting_cell("l1", lam, seed) for seed in seeds for lam in BATCHCAM.lambdas]
    others = [metric for metric in SELECTION_METRICS if metric != "l1"]
    cells += [setting_cell(m, lam, seed) for seed in seeds for m in others for lam in BATCHCAM.lambdas]
    return cells + [baseline(STUDY_DATASET, seed, evaluation_split="validation") for seed in seeds]


@dataclass(frozen=True)
class SettingChoice:
    metric: Metric
    lam: float
    validation_accuracy: dict[tuple[Metric, float], float]  # mean over `seeds`
    seeds: tuple[int, ...]  # the seeds on which every metric × λ finished


def choose_setting(
    rows: Sequence[dict[str, Any]], seeds: Sequence[int] = STUDY_SEEDS
) -> SettingChoice | None:
    """The metric × λ with the best mean validation accuracy over the seeds where all of them
    finished (ties: the earlier metric, then the smaller λ); None before any seed has all of them."""
    accuracy = {row["key"]: float(row["accuracy"]) for row in rows}
    settings = [(metric, lam) for metric in SELECTION_METRICS for lam in BATCHCAM.lambdas]
    complete = tuple(s for s in seeds if all(setting_cell(m, lam, s).key in accuracy for m, lam in settings))
    if not complete:
        return None
    means = {
        (m, lam): statistics.fmean(accuracy[setting_cell(m, lam, s).key] for s in complete)
        for m, lam in settings
    }
    best = max(means.values())
    metric, lam = next(setting for setting in settings if means[setting] == best)
    return SettingChoice(metric, lam, means, complete)
