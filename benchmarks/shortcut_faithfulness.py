"""Do the faithfulness measures see the decoy shortcut that CAM mass on the patch misses?

docs/RESULTS.md found that on Decoy-Fashion-MNIST the predicted-class CAM puts about the patch's
area of its mass on the patch whether or not the model follows the patch: at the 7×7 CAM grid a
4×4 corner is under one cell. This script trains, per seed, three `simple_cnn` models with the
decoy grids' recipe (1 epoch, batch 64, Adam 1e-3, recalibrated BatchNorm statistics):

- a clean baseline (Fashion-MNIST without patches: it cannot have learnt the patch),
- a decoy baseline (Decoy-Fashion-MNIST: it takes the shortcut),
- Batch-CAM L1 at λ = 10 on Decoy-Fashion-MNIST (the loss that removed most of the shortcut),

and runs the report's faithfulness assessment of each on the *decoy test split* (random patches),
so that the clean model gives the numbers of a model that ignores the patch. Besides the behaviour
(accuracy, share of disagreeing images that follow the patch) it prints the shares of CAM mass,
input-gradient and Integrated-Gradients attribution on the patch, and deletion/insertion/ROAD.

    .venv/bin/python benchmarks/shortcut_faithfulness.py --data-dir ../shared/data --seeds 0 1 2
    .venv/bin/python benchmarks/shortcut_faithfulness.py --data-dir ../shared/data --model resnet18

``--model resnet18`` uses decoy-resnet18-cpu's recipe instead (12k training images, 2 epochs), the
model whose CAMs left the patch while it kept following it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from _timing import machine_info, markdown_table
from reproduction.cells import Cell
from reproduction.runner import cell_splits

from batchcam.cam.extractor import CamExtractor
from batchcam.data.dataset import ImageDataset
from batchcam.data.decoy import signalled_classes
from batchcam.data.registry import load_dataset
from batchcam.device import select_execution
from batchcam.faithfulness.assessment import FaithfulnessSettings, assess
from batchcam.pipeline import train_and_report
from batchcam.spec.names import Metric, Mode
from batchcam.weights import load_model


@dataclass(frozen=True)
class Recipe:
    epochs: int
    train_limit: int | None


RECIPES = {
    "simple_cnn": Recipe(epochs=1, train_limit=None),  # the decoy grids' (decoy-cpu, recalibrated)
    "resnet18": Recipe(epochs=2, train_limit=12_000),  # decoy-resnet18-cpu's: a 12k-image subset
}


def models(architecture: str, seed: int) -> list[tuple[str, Cell]]:
    recipe = RECIPES[architecture]

    def cell(dataset: str, mode: Mode, metric: Metric | None, lam: float | None) -> Cell:
        return Cell(
            dataset,
            architecture,
            mode,
            metric,
            lam,
            seed,
            recipe.epochs,
            train_limit=recipe.train_limit,
            bn_recalibration_batches=100,
        )

    return [
        ("clean baseline", cell("fashion-mnist", "baseline", None, None)),
        ("decoy baseline", cell("decoy-fashion-mnist", "baseline", None, None)),
        ("decoy Batch-CAM L1 λ=10", cell("decoy-fashion-mnist", "batchcam", "l1", 10.0)),
    ]


def behaviour(model: torch.nn.Module, test: ImageDataset) -> dict[str, float]:
    """Accuracy on the decoy test split, and the share of patch-disagreeing images that follow it."""
    with torch.no_grad():
        predicted = torch.cat(
            [
                model(test.images[start : start + 1000].float() / 255).argmax(dim=1)
                for start in range(0, len(test), 1000)
            ]
        )
    signalled = signalled_classes(test)
    disagreeing = signalled != test.labels
    return {
        "accuracy": float((predicted == test.labels).float().mean()),
        "follows_decoy": float((predicted[disagreeing] == signalled[disagreeing]).float().mean()),
    }


def measure(label: str, cell: Cell, data_dir: Path, images: int, scratch: Path) -> dict[str, Any]:
    splits = cell_splits(cell, data_dir)  # with the recipe's training subset, if it has one
    run_dir = scratch / f"{cell.model}-{label}-{cell.seed}"
    config = replace(cell.train_config("cpu"), faithfulness_images=0)  # assessed below, on the decoy split
    train_and_report(config, run_dir, splits=splits, pictures=False, cache_dir=scratch)
    model, _ = load_model(run_dir / "model.safetensors")
    model.eval()
    decoy_test = load_dataset("decoy-fashion-mnist", data_dir=data_dir, download=False, seed=cell.seed).test
    section = assess(
        CamExtractor(model), decoy_test, select_execution("cpu", "fp32"), FaithfulnessSettings(images=images)
    )
    assert section is not None
    summary = section.summary
    decoy = summary["localisation"]["decoy"]
    return {
        "model": label,
        "architecture": cell.model,
        "seed": cell.seed,
        **behaviour(model, decoy_test),
        "patch_area": decoy["mask_area"],
        "cam_energy_on_patch": decoy["energy"]["map"],
        "cam_pointing_on_patch": decoy["pointing"]["map"],
        "input_gradient_share_on_patch": decoy["input_attribution_share"]["input_gradients"],
        "integrated_gradients_share_on_patch": decoy["input_attribution_share"]["integrated_gradients"],
        "deletion_map": summary["deletion"]["auc"]["map"],
        "deletion_random": summary["deletion"]["auc"]["random"],
        "insertion_map": summary["insertion"]["auc"]["map"],
        "insertion_random": summary["insertion"]["auc"]["random"],
        "road_combined_map": summary["road"]["combined"]["map"],
        "road_combined_random": summary["road"]["combined"]["random"],
        "randomised_spearman": (summary["sanity"]["fully_randomised"] or {}).get("spearman"),
        "random_logit_spearman": (summary["sanity"]["random_logit"] or {}).get("spearman"),
        "images": images,
    }


COLUMNS = (
    ("accuracy (%)", "accuracy", 100.0),
    ("follows the decoy (%)", "follows_decoy", 100.0),
    ("patch area (%)", "patch_area", 100.0),
    ("CAM mass on patch (%)", "cam_energy_on_patch", 100.0),
    ("input-gradient share on patch (%)", "input_gradient_share_on_patch", 100.0),
    ("IG share on patch (%)", "integrated_gradients_share_on_patch", 100.0),
    ("deletion AUC (random)", "deletion", 1.0),
    ("insertion AUC (random)", "insertion", 1.0),
    ("ROAD combined (random)", "road_combined", 1.0),
    ("ρ to randomised model", "randomised_spearman", 1.0),
)


def cell_text(rows: Sequence[dict[str, Any]], key: str, scale: float) -> str:
    def spread(values: list[float]) -> str:
        mean = statistics.fmean(values) * scale
        std = statistics.stdev(values) * scale if len(values) > 1 else 0.0
        return f"{mean:.{1 if scale > 1 else 3}f} ± {std:.{1 if scale > 1 else 3}f}"

    if f"{key}_map" in rows[0]:
        return f"{spread([r[f'{key}_map'] for r in rows])} ({spread([r[f'{key}_random'] for r in rows])})"
    values = [r[key] for r in rows if r[key] is not None]
    return spread(values) if values else "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, required=True, help="folder holding FashionMNIST/raw")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--model", choices=sorted(RECIPES), default="simple_cnn", help="architecture and its recipe"
    )
    parser.add_argument("--images", type=int, default=256, help="decoy test images assessed per model")
    parser.add_argument("--json", type=Path, default=None, help="append one JSON line per model and seed")
    options = parser.parse_args()
    print(machine_info().header())
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for seed in options.seeds:
            for label, cell in models(options.model, seed):
                print(f"seed {seed}: {label} ...", file=sys.stderr, flush=True)
                row = measure(label, cell, options.data_dir, options.images, Path(folder))
                rows.append(row)
                if options.json:
                    with options.json.open("a") as out:
                        out.write(json.dumps(row) + "\n")
    table = [
        [label, str(len(group))] + [cell_text(group, key, scale) for _, key, scale in COLUMNS]
        for label, _ in models(options.model, 0)
        for group in [[row for row in rows if row["model"] == label]]
    ]
    print(markdown_table(["model", "seeds", *(title for title, _, _ in COLUMNS)], table))
    print(
        f"Every model assessed on {options.images} images of the Decoy-Fashion-MNIST test split (random "
        "patches), on the predicted class; mean ± std over seeds; (random) = a random map's score."
    )


if __name__ == "__main__":
    main()
