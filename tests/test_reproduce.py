"""The experiment harness (benchmarks/reproduce.py): cells, the resumable log, the tables, a tiny grid."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))  # the harness is run as a script, with its folder on sys.path

from reproduction.cells import Cell  # noqa: E402
from reproduction.grids import GRIDS, tiny  # noqa: E402
from reproduction.results import ResultsLog, pending  # noqa: E402
from reproduction.runner import RunOptions, run_cell  # noqa: E402
from reproduction.selection import choose  # noqa: E402
from reproduction.significance import compare, corrected, holm  # noqa: E402
from reproduction.study import METHODS, head_cells, selection_cells, study_cells  # noqa: E402
from reproduction.study_tables import head_markdown, selection_markdown, study_markdown  # noqa: E402
from reproduction.tables import Stat, markdown  # noqa: E402

from batchcam.weights import load_model  # noqa: E402


def cell(**changes: Any) -> Cell:
    fields: dict[str, Any] = {
        "dataset": "mnist",
        "model": "simple_cnn",
        "mode": "batchcam",
        "metric": "l1",
        "lam": 1.0,
        "seed": 0,
        "epochs": 2,
    }
    return Cell(**(fields | changes))


def row(of: Cell, accuracy: float, **extra: Any) -> dict[str, Any]:
    return {
        "key": of.key,
        "cell": of.to_dict(),
        "accuracy": accuracy,
        "cam_prototype_distance": {"l1": 0.1, "l2": 0.05, "ssim": 0.5},
        "decoy_energy": None,
        "seconds_per_epoch": 10.0,
        "cam_ms_per_image": 0.5,
        "train_images": 60000,
        "machine": {"cpu": "test CPU", "gpu": None},
    } | extra


def test_cell_keys_are_stable_and_change_with_any_setting() -> None:
    assert cell().key == cell().key
    keys = {cell().key, cell(seed=1).key, cell(epochs=3).key, cell(lr=1e-4).key, cell(train_limit=100).key}
    assert len(keys) == 5
    assert cell(seed=1).group == cell(seed=2).group != cell(lam=10.0).group
    assert cell(prototype_mask="decoy").key != cell().key != cell(bn_recalibration_batches=100).key


def test_cells_recorded_before_a_field_was_added_keep_their_keys() -> None:
    """Every committed result row's cell still has its key: no finished run is trained again."""
    results = Path(__file__).resolve().parents[1] / "docs" / "results" / "results.jsonl"
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert rows and all(Cell.from_dict(r["cell"]).key == r["key"] for r in rows)


def test_baseline_has_no_metric_or_lambda() -> None:
    with pytest.raises(ValueError):
        cell(mode="baseline")
    with pytest.raises(ValueError):
        cell(metric=None, lam=None)
    assert cell(mode="baseline", metric=None, lam=None).train_config("cpu").mode == "baseline"


def test_cell_lambda_weighs_the_active_terms() -> None:
    config = cell(mode="both", metric="ssim", lam=10.0).train_config("cpu")
    assert (config.lambda_prototype, config.lambda_batchcam, config.metric) == (10.0, 10.0, "ssim")


def test_grids_report_at_least_three_seeds_per_cell_and_no_duplicates() -> None:
    for name, build in GRIDS.items():
        try:
            cells = build()
        except LookupError:  # the study's test grid before its λ selection has run
            cells = study_cells({method.name: method.lambdas[0] for method in METHODS})
        assert len(set(cells)) == len(cells), name
        seeds: dict[Cell, set[int]] = {}
        for each in cells:
            seeds.setdefault(each.group, set()).add(each.seed)
        chosen_on = (
            "study-select-cpu",
            "study-small-select-cpu",
            "study-layer-select-cpu",
            "study-lambda-edges-cpu",
        )
        if name != "tiny" and name not in chosen_on:  # chosen on, not concluded
            assert min(len(s) for s in seeds.values()) >= 3, name


def test_the_study_grid_has_five_seeds_controls_and_every_method_at_its_chosen_lambda() -> None:
    chosen = {method.name: method.lambdas[-1] for method in METHODS}
    cells = study_cells(chosen)
    assert {c.seed for c in cells} == set(range(5))
    assert {c.prototype_target for c in cells} == {"class", "gaussian", "global-mean", "permuted"}
    assert {c.evaluation_split for c in cells} == {"test"}
    for method in METHODS:
        assert sum(c == method.cell(chosen[method.name], c.seed) for c in cells) == 5, method.name
    assert all(c.evaluation_split == "validation" for c in selection_cells())


def test_selection_chooses_the_best_mean_validation_accuracy_and_the_smaller_lambda_on_ties() -> None:
    rows = []
    for index, each in enumerate(selection_cells(seeds=(0, 1))):
        accuracy = 0.5 if each.lam is None else 0.6 + 0.01 * (index % 3)
        rows.append({"key": each.key, "accuracy": accuracy})
    choices = choose(rows)
    for method in METHODS:
        means = choices[method.name].validation_accuracy
        best = max(means.values())
        assert choices[method.name].lam == min(lam for lam, value in means.items() if value == best)
    with pytest.raises(LookupError, match="study-select-cpu"):
        choose(rows[:3])


def test_annotation_mode_cells_have_a_lambda_and_no_metric() -> None:
    config = cell(mode="rrr", metric=None, lam=100.0).train_config("cpu")
    assert (config.mode, config.lambda_annotation) == ("rrr", 100.0)
    with pytest.raises(ValueError, match="metric must be None"):
        cell(mode="energy", metric="l1", lam=1.0)


def test_paper_grid_covers_every_dataset_model_mode_and_metric() -> None:
    cells = GRIDS["paper-full"]()
    assert {c.dataset for c in cells} == {"mnist", "fashion-mnist"}
    assert {c.model for c in cells} == {"simple_cnn", "resnet18", "convnextv2_tiny"}
    assert {(c.mode, c.metric) for c in cells} >= {
        (mode, metric) for mode in ("prototype", "batchcam", "both") for metric in ("l1", "l2", "ssim")
    } | {("baseline", None)}


def test_longer_cpu_cells_are_paper_full_cells_so_a_gpu_session_does_not_rerun_them() -> None:
    paper_full_keys = {c.key for c in GRIDS["paper-full"]()}
    longer = GRIDS["longer-cpu"]()
    assert longer and {c.key for c in longer} <= paper_full_keys


def test_log_keeps_the_first_row_per_key_and_skips_a_torn_last_line(tmp_path: Path) -> None:
    log = ResultsLog(tmp_path / "results.jsonl")
    first, second = cell(), cell(seed=1)
    log.append(row(first, 0.9))
    log.append(row(first, 0.1))  # a duplicate key never replaces the first result
    log.append(row(second, 0.8))
    with log.path.open("a") as file:
        file.write('{"key": "torn')  # a run killed while writing
    rows = log.rows()
    assert [(r["key"], r["accuracy"]) for r in rows] == [(first.key, 0.9), (second.key, 0.8)]
    assert pending([first, second, cell(seed=2)], log) == [cell(seed=2)]


def test_merge_adds_only_new_keys(tmp_path: Path) -> None:
    here, there = ResultsLog(tmp_path / "a.jsonl"), ResultsLog(tmp_path / "b.jsonl")
    here.append(row(cell(), 0.9))
    there.append(row(cell(), 0.5))
    there.append(row(cell(seed=1), 0.7))
    assert here.merge(there.path) == 1
    assert {r["key"]: r["accuracy"] for r in here.rows()} == {cell().key: 0.9, cell(seed=1).key: 0.7}


def test_stat_is_mean_and_sample_standard_deviation() -> None:
    values = [0.91, 0.93, 0.98]
    stat = Stat.of(values)
    assert stat is not None
    assert stat.mean == pytest.approx(statistics.fmean(values))
    assert stat.std == pytest.approx(statistics.stdev(values))
    assert (
        stat.format(2, 100.0)
        == f"{100 * statistics.fmean(values):.2f} ± {100 * statistics.stdev(values):.2f}"
    )
    single = Stat.of([0.5])
    assert single is not None and single.std is None and single.format(3) == "0.500"
    assert Stat.of([]) is None


def test_markdown_averages_over_seeds_only() -> None:
    rows = [row(cell(seed=s), a) for s, a in ((0, 0.90), (1, 0.92), (2, 0.94))]
    rows.append(row(cell(mode="baseline", metric=None, lam=None), 0.5))
    table = markdown(rows)
    lines = [line for line in table.splitlines() if line.startswith("| simple_cnn")]
    assert len(lines) == 2
    baseline, batchcam = lines  # the baseline sorts first
    assert "| baseline | — | — |" in baseline and "| 50.00 |" in baseline
    assert "| batchcam | L1 | 1 |" in batchcam and "| 3 | 92.00 ± 2.00 |" in batchcam
    assert "decoy" not in table  # no row has decoy masks: the column is left out
    assert "BatchNorm statistics" not in table  # nor was any run recalibrated


def test_markdown_keeps_recalibrated_runs_apart_and_says_so() -> None:
    rows = [row(cell(seed=s), 0.90) for s in (0, 1)]
    rows += [row(cell(seed=s, bn_recalibration_batches=100), 0.95) for s in (0, 1)]
    lines = [line for line in markdown(rows).splitlines() if line.startswith("| simple_cnn")]
    assert len(lines) == 2
    assert "| running averages | 2 | 90.00 ± 0.00 |" in lines[0]
    assert "| recalibrated (100 batches) | 2 | 95.00 ± 0.00 |" in lines[1]


@pytest.mark.slow
def test_tiny_grid_runs_then_resumes_without_recomputing(tmp_path: Path) -> None:
    command = [
        sys.executable,
        str(BENCHMARKS / "reproduce.py"),
        "run",
        "--grid",
        "tiny",
        "--out",
        str(tmp_path),
    ]
    first = subprocess.run([*command, "--run-pictures", "none"], capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    log = tmp_path / "results.jsonl"
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert sorted(r["key"] for r in rows) == sorted(c.key for c in tiny())
    for each in rows:
        assert 0.0 <= each["accuracy"] <= 1.0
        assert each["config"]["epochs"] == each["cell"]["epochs"] == 1
        assert each["machine"]["cpu"] and each["execution"]["device"]
        assert each["train_images"] == 384 and each["test_images"] == 128
        assert (each["decoy_energy"] is not None) == each["cell"]["dataset"].startswith("decoy-")
    assert not list((tmp_path / "runs").rglob("*.png"))  # --run-pictures none: numbers only
    table = (tmp_path / "results.md").read_text()
    assert "### shapes" in table and "### decoy-shapes" in table and " ± " in table
    decoy_table = table[table.index("### decoy-shapes") : table.index("### shapes")]
    assert "| prototypes |" in decoy_table and "| batchcam | L1 | decoy masked | 10 |" in decoy_table
    assert "| prototypes |" not in table[table.index("### shapes") :]  # no masked cell there
    assert "follows the decoy (%)" in table  # the shortcut analysis ran on the decoy cells
    shortcut = [json.loads(line) for line in (tmp_path / "shortcut.jsonl").read_text().splitlines()]
    assert sorted(r["key"] for r in shortcut) == sorted(c.key for c in tiny() if c.dataset == "decoy-shapes")
    assert all(0.0 <= r["follows_decoy"] <= 1.0 and r["disagreeing_images"] > 0 for r in shortcut)
    figures = sorted((tmp_path / "figures").glob("*.png"))
    assert [f.name for f in figures] == [
        "cam_prototypes_decoy-shapes_simple_cnn_e1_s0.png",
        "cam_prototypes_decoy-shapes_simple_cnn_e1_s0_decoy-masked.png",
        "cam_prototypes_shapes_simple_cnn_e1_s0.png",
    ]
    for figure in figures:
        with Image.open(figure) as image:
            assert image.width > 200 and image.height > 200

    before = log.read_bytes()
    again = subprocess.run([*command, "--no-figures"], capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "9 of 9 cells already finished; 0 to run" in again.stdout
    assert log.read_bytes() == before


def test_recalibrating_a_saved_run_gives_what_a_recalibrating_trainer_reports(tmp_path: Path) -> None:
    """benchmarks/bn_recalibration.py's counterfactual is exact: training never reads the running
    statistics, so a run trained without recalibration, recalibrated afterwards, scores what the
    same cell trained with it scores."""
    from bn_recalibration import measure

    options = RunOptions(tmp_path / "runs", "cpu", None, False, {"cpu": "test"}, pictures="none")
    plain = Cell("decoy-shapes", "simple_cnn", "batchcam", "l1", 10.0, 0, 2, train_limit=384, test_limit=128)
    recalibrating = replace(plain, bn_recalibration_batches=5)
    saved, trained = run_cell(plain, options), run_cell(recalibrating, options)
    measured = measure(saved, None, batches=5)
    assert measured.stale == saved["accuracy"]
    assert measured.fresh == trained["accuracy"]
    saved_model, _ = load_model(Path(saved["run_dir"]) / "model.safetensors")
    trained_model, _ = load_model(Path(trained["run_dir"]) / "model.safetensors")
    statistics_differ = [
        not torch.equal(saved_model.state_dict()[name], value)
        for name, value in trained_model.state_dict().items()
        if "running_var" in name
    ]
    assert all(statistics_differ)  # other statistics ...
    weights = [
        name for name in trained_model.state_dict() if "running_" not in name and "num_batches" not in name
    ]
    assert all(
        torch.equal(saved_model.state_dict()[n], trained_model.state_dict()[n]) for n in weights
    )  # ... same weights
    assert (
        trained["config"]["bn_recalibration_batches"] == 5
        and saved["config"]["bn_recalibration_batches"] == 0
    )


def test_holm_adjusts_step_down_and_keeps_the_input_order() -> None:
    # sorted: 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 → monotone 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def test_a_difference_is_called_only_where_both_corrected_tests_see_it() -> None:
    baseline = {seed: 0.70 + 0.001 * seed for seed in range(5)}
    clear = {seed: 0.80 + 0.002 * seed for seed in range(5)}
    noise = {seed: 0.70 + 0.01 * (-1) ** seed for seed in range(5)}
    comparisons = corrected([compare("clear", clear, baseline), compare("noise", noise, baseline)])
    assert [c.verdict for c in comparisons] == ["higher", "no detectable difference"]
    assert comparisons[0].difference == pytest.approx(0.102)
    assert comparisons[0].welch_p_holm >= comparisons[0].welch_p  # a correction never lowers p


def test_study_report_tables_name_every_method_and_control(tmp_path: Path) -> None:
    rows = []
    chosen = {method.name: method.lambdas[0] for method in METHODS}
    cells = study_cells(chosen) + selection_cells() + head_cells(chosen["Batch-CAM L1"])
    for index, each in enumerate(cells):
        rows.append(
            {
                "key": each.key,
                "cell": each.to_dict(),
                "accuracy": 0.5 + 0.001 * index,
                "follows_decoy": 0.1 + 0.01 * (index % 7),
            }
        )
    text = study_markdown(chosen, rows) + selection_markdown(choose(rows), rows) + head_markdown(chosen, rows)
    for method in METHODS:
        assert method.name in text
    assert text.count("control: Batch-CAM L1 toward") >= 3 and "Share of the annotation gain" in text
    assert "constant CAM weights" in text and "| 5 |" in text  # the head rows, with their 5 seeds


def test_a_value_measured_on_fewer_seeds_than_its_row_says_how_many() -> None:
    chosen = {method.name: method.lambdas[0] for method in METHODS}
    rows = []
    for each in study_cells(chosen):
        follows = {"follows_decoy": 0.1 + 0.01 * each.seed} if each.seed < 3 else {}
        rows.append({"key": each.key, "cell": each.to_dict(), "accuracy": 0.5 + 0.01 * each.seed, **follows})
    table = study_markdown(chosen, rows)
    first = next(line for line in table.splitlines() if line.startswith("| decoy baseline"))
    assert "| 5 | 52.00 ± 1.58 | 11.0 ± 1.0 (3 seeds) |" in first
