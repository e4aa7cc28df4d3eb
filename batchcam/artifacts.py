"""A finished run on disk: the file layout that the CLI, the explain command and the service share."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from torch import nn

from batchcam import render
from batchcam.data.dataset import ImageDataset
from batchcam.evaluation import Evaluation
from batchcam.faithfulness.assessment import Assessment
from batchcam.spec.model_spec import ModelSpec
from batchcam.spec.run_files import CHECKPOINT_FILE, MODEL_FILE, PROTOTYPES_FILE, REPORT_FILE
from batchcam.weights import save_model

EXPLANATIONS_DIR = "explanations"  # where `batchcam explain` writes by default
EXAMPLES_PER_CLASS = 2
FAITHFULNESS_FIGURE = "faithfulness.png"
# Everything a run (and explaining with it) may write into its directory, for --overwrite.
RUN_ENTRIES = (
    MODEL_FILE,
    PROTOTYPES_FILE,
    REPORT_FILE,
    CHECKPOINT_FILE,
    CHECKPOINT_FILE + ".partial",
    "prototypes.png",
    "cam_prototypes.png",
    "misclassified.png",
    "training_curves.png",
    "cam_examples.png",
    FAITHFULNESS_FIGURE,
    "prototypes",
    "cam_prototypes",
    "misclassified",
    EXPLANATIONS_DIR,
)


@dataclass(frozen=True, eq=False)
class CamExamples:
    """A few test images per class with their CAMs (for the predicted class), for a first look."""

    images: torch.Tensor  # N×C×H×W uint8
    cams: torch.Tensor  # N×H×W
    titles: list[str]


@dataclass(frozen=True)
class RunFiles:
    """Paths inside one run directory."""

    root: Path

    @property
    def model(self) -> Path:
        return self.root / MODEL_FILE

    @property
    def prototypes(self) -> Path:
        return self.root / PROTOTYPES_FILE

    @property
    def report(self) -> Path:
        return self.root / REPORT_FILE

    @property
    def checkpoint(self) -> Path:
        return self.root / CHECKPOINT_FILE

    def existing_run(self) -> list[Path]:
        """The files that show a run was (or is being) made here: report, weights, checkpoint."""
        return [path for path in (self.report, self.model, self.checkpoint) if path.exists()]

    def remove_run(self) -> None:
        """Deletes what a run wrote here, and only that: other files in the folder stay."""
        for name in RUN_ENTRIES:
            path = self.root / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()

    def read_report(self) -> dict[str, Any]:
        return json.loads(self.report.read_text())

    def read_prototypes(self) -> tuple[torch.Tensor, torch.Tensor]:
        tensors = load_file(str(self.prototypes))
        return tensors["prototypes"], tensors["cam_prototypes"]


def write_run(
    files: RunFiles,
    model: nn.Module,
    spec: ModelSpec,
    prototypes: torch.Tensor,
    evaluation: Evaluation,
    history: list[dict[str, Any]],
    test_data: ImageDataset,
    examples: CamExamples,
    report: dict[str, Any],
    *,
    assessment: Assessment | None = None,
    pictures: bool = True,
) -> dict[str, str]:
    """Writes weights, prototypes, pictures and (last) the report; returns artifact → relative path.

    ``pictures=False`` skips the PNGs (seconds of plotting per run), for sweeps that need numbers only.
    """
    root = files.root
    root.mkdir(parents=True, exist_ok=True)
    save_model(files.model, model, spec)
    save_file(
        {"prototypes": prototypes.contiguous(), "cam_prototypes": evaluation.cam_prototypes.contiguous()},
        str(files.prototypes),
    )
    written = {"model": MODEL_FILE, "prototypes": PROTOTYPES_FILE}
    if pictures:
        written |= _write_pictures(root, spec, prototypes, evaluation, history, test_data)
        (root / "cam_examples.png").write_bytes(
            render.cam_examples_grid(
                examples.images, examples.cams, examples.titles, ncols=2 * EXAMPLES_PER_CLASS
            )
        )
        written["cam_examples_png"] = "cam_examples.png"
        if assessment is not None:
            (root / FAITHFULNESS_FIGURE).write_bytes(faithfulness_figure(assessment))
            written["faithfulness_png"] = FAITHFULNESS_FIGURE
    report = {**report, "artifacts": {**written, "report": REPORT_FILE}}
    files.report.write_text(json.dumps(report, indent=2))
    return report["artifacts"]


def faithfulness_figure(assessment: Assessment) -> bytes:
    curves = {name: (entry.fractions, entry.curves) for name, entry in assessment.curves.items()}
    return render.faithfulness_curves(curves, [("trained", 1.0, 1.0), *assessment.cascade])


def _write_pictures(
    root: Path,
    spec: ModelSpec,
    prototypes: torch.Tensor,
    evaluation: Evaluation,
    history: list[dict[str, Any]],
    test_data: ImageDataset,
) -> dict[str, str]:
    names = list(spec.class_names)
    figures = {
        "prototypes_png": (
            "prototypes.png",
            render.prototype_grid(prototypes, names, title="Class prototypes"),
        ),
        "cam_prototypes_png": (
            "cam_prototypes.png",
            render.prototype_comparison(prototypes, evaluation.cam_prototypes, names, evaluation.distances),
        ),
        "misclassified_png": (
            "misclassified.png",
            render.misclassification_gallery(gallery_items(evaluation, test_data), names, prototypes),
        ),
        "training_curves_png": ("training_curves.png", render.training_curves(history)),
    }
    for file_name, png in figures.values():
        (root / file_name).write_bytes(png)
    written = {name: file_name for name, (file_name, _) in figures.items()}
    for folder, maps in (("prototypes", prototypes), ("cam_prototypes", evaluation.cam_prototypes)):
        (root / folder).mkdir(exist_ok=True)
        for index, values in enumerate(maps):
            image = render.raw_heatmap_image(values) if folder == "prototypes" else _heatmap(values)
            (root / folder / f"{index}.png").write_bytes(render.png_bytes(image))
        written[f"{folder}_dir"] = folder
    (root / "misclassified").mkdir(exist_ok=True)
    for item in evaluation.misclassified:
        overlay = render.overlay_image(test_data.images[item.index], item.cam)
        (root / "misclassified" / f"{item.index}.png").write_bytes(render.png_bytes(overlay))
    written["misclassified_dir"] = "misclassified"
    return written


def _heatmap(values: torch.Tensor) -> Image.Image:
    return Image.fromarray(render.heatmap_rgb(values))


def gallery_items(evaluation: Evaluation, test_data: ImageDataset) -> list[render.GalleryItem]:
    return [
        render.GalleryItem(
            image=test_data.images[item.index],
            cam=item.cam,
            true_label=item.true_label,
            predicted_label=item.predicted_label,
            confidence=item.confidence,
            distance_to_true=item.distance_to_true["l1"],
            distance_to_predicted=item.distance_to_predicted["l1"],
            index=item.index,
        )
        for item in evaluation.misclassified
    ]
