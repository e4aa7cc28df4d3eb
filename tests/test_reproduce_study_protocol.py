"""The study's protocol beyond its 8×8 setting (issue 17): the 4×4 patch, choosing the metric and λ
on the validation split over every seed that finished, the earlier CAM layer with per-image loss
CAMs, and λ beyond the selection's edges."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))  # the harness is run as a script, with its folder on sys.path

from reproduction.cells import Cell  # noqa: E402
from reproduction.selection import choose  # noqa: E402
from reproduction.study import (  # noqa: E402
    BATCHCAM,
    METHODS,
    STUDY_DATASET,
    ablation_cells,
    baseline,
    selection_cells,
)
from reproduction.study_lambda_edges import lambda_edge_cells, lambda_edges_markdown  # noqa: E402
from reproduction.study_layer import (  # noqa: E402
    EARLIER_LAYER,
    masked_prototype_cells,
    per_image_layer_cells,
    per_image_layer_selection_cells,
)
from reproduction.study_layer_tables import MIXED, PER_IMAGE, layer_markdown  # noqa: E402
from reproduction.study_metric_selection import (  # noqa: E402
    choose_setting,
    metric_selection_cells,
    setting_cell,
)
from reproduction.study_small_patch import (  # noqa: E402
    SMALL_PATCH_DATASET,
    SMALL_PATCH_METHODS,
    small_patch_cells,
    small_patch_selection_cells,
)
from reproduction.study_tables import ceiling_markdown, metric_selection_markdown, study_markdown  # noqa: E402
from test_data_idx import data_dir  # noqa: E402, F401  (the shared Fashion-MNIST files, or a skip)

from batchcam.data.decoy import signalled_classes  # noqa: E402
from batchcam.pipeline import prepare_data  # noqa: E402


def test_the_small_patch_grids_run_the_study_recipe_on_the_4_by_4_variant() -> None:
    selection = small_patch_selection_cells()
    assert {(c.dataset, c.evaluation_split) for c in selection} == {(SMALL_PATCH_DATASET, "validation")}
    assert [m.name for m in SMALL_PATCH_METHODS] == ["prototype L1", "Batch-CAM L1", "RRR"]
    chosen = {m.name: m.lambdas[1] for m in SMALL_PATCH_METHODS}
    test = small_patch_cells(chosen)
    assert {c.evaluation_split for c in test} == {"test"} and {c.seed for c in test} == set(range(5))
    assert {c.dataset for c in test} == {SMALL_PATCH_DATASET, "fashion-mnist"}
    assert {c.prototype_target for c in test} == {"class"}  # no controls on the 4×4 patch
    # Only the dataset differs from the 8×8 study's cells; the clean baseline is the very same run.
    for method in SMALL_PATCH_METHODS:
        big = method.cell(chosen[method.name], 3)
        assert method.cell(chosen[method.name], 3, SMALL_PATCH_DATASET).train_config("cpu") == (
            replace(big.train_config("cpu"), dataset=SMALL_PATCH_DATASET)
        )
    assert baseline("fashion-mnist", 2).key in {c.key for c in test}


def test_the_4_by_4_variant_codes_the_label_in_train_only(data_dir: Path) -> None:  # noqa: F811
    """The study's 4×4 cells see 16-pixel corner patches whose gray level is the label in training,
    and a random class in the validation and test splits they are judged on."""
    by_split = {}
    for each in (
        small_patch_selection_cells()[:1] + small_patch_cells({m.name: 1.0 for m in SMALL_PATCH_METHODS})[1:2]
    ):
        assert each.dataset == SMALL_PATCH_DATASET
        by_split[each.evaluation_split] = prepare_data(
            each.train_config("cpu"), data_dir=data_dir, download=False
        )
    validation, test = by_split["validation"], by_split["test"]
    assert (len(validation.train), len(validation.test), len(test.train), len(test.test)) == (
        50_000,
        10_000,
        60_000,
        10_000,
    )
    for splits in (validation, test):
        for split in (splits.train, splits.test):
            assert split.decoy_masks is not None
            assert set(split.decoy_masks.sum(dim=(1, 2)).tolist()) == {16}  # 4×4, never 8×8
        assert torch.equal(signalled_classes(splits.train), splits.train.labels)
        agreeing = (signalled_classes(splits.test) == splits.test.labels).float().mean().item()
        assert 0.07 < agreeing < 0.13  # 1/10 by chance: the patch tells nothing about the label there


def _rows(accuracies: dict[str, float]) -> list[dict[str, object]]:
    return [{"key": key, "accuracy": value} for key, value in accuracies.items()]


def test_choose_judges_every_lambda_on_the_seeds_where_all_of_them_finished() -> None:
    rows: dict[str, float] = {}
    for each in selection_cells(seeds=(0, 1)):
        rows[each.key] = 0.7 if each.lam == 10 else 0.6
    # Seed 2 has only λ = 1, and a high value: counting it would favour λ = 1.
    rows[BATCHCAM.cell(1.0, 2, evaluation_split="validation").key] = 0.99
    choice = choose(_rows(rows))[BATCHCAM.name]
    assert (choice.lam, choice.seeds) == (10.0, (0, 1))
    # The 4×4 choice reads the 4×4 rows only: the 8×8 rows above do not stand in for them.
    with pytest.raises(LookupError, match=SMALL_PATCH_DATASET):
        choose(_rows(rows), SMALL_PATCH_DATASET, SMALL_PATCH_METHODS)


def test_the_metric_is_chosen_on_validation_over_complete_seeds_and_l1_reuses_the_selection_runs() -> None:
    cells = metric_selection_cells()
    assert {c.evaluation_split for c in cells} == {"validation"} and {c.seed for c in cells} == set(range(5))
    l1_keys = {c.key for c in selection_cells() if c.mode == "batchcam" and c.prototype_statistic == "mean"}
    assert {setting_cell("l1", lam, 0).key for lam in BATCHCAM.lambdas} <= l1_keys
    assert cells.index(setting_cell("l1", 1.0, 4)) < cells.index(setting_cell("l2", 1.0, 0))  # L1 first
    rows = {c.key: 0.6 for c in cells if c.seed < 2}
    rows[setting_cell("ssim", 10.0, 0).key] = rows[setting_cell("ssim", 10.0, 1).key] = 0.8
    assert choose_setting(_rows({k: v for k, v in rows.items() if "ssim" not in k})) is None
    choice = choose_setting(_rows(rows))
    assert choice is not None and (choice.metric, choice.lam, choice.seeds) == ("ssim", 10.0, (0, 1))
    text = metric_selection_markdown([_row(key, value) for key, value in rows.items()], 10.0)
    assert "**SSIM, λ 10**" in text and "| SSIM, λ 10 | 2 | 80.00 ± 0.00 |" in text


def _row(key: str, accuracy: float) -> dict[str, object]:
    cell = next(c for c in metric_selection_cells() if c.key == key)
    return {"key": key, "cell": cell.to_dict(), "accuracy": accuracy}


def test_the_study_tables_draw_the_4_by_4_patch_without_controls() -> None:
    chosen = {m.name: m.lambdas[0] for m in SMALL_PATCH_METHODS}
    rows = [
        {"key": c.key, "cell": c.to_dict(), "accuracy": 0.5 + 0.01 * c.seed + 0.1 * (c.mode != "baseline")}
        for c in small_patch_cells(chosen)
    ]
    text = study_markdown(chosen, rows, SMALL_PATCH_DATASET, SMALL_PATCH_METHODS, controls=())
    assert "control" not in text and "RRR" in text and "Share of the annotation gain" in text
    assert all(m.name in text for m in SMALL_PATCH_METHODS)
    small = {m.name for m in SMALL_PATCH_METHODS}
    assert not any(f"| {m.name} |" in text for m in METHODS if m.name not in small)
    assert STUDY_DATASET not in text
    ceiling = ceiling_markdown(chosen, rows, SMALL_PATCH_DATASET, SMALL_PATCH_METHODS)
    assert (
        ceiling.count("against RRR") == 2 and "| Batch-CAM L1 | 5 |" in ceiling and "| RRR |" not in ceiling
    )


def test_the_layer_grid_is_the_ablations_features_2_row_with_per_image_cams() -> None:
    cells = per_image_layer_cells(10.0)
    ablation = [c for c in ablation_cells(10.0) if c.target_layer == EARLIER_LAYER]
    assert [c.seed for c in cells] == list(range(5))
    # The same runs but for the option: the mixed rows are the reference they are compared with.
    assert cells == [replace(c, cam_batch_statistics="constant") for c in ablation]
    assert {c.key for c in cells}.isdisjoint(c.key for c in ablation)
    assert cells[0].train_config("cpu").cam_batch_statistics == "constant"
    masked = masked_prototype_cells(10.0)
    assert masked[::2] == [replace(c, prototype_mask="decoy") for c in cells]  # the same, less the patches
    assert masked[1::2] == [replace(BATCHCAM.cell(10.0, seed), prototype_mask="decoy") for seed in range(5)]
    selection = per_image_layer_selection_cells()
    assert [(c.lam, c.seed, c.evaluation_split) for c in selection] == [
        (lam, 0, "validation") for lam in BATCHCAM.lambdas
    ]


def _cell_rows(cells: list[Cell], accuracy: Callable[[Cell], float]) -> list[dict[str, object]]:
    return [
        {"key": c.key, "cell": c.to_dict(), "accuracy": accuracy(c), "follows_decoy": 0.05 + 0.01 * c.seed}
        for c in cells
    ]


def test_the_edge_lambdas_are_reported_without_moving_the_selection() -> None:
    """A better λ beyond the range shows in its own table; the test grids' λ stay as chosen."""
    seeds = tuple(range(5))
    selection = _cell_rows(selection_cells(seeds), lambda c: (0.7 if c.lam == 10 else 0.6) + 0.002 * c.seed)
    edges = _cell_rows(lambda_edge_cells(), lambda c: 0.9 + 0.001 * c.seed**2)
    assert {c.key for c in lambda_edge_cells()}.isdisjoint(c.key for c in selection_cells(seeds))
    chosen = {name: choice.lam for name, choice in choose(selection).items()}
    assert {name: choice.lam for name, choice in choose(selection + edges).items()} == chosen
    text = lambda_edges_markdown(selection + edges, chosen)
    assert (
        "| RRR | **0.1**: 90.00, **0.3**: 90.00, 1: 60.00, 10: 70.00, 100: 60.00, 1000: 60.00 | 0.1 | 10 |"
        in text
    )
    assert "| Batch-CAM L1 | 1: 60.00, 10: 70.00, **30**: 90.00, 100: 60.00 | 30 | 10 |" in text
    # Batch-CAM's λ 30 ran on five seeds: tested against its chosen λ over them.
    assert "λ 10: 70.40 ± 0.32 (5 seeds); λ 30: 90.60 ± 0.66 (5 seeds)" in text
    assert "| Batch-CAM L1, λ 30 | 5 | +20.20 |" in text and text.rstrip().endswith("| higher |")


def test_the_layer_tables_test_per_image_cams_against_the_reference_and_the_mixed_row() -> None:
    reference = [BATCHCAM.cell(10.0, seed) for seed in range(5)]
    mixed = [replace(c, target_layer=EARLIER_LAYER) for c in reference]
    validation = per_image_layer_selection_cells()
    cells = reference + mixed + per_image_layer_cells(10.0) + validation + masked_prototype_cells(10.0)[::2]
    rows = _cell_rows(
        cells,
        lambda c: (
            0.7
            + 0.01 * c.seed
            + (0.05 if c.lam == 100.0 else 0.0)
            + (0.1 if c.prototype_mask == "decoy" else 0.0)
        ),
    )
    text = layer_markdown(10.0, rows)
    # Only per-image features.2 has masked runs here: one comparison, with its own layer's rows.
    assert f"| {PER_IMAGE}, decoy-masked prototypes | 5 | +10.00 |" in text
    assert "| Batch-CAM L1, CAM layer features, decoy-masked prototypes | paper | 10 | 0 | — |" in text
    assert text.count(f"| {PER_IMAGE}, λ 10 | 5 |") == 4  # against the reference and the mixed row, twice
    assert f"| {MIXED} | 5 |" in text and "per-image against mixing CAMs at features.2" in text
    assert f"| {PER_IMAGE} | 1: 70.00, 10: 70.00, 100: 75.00 | 100 |" in text
    assert "The option's validation choice (λ 100) differs" in text  # its test row has not run
    assert f"{PER_IMAGE}, λ 100" not in text
