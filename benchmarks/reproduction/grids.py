"""Named grids of cells. Cells are ordered seed-major, so a grid stopped halfway has whole seeds done."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from itertools import product

from batchcam.spec.names import Metric, Mode
from batchcam.spec.training import TrainConfig
from reproduction.cells import Cell
from reproduction.results import RESULTS_FILE, ResultsLog
from reproduction.selection import choose
from reproduction.study import STUDY_RESULTS, ablation_cells, head_cells, selection_cells, study_cells
from reproduction.study_lambda_edges import lambda_edge_cells
from reproduction.study_layer import (
    masked_prototype_cells,
    per_image_layer_cells,
    per_image_layer_selection_cells,
)
from reproduction.study_metric_selection import metric_selection_cells
from reproduction.study_small_patch import (
    SMALL_PATCH_DATASET,
    SMALL_PATCH_METHODS,
    small_patch_cells,
    small_patch_selection_cells,
)

PAPER_DATASETS = ("mnist", "fashion-mnist")
PAPER_MODELS = ("simple_cnn", "resnet18", "convnextv2_tiny")
CAM_MODES: tuple[Mode, ...] = ("prototype", "batchcam", "both")
METRICS: tuple[Metric, ...] = ("l1", "l2", "ssim")
DECOY_DATASETS = ("decoy-mnist", "decoy-fashion-mnist")
DECOY_LAMBDAS = (0.1, 1.0, 10.0)
SEEDS = (0, 1, 2)
RECALIBRATION_BATCHES = TrainConfig.bn_recalibration_batches  # the trainer's default


def _baseline(dataset: str, model: str, seed: int, epochs: int, **extra: int) -> Cell:
    return Cell(dataset, model, "baseline", None, None, seed, epochs, **extra)


def paper_cells(
    datasets: Sequence[str],
    models: Sequence[str],
    variants: Sequence[tuple[Mode, Metric]],
    epochs: int,
    seeds: Sequence[int] = SEEDS,
) -> list[Cell]:
    """Baseline plus each (mode, metric) variant at λ = 1, for every dataset × model × seed."""
    cells = []
    for seed, dataset, model in product(seeds, datasets, models):
        cells.append(_baseline(dataset, model, seed, epochs))
        cells += [Cell(dataset, model, mode, metric, 1.0, seed, epochs) for mode, metric in variants]
    return cells


def lambda_cells(
    datasets: Sequence[str], model: str, variant: tuple[Mode, Metric], lambdas: Sequence[float], epochs: int
) -> list[Cell]:
    """One CAM loss at several weights λ, every dataset × seed: what a stronger pull costs."""
    mode, metric = variant
    return [
        Cell(dataset, model, mode, metric, lam, seed, epochs)
        for seed, dataset, lam in product(SEEDS, datasets, lambdas)
    ]


def decoy_cells(
    datasets: Sequence[str], model: str, epochs: int, seeds: Sequence[int] = SEEDS, metric: Metric = "l1"
) -> list[Cell]:
    """Baseline, and the prototype and Batch-CAM losses at each λ, on the decoy datasets; and the
    baseline on the clean dataset with the same budget (what the shortcut costs, as in Ross et al.)."""
    cells = []
    for seed, dataset in product(seeds, datasets):
        cells.append(_baseline(dataset.removeprefix("decoy-"), model, seed, epochs))
        cells.append(_baseline(dataset, model, seed, epochs))
        cells += [
            Cell(dataset, model, mode, metric, lam, seed, epochs)
            for mode, lam in product(("prototype", "batchcam"), DECOY_LAMBDAS)
        ]
    return cells


def decoy_masked_cells(
    datasets: Sequence[str], model: str, epochs: int, lambdas: Sequence[float], seeds: Sequence[int] = SEEDS
) -> list[Cell]:
    """The decoy grid's CAM losses with prototypes built without the patches: do the label-coded
    corners in the plain prototypes help the losses, or hold them back?"""
    return [
        Cell(dataset, model, mode, "l1", lam, seed, epochs, prototype_mask="decoy")
        for seed, dataset, mode, lam in product(seeds, datasets, ("prototype", "batchcam"), lambdas)
    ]


def tiny() -> list[Cell]:
    """Every code path of the harness in well under a minute on a laptop CPU (CI runs it)."""
    limits = {"train_limit": 384, "test_limit": 128, "batch_size": 32}
    cells = []
    for seed in (0, 1):
        cells.append(Cell("shapes", "simple_cnn", "baseline", None, None, seed, 1, **limits))
        cells.append(Cell("shapes", "simple_cnn", "batchcam", "l1", 1.0, seed, 1, **limits))
        cells.append(Cell("decoy-shapes", "simple_cnn", "baseline", None, None, seed, 1, **limits))
        cells.append(Cell("decoy-shapes", "simple_cnn", "batchcam", "l1", 10.0, seed, 1, **limits))
    masked = Cell(
        "decoy-shapes", "simple_cnn", "batchcam", "l1", 10.0, 0, 1, prototype_mask="decoy", **limits
    )
    return [*cells, masked]


def paper_full() -> list[Cell]:
    """The paper's whole grid: 2 datasets × 3 models × (baseline + 3 modes × 3 metrics) × 3 seeds."""
    cells = paper_cells(PAPER_DATASETS, PAPER_MODELS, list(product(CAM_MODES, METRICS)), epochs=5)
    return recalibrated(cells)


def paper_cpu() -> list[Cell]:
    """The paper's grid for simple_cnn on a 2-core CPU: every mode × metric, 2 epochs (~1 h quiet)."""
    return paper_cells(PAPER_DATASETS, ("simple_cnn",), list(product(CAM_MODES, METRICS)), epochs=2)


def paper_gpu() -> list[Cell]:
    """The larger models on a GPU: baseline and Batch-CAM L1 (the paper's headline ConvNeXt-V2 cell)."""
    cells = paper_cells(PAPER_DATASETS, ("resnet18", "convnextv2_tiny"), [("batchcam", "l1")], epochs=3)
    return recalibrated(cells)


def lambda_cpu() -> list[Cell]:
    """paper-cpu's Batch-CAM L1 at λ = 0.1, 10 and 100 (λ = 1 is in paper-cpu): ~25 min quiet."""
    return lambda_cells(PAPER_DATASETS, "simple_cnn", ("batchcam", "l1"), (0.1, 10.0, 100.0), epochs=2)


def recalibrated_cpu() -> list[Cell]:
    """The central cells of paper-cpu and decoy-cpu again, with BatchNorm statistics recomputed for
    the final weights (the trainer's default since): baseline vs the L1 prototype and Batch-CAM
    losses (λ = 1; decoy also λ = 10), 3 seeds. ~45 min quiet."""
    paper = paper_cells(PAPER_DATASETS, ("simple_cnn",), [("prototype", "l1"), ("batchcam", "l1")], epochs=2)
    decoy = [
        cell
        for cell in decoy_cells(DECOY_DATASETS, "simple_cnn", epochs=1)
        if cell.lam is None or cell.lam >= 1
    ]
    return recalibrated(paper + decoy)


def paper_recalibrated_cpu() -> list[Cell]:
    """paper-cpu whole, with recalibrated BatchNorm statistics: adds the L2, SSIM and `both` cells to
    recalibrated-cpu's baselines and L1 cells (shared, so not rerun). ~50 min quiet."""
    return recalibrated(paper_cpu())


def resnet18_cpu() -> list[Cell]:
    """ResNet-18 where no GPU is lent: a fixed 12k-image training subset, 2 epochs, baseline and the
    paper's Batch-CAM L1 (~75 min on a quiet 2-core CPU). Test sets stay whole."""
    cells = paper_cells(PAPER_DATASETS, ("resnet18",), [("batchcam", "l1")], epochs=2)
    return [replace(cell, train_limit=12_000) for cell in cells]


def resnet18_recalibrated_cpu() -> list[Cell]:
    """resnet18-cpu again with recalibrated BatchNorm statistics: its rows used the running averages,
    which understate accuracy and inflate the spread (~1.5-2.5 h on a 2-core CPU). MNIST's cells come
    first, so a session that stops halfway has whole seeds of one dataset."""
    cells = recalibrated(resnet18_cpu())
    return sorted(cells, key=lambda cell: cell.dataset != "mnist")  # stable: seed-major within each


def longer_cpu() -> list[Cell]:
    """Baseline vs Batch-CAM L1 (λ = 1) trained for 5 epochs instead of 2: does the Fashion-MNIST
    accuracy cost of the CAM loss at 2 epochs persist with a longer budget? These are paper-full's
    simple_cnn cells for that pair (same keys). ~35 min quiet."""
    cells = paper_cells(PAPER_DATASETS, ("simple_cnn",), [("batchcam", "l1")], epochs=5)
    return recalibrated(cells)


def decoy_cpu() -> list[Cell]:
    """Baseline and both CAM losses at λ ∈ {0.1, 1, 10}; one epoch, to fit a 2-core CPU's budget."""
    return decoy_cells(DECOY_DATASETS, "simple_cnn", epochs=1)


def decoy_masked_cpu() -> list[Cell]:
    """decoy-cpu's CAM losses at λ = 1 and 10 (0.1 changed nothing there), decoy-masked prototypes."""
    return decoy_masked_cells(DECOY_DATASETS, "simple_cnn", epochs=1, lambdas=(1.0, 10.0))


def decoy_metrics_cpu() -> list[Cell]:
    """The shortcut test with the other losses at λ = 10 (where L1 removed most of the shortcut):
    prototype and Batch-CAM with L2 and SSIM, and `both` with each metric. Baselines and L1 cells
    are recalibrated-cpu's. ~40 min quiet."""
    l1_done = (("prototype", "l1"), ("batchcam", "l1"))
    variants = [variant for variant in product(CAM_MODES, METRICS) if variant not in l1_done]
    cells = [
        Cell(dataset, "simple_cnn", mode, metric, 10.0, seed, 1)
        for seed, dataset, (mode, metric) in product(SEEDS, DECOY_DATASETS, variants)
    ]
    return recalibrated(cells)


def decoy_resnet18_cpu() -> list[Cell]:
    """The shortcut test with a second model: ResNet-18 on Decoy-Fashion-MNIST (where simple_cnn's
    shortcut was largest), baseline vs Batch-CAM L1 at λ = 10, with resnet18-recalibrated-cpu's
    budget (12k-image subset, 2 epochs), whose clean Fashion-MNIST baseline is the reference.
    ~75 min on a quiet 2-core CPU (12 min a run)."""
    cells = [
        Cell("decoy-fashion-mnist", "resnet18", mode, metric, lam, seed, 2, train_limit=12_000)
        for seed, (mode, metric, lam) in product(SEEDS, (("baseline", None, None), ("batchcam", "l1", 10.0)))
    ]
    return recalibrated(cells)


def study_select_cpu() -> list[Cell]:
    """The study's λ selection on the validation split (see reproduction.study): ~50 min a seed."""
    return selection_cells()


def study_cpu() -> list[Cell]:
    """The study's test grid at the λ study-select-cpu chose: 13 cells × 5 seeds, ~2 h quiet."""
    return study_cells(_study_choices())


def study_head_cpu() -> list[Cell]:
    """An MLP head (second-order terms beyond the last linear layer): exact vs constant CAM weights."""
    return head_cells(_study_choices()["Batch-CAM L1"])


def study_ablations_cpu() -> list[Cell]:
    """Batch-CAM's metric × λ, an earlier CAM layer and the batch size on the study setting."""
    return ablation_cells(_study_choices()["Batch-CAM L1"])


def study_small_select_cpu() -> list[Cell]:
    """The 4×4 patch (decoy-fashion-mnist): λ selection on validation for the paper's two losses
    and RRR, one seed (~10 cells, ~12 min quiet)."""
    return small_patch_selection_cells()


def study_small_cpu() -> list[Cell]:
    """The 4×4 patch on the test split at the λ study-small-select-cpu chose: decoy baseline, the
    two losses and RRR, 5 seeds (~20 cells, ~20 min quiet; the clean baseline is study-cpu's)."""
    choices = choose(
        ResultsLog(STUDY_RESULTS / RESULTS_FILE).rows(), SMALL_PATCH_DATASET, SMALL_PATCH_METHODS
    )
    return small_patch_cells({name: choice.lam for name, choice in choices.items()})


def study_select_metric_cpu() -> list[Cell]:
    """Batch-CAM's metric × λ on the validation split, 5 seeds (L1 first): the protocol chooses the
    metric there, not from the test-split ablation (~50 cells, ~40 min quiet)."""
    return metric_selection_cells()


def study_lambda_edges_cpu() -> list[Cell]:
    """RRR at λ 0.1 and 0.3 (its choice, 1, is the edge of its range; seed 0) and Batch-CAM L1 at λ 30
    (between its best and its collapse; seeds 0-4) on the validation split (7 cells, ~8 min quiet)."""
    return lambda_edge_cells()


def study_layer_cpu() -> list[Cell]:
    """The ablation's features.2 row again with per-image loss CAMs (BatchNorm statistics held
    constant), Batch-CAM L1 at its chosen λ, 5 test seeds (~1.5 min a run quiet: two passes a step)."""
    return per_image_layer_cells(_study_choices()["Batch-CAM L1"])


def study_layer_select_cpu() -> list[Cell]:
    """The same on the validation split at λ 1, 10 and 100, seed 0: its λ chosen like the others'."""
    return per_image_layer_selection_cells()


def study_layer_masked_cpu() -> list[Cell]:
    """Per-image features.2 and the features layer with decoy-masked prototypes, Batch-CAM L1 at its
    chosen λ, 5 test seeds (10 cells): is the finer layer pulled onto the prototypes' patches?"""
    return masked_prototype_cells(_study_choices()["Batch-CAM L1"])


def _study_choices() -> dict[str, float]:
    choices = choose(ResultsLog(STUDY_RESULTS / RESULTS_FILE).rows())
    return {name: choice.lam for name, choice in choices.items()}


def recalibrated(cells: Sequence[Cell]) -> list[Cell]:
    """With the trainer's default BatchNorm recalibration (grids defined before it ran without)."""
    return [replace(cell, bn_recalibration_batches=RECALIBRATION_BATCHES) for cell in cells]


GRIDS: dict[str, Callable[[], list[Cell]]] = {
    "tiny": tiny,
    "paper-cpu": paper_cpu,
    "decoy-cpu": decoy_cpu,
    "lambda-cpu": lambda_cpu,
    "recalibrated-cpu": recalibrated_cpu,
    "paper-recalibrated-cpu": paper_recalibrated_cpu,
    "resnet18-cpu": resnet18_cpu,
    "resnet18-recalibrated-cpu": resnet18_recalibrated_cpu,
    "decoy-masked-cpu": decoy_masked_cpu,
    "decoy-metrics-cpu": decoy_metrics_cpu,
    "longer-cpu": longer_cpu,
    "decoy-resnet18-cpu": decoy_resnet18_cpu,
    "study-select-cpu": study_select_cpu,
    "study-cpu": study_cpu,
    "study-head-cpu": study_head_cpu,
    "study-ablations-cpu": study_ablations_cpu,
    "study-small-select-cpu": study_small_select_cpu,
    "study-small-cpu": study_small_cpu,
    "study-select-metric-cpu": study_select_metric_cpu,
    "study-lambda-edges-cpu": study_lambda_edges_cpu,
    "study-layer-cpu": study_layer_cpu,
    "study-layer-select-cpu": study_layer_select_cpu,
    "study-layer-masked-cpu": study_layer_masked_cpu,
    "paper-gpu": paper_gpu,
    "paper-full": paper_full,
}
