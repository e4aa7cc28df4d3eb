"""Pictures across runs: CAM prototypes of every mode side by side, and where confused pairs looked.

Figures use the run folders (weights, prototypes); rows merged from another machine without their
folders are left out of the pictures, not of the tables.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and CI
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes

from batchcam.artifacts import RunFiles
from batchcam.data.dataset import ImageDataset, as_model_input
from batchcam.errors import BatchCamError
from batchcam.explain import Explainer
from batchcam.render import overlay_image
from reproduction.cells import Cell
from reproduction.runner import test_split

PANEL = 1.3  # inches per map
CONFUSED_GROUPS = (("Pullover", "Coat", "Shirt"), ("Sneaker", "Ankle boot"), ("T-shirt/top", "Shirt"))
PER_GROUP = 4


def write_figures(rows: Sequence[dict[str, Any]], folder: Path, data_dir: Path | None = None) -> list[Path]:
    """Writes (over) the figures the run folders here allow; others already in ``folder`` are kept
    (a fresh checkout has the committed figures but not the run folders that made them)."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, png in _all_figures(rows, data_dir):
        path = folder / name
        path.write_bytes(png)
        written.append(path)
    return written


Setting = tuple[str, str, int, int, str]  # dataset, model, epochs, seed, prototype mask


def _all_figures(rows: Sequence[dict[str, Any]], data_dir: Path | None) -> Iterator[tuple[str, bytes]]:
    for (dataset, model, epochs, seed, mask), runs in _runs_by_setting(rows).items():
        masked = mask != "none"
        stem = f"{dataset}_{model}_e{epochs}_s{seed}" + ("_decoy-masked" if masked else "")
        title = f"{dataset} · {model} · {epochs} epoch(s) · seed {seed}"
        yield (
            f"cam_prototypes_{stem}.png",
            cam_prototype_rows(runs, title + (" · decoy-masked prototypes" if masked else "")),
        )
        baseline = [run for run in runs if run[0].mode == "baseline"]
        others = [run for run in runs if run[0].mode == "batchcam"]
        if dataset == "fashion-mnist" and baseline and others:
            png = confused_pairs(baseline[0], others[0], data_dir)
            if png is not None:
                yield f"confused_pairs_{stem}.png", png


def _runs_by_setting(rows: Sequence[dict[str, Any]]) -> dict[Setting, list[tuple[Cell, Path]]]:
    """Per dataset × model × epochs × prototype mask, the runs of its lowest seed whose folders are
    here, when there is something to compare (two runs or more). Runs with masked prototypes get a
    figure of their own, with the same seed's baseline (which trains without prototypes)."""
    settings: dict[Setting, list[tuple[Cell, Path]]] = {}
    for row in rows:
        cell, run_dir = Cell.from_dict(row["cell"]), Path(row["run_dir"])
        if RunFiles(run_dir).prototypes.exists():
            key = (cell.dataset, cell.model, cell.epochs, cell.seed, cell.prototype_mask)
            settings.setdefault(key, []).append((cell, run_dir))
    for (dataset, model, epochs, seed, mask), runs in settings.items():
        if mask != "none":
            plain = settings.get((dataset, model, epochs, seed, "none"), [])
            runs += [run for run in plain if run[0].mode == "baseline"]
    lowest: dict[tuple[str, str, int, str], int] = {}
    for dataset, model, epochs, seed, mask in settings:
        group = (dataset, model, epochs, mask)
        lowest[group] = min(seed, lowest.get(group, seed))
    return {
        key: sorted(runs, key=lambda run: _label(run[0]))
        for key, runs in sorted(settings.items())
        if lowest[(key[0], key[1], key[2], key[4])] == key[3] and len(runs) > 1
    }


def _label(cell: Cell) -> str:
    recalibrated = " · BN recal." if cell.bn_recalibration_batches else ""
    if cell.mode == "baseline":
        return f"0 baseline{recalibrated}"  # first rows
    return f"{cell.mode} {cell.metric} λ={cell.lam:g}{recalibrated}"


def cam_prototype_rows(runs: Sequence[tuple[Cell, Path]], title: str) -> bytes:
    """Top row: the class prototypes; then one row of CAM prototypes per run (same seed)."""
    # The prototypes a CAM loss trained toward (a baseline's are the plain class means).
    first = RunFiles(next((path for cell, path in runs if cell.mode != "baseline"), runs[0][1]))
    prototypes, _ = first.read_prototypes()
    class_names = first.read_report()["dataset"]["class_names"]
    rows = [("class prototype", prototypes, "gray")]
    rows += [
        (_label(cell).removeprefix("0 "), RunFiles(path).read_prototypes()[1], "jet") for cell, path in runs
    ]
    classes = prototypes.shape[0]
    figure, grid = plt.subplots(
        len(rows), classes, figsize=(PANEL * classes + 1.8, PANEL * len(rows) + 0.6), squeeze=False
    )
    for r, (label, maps, colormap) in enumerate(rows):
        for c in range(classes):
            axes = grid[r, c]
            values = maps[c].float()
            axes.imshow(values.squeeze(0).numpy() if values.ndim == 3 else values.numpy(), cmap=colormap)
            _bare(axes)
        grid[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    for c, name in enumerate(class_names):
        grid[0, c].set_title(name, fontsize=8)
    figure.suptitle(title)
    return _png(figure)


def confused_pairs(
    baseline: tuple[Cell, Path], other: tuple[Cell, Path], data_dir: Path | None
) -> bytes | None:
    """Test images the baseline confuses within a similar-looking group, with both models' CAMs."""
    test = _test_split(baseline[0], data_dir)
    if test is None:
        return None
    first, second = Explainer.from_run(baseline[1]), Explainer.from_run(other[1])
    names = test.class_names
    predicted = _predictions(first, test)
    chosen = _confused_examples(test.labels, predicted, names)
    if not chosen:
        return None
    images = test.images[chosen]
    explained = [first.explain(images), second.explain(images)]
    titles = ("baseline", _label(other[0]))
    figure, grid = plt.subplots(
        len(chosen), 3, figsize=(3 * PANEL + 1.2, PANEL * len(chosen) + 0.6), squeeze=False
    )
    for row, index in enumerate(chosen):
        grid[row, 0].imshow(images[row].squeeze(0).numpy(), cmap="gray")
        grid[row, 0].set_ylabel(
            f"#{index}\n{names[int(test.labels[index])]}", fontsize=7, rotation=0, ha="right"
        )
        for column, (title, results) in enumerate(zip(titles, explained, strict=True), start=1):
            result = results[row]
            grid[row, column].imshow(overlay_image(images[row], result.cam))
            grid[row, column].set_title(f"{title}: {names[result.predicted]}", fontsize=7)
        for axes in grid[row]:
            _bare(axes)
    figure.suptitle("Fashion-MNIST: baseline confusions, CAM of each model's predicted class", fontsize=9)
    return _png(figure)


def _test_split(cell: Cell, data_dir: Path | None) -> ImageDataset | None:
    try:
        return test_split(cell, data_dir)
    except BatchCamError as error:
        print(f"confused-pairs figure skipped: {error.message}")
        return None


def _predictions(explainer: Explainer, test: ImageDataset, batch: int = 1000) -> torch.Tensor:
    """Predicted classes only (no CAMs): the model's forward pass in eval mode."""
    parts = []
    with torch.no_grad():
        for start in range(0, len(test), batch):
            images = as_model_input(test.images[start : start + batch].to(explainer.device))
            parts.append(explainer.model(images).argmax(dim=1).cpu())
    return torch.cat(parts)


def _confused_examples(labels: torch.Tensor, predicted: torch.Tensor, names: Sequence[str]) -> list[int]:
    chosen: list[int] = []
    for group in CONFUSED_GROUPS:
        members = [names.index(name) for name in group if name in names]
        within = np.isin(labels.numpy(), members) & np.isin(predicted.numpy(), members)
        wrong = np.flatnonzero(within & (labels.numpy() != predicted.numpy()))
        chosen += [int(i) for i in wrong[:PER_GROUP] if int(i) not in chosen]
    return chosen


def _bare(axes: Axes) -> None:
    axes.set_xticks([])
    axes.set_yticks([])


def _png(figure: plt.Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()
