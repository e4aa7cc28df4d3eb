"""How much stale BatchNorm statistics cost finished runs: test accuracy before and after recalibration.

For every row of a reproduction log whose run folder is here, the saved model is evaluated twice on
its own test split, in eval mode: with the running averages it was saved with, and after the
library's ``recalibrate_batchnorm`` over the same fixed sample of training batches the trainer now
uses (``bn_recalibration_batches``, default 100). Same weights both times: only the statistics differ.

    .venv/bin/python benchmarks/bn_recalibration.py --out docs/results --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from _timing import machine_info, markdown_table
from reproduction.cells import Cell
from reproduction.results import ResultsLog
from reproduction.runner import cell_splits
from tqdm import tqdm

from batchcam.artifacts import RunFiles
from batchcam.data.dataset import ImageDataset, as_model_input
from batchcam.modes import evaluating
from batchcam.spec.training import TrainConfig
from batchcam.training.batchnorm import has_batchnorm, recalibrate_batchnorm, recalibration_images
from batchcam.weights import load_model

EVAL_BATCH = 1000


@dataclass(frozen=True)
class Recalibrated:
    cell: Cell
    stale: float  # test accuracy with the saved running averages
    fresh: float  # test accuracy after recalibration


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="a reproduce.py output folder")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument(
        "--batches",
        type=int,
        default=TrainConfig.bn_recalibration_batches,
        help="recalibration batches (the trainer's default)",
    )
    args = parser.parse_args(argv)
    rows = [row for row in ResultsLog(args.out / "results.jsonl").rows() if _has_model(row)]
    if not rows:
        print(f"no run folders of {args.out}/results.jsonl are here: nothing to measure", file=sys.stderr)
        return 1
    results = [measure(row, args.data_dir, args.batches) for row in tqdm(rows, unit="run")]
    print(report(results, args.batches))
    return 0


def _has_model(row: dict[str, Any]) -> bool:
    return RunFiles(Path(row["run_dir"])).model.exists()


def measure(row: dict[str, Any], data_dir: Path | None, batches: int) -> Recalibrated:
    cell = Cell.from_dict(row["cell"])
    splits = cell_splits(cell, data_dir)
    model, _ = load_model(RunFiles(Path(row["run_dir"])).model)
    stale = accuracy(model, splits.test)
    if not has_batchnorm(model):
        return Recalibrated(cell, stale, stale)  # nothing to recalibrate: skip the second pass
    images = recalibration_images(splits.train, cell.batch_size, cell.seed, cell.epochs - 1, batches)
    recalibrate_batchnorm(model, map(as_model_input, images))
    return Recalibrated(cell, stale, accuracy(model, splits.test))


def accuracy(model: torch.nn.Module, test: ImageDataset) -> float:
    correct = 0
    with evaluating(model), torch.no_grad():
        for start in range(0, len(test), EVAL_BATCH):
            images, labels = test[start : start + EVAL_BATCH]
            correct += int((model(as_model_input(images)).argmax(dim=1) == labels).sum())
    return correct / len(test)


def report(results: list[Recalibrated], batches: int) -> str:
    groups: dict[Cell, list[Recalibrated]] = defaultdict(list)
    for result in results:
        groups[result.cell.group].append(result)
    lines = []
    for cell, members in sorted(groups.items(), key=lambda item: repr(item[0])):
        stale = [m.stale * 100 for m in members]
        fresh = [m.fresh * 100 for m in members]
        lam = "—" if cell.lam is None else f"{cell.lam:g}"
        lines.append(
            [
                cell.dataset,
                cell.mode,
                lam,
                cell.prototype_mask,
                str(len(members)),
                _mean_std(stale),
                _mean_std(fresh),
                f"{min(stale):.2f}",
                f"{min(fresh):.2f}",
                f"{statistics.fmean(f - s for f, s in zip(fresh, stale, strict=True)):+.2f}",
            ]
        )
    head = [
        "dataset",
        "mode",
        "λ",
        "prototypes",
        "seeds",
        "accuracy, saved statistics (%)",
        "accuracy, recalibrated (%)",
        "worst seed, saved",
        "worst seed, recalibrated",
        "mean change (points)",
    ]
    machine = machine_info()
    return (
        f"Machine: {machine.cpu}, {machine.usable_cores} cores, torch {machine.torch_version}; "
        f"{batches} recalibration batches; {len(results)} runs\n\n" + markdown_table(head, lines)
    )


def _mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.fmean(values):.2f} ± {statistics.stdev(values):.2f}"


if __name__ == "__main__":
    raise SystemExit(main())
