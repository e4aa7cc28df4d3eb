"""One cell through the library's own pipeline (the same code the CLI and the workers run)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import torch

from batchcam.artifacts import RunFiles
from batchcam.data.dataset import DatasetSplits, ImageDataset
from batchcam.errors import BatchCamError
from batchcam.pipeline import prepare_data, train_and_report
from batchcam.spec.names import METRICS, Device, EvaluationSplit
from batchcam.spec.training import TrainConfig
from batchcam.training.callbacks import CheckpointToFile
from batchcam.training.state import TrainingState
from reproduction.cells import Cell

Pictures = Literal["all", "first-seed", "none"]  # which runs get the library's PNGs (seconds each)
PICTURES: tuple[Pictures, ...] = ("all", "first-seed", "none")
SUBSET_SEED = 1234  # one subset for every seed of a cell: seeds vary initialisation and order only


@dataclass(frozen=True)
class RunOptions:
    runs_dir: Path
    device: Device
    data_dir: Path | None
    download: bool
    machine: dict[str, Any]  # who ran it: recorded with every row
    pictures: Pictures = "first-seed"

    def wants_pictures(self, cell: Cell) -> bool:
        return self.pictures == "all" or (self.pictures == "first-seed" and cell.seed == 0)


def run_cell(cell: Cell, options: RunOptions) -> dict[str, Any]:
    """Trains and evaluates ``cell`` (resuming its checkpoint if a previous attempt was killed)."""
    config = cell.train_config(options.device)
    data = prepare_data(config, data_dir=options.data_dir, download=options.download)
    splits = limited(data, cell.train_limit, cell.test_limit)
    files = RunFiles(options.runs_dir / cell.key)
    output = train_and_report(
        config,
        files.root,
        splits=splits,
        callbacks=[CheckpointToFile(files.checkpoint)],
        resume=_checkpoint(files),
        data_dir=options.data_dir,
        download=options.download,
        pictures=options.wants_pictures(cell),
    )
    if output.report is None:
        raise RuntimeError(f"{cell.key} stopped before finishing ({output.outcome})")
    files.checkpoint.unlink(missing_ok=True)  # the weights are in the run; the optimiser state is not needed
    return result_row(cell, output.report, files.root, options.machine)


def _checkpoint(files: RunFiles) -> TrainingState | None:
    if not files.checkpoint.exists():
        return None
    try:
        return TrainingState.load(files.checkpoint)
    except BatchCamError as error:
        print(f"{files.checkpoint}: not resumable ({error.message}); starting the cell again")
        files.remove_run()
        return None


def test_split(cell: Cell, data_dir: Path | None) -> ImageDataset:
    """The test images a cell's run was evaluated on (local data only: nothing is downloaded)."""
    return cell_splits(cell, data_dir).test


def cell_splits(cell: Cell, data_dir: Path | None) -> DatasetSplits:
    """The data a cell's run trained and was evaluated on (local only), loaded once per dataset,
    seed and limits however many runs share them."""
    return _cell_splits(
        cell.dataset,
        cell.seed,
        cell.image_size,
        cell.train_limit,
        cell.test_limit,
        data_dir,
        cell.evaluation_split,
    )


@lru_cache(maxsize=4)
def _cell_splits(
    dataset: str,
    seed: int,
    image_size: int | None,
    train_limit: int | None,
    test_limit: int | None,
    data_dir: Path | None,
    evaluation_split: EvaluationSplit,
) -> DatasetSplits:
    config = TrainConfig(
        dataset=dataset, seed=seed, image_size=image_size, device="cpu", evaluation_split=evaluation_split
    )
    return limited(prepare_data(config, data_dir=data_dir, download=False), train_limit, test_limit)


def limited(splits: DatasetSplits, train_limit: int | None, test_limit: int | None) -> DatasetSplits:
    return replace(
        splits,
        train=_first_of_shuffled(splits.train, train_limit),
        test=_first_of_shuffled(splits.test, test_limit),
    )


def _first_of_shuffled(dataset: ImageDataset, limit: int | None) -> ImageDataset:
    if limit is None or limit >= len(dataset):
        return dataset
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(SUBSET_SEED))
    return dataset.subset(order[:limit].sort().values)


def result_row(cell: Cell, report: dict[str, Any], run_dir: Path, machine: dict[str, Any]) -> dict[str, Any]:
    test, timings = report["test"], report["timings"]
    return {
        "key": cell.key,
        "cell": cell.to_dict(),
        "accuracy": test["accuracy"],
        "per_class_accuracy": test["per_class_accuracy"],
        "cam_prototype_distance": {m: test["cam_prototype_distance"][m]["mean"] for m in METRICS},
        "decoy_energy": test["decoy_energy"],
        "object_energy": test["object_energy"],
        "seconds_per_epoch": statistics.fmean(timings["seconds_per_epoch"]),
        "cam_ms_per_image": timings["cam_ms_per_image"],
        "wall_seconds": timings["total_seconds"],
        "train_images": report["dataset"]["train_images"],
        "test_images": report["dataset"]["test_images"],
        "input_size": report["model"].get("input_size"),
        "faithfulness": report.get("faithfulness"),
        "targets": report.get("targets"),
        "config": report["config"],
        "execution": report["execution"],
        "machine": machine,
        "versions": report["versions"],
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "run_dir": str(run_dir),
    }
