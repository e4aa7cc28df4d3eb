"""Evaluating a model on a test split: accuracy, CAM prototypes and where the CAMs put their mass."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch

from batchcam.cam.extractor import CamExtractor
from batchcam.data.dataset import ImageDataset
from batchcam.device import Execution
from batchcam.metrics import distance
from batchcam.modes import evaluating
from batchcam.spec.names import METRICS


@dataclass(frozen=True)
class Misclassification:
    """One wrong prediction with the CAM for the *predicted* class (what the model acted on)."""

    index: int
    true_label: int
    predicted_label: int
    confidence: float
    cam: torch.Tensor  # H×W in [0, 1]
    distance_to_true: dict[str, float]
    distance_to_predicted: dict[str, float]


@dataclass(frozen=True)
class Evaluation:
    """Results on one split. CAM prototypes use each image's CAM for its *true* class.

    A CAM prototype is the mean CAM of a class, re-normalised to [0, 1] like a single CAM before
    it is compared with the class prototype: ``distances`` compare *shapes*, as the CAM prototype
    pictures show them. (``BatchCAMLoss`` compares the mean of the per-image-normalised CAMs
    without that second normalisation, so the two numbers differ.)

    ``per_class_accuracy`` is None for a class without test images (JSON null), not 0.

    ``object_energy`` / ``decoy_energy``: mean share of CAM mass inside the object mask / on the
    decoy patch (the energy-based pointing game), where the dataset has such masks.
    """

    num_images: int
    accuracy: float
    per_class_accuracy: list[float | None]
    confusion: torch.Tensor  # C×C, rows = true class, columns = predicted class
    cam_prototypes: torch.Tensor  # C×H×W, normalised like the CAMs
    distances: dict[str, list[float]]  # metric → per-class distance CAM prototype ↔ class prototype
    misclassified_count: int
    misclassified: list[Misclassification] = field(default_factory=list)
    object_energy: float | None = None
    decoy_energy: float | None = None
    seconds_per_image: float = 0.0

    def mean_distance(self, metric: str) -> float:
        """Mean over classes that have test images (an empty class has no CAM prototype)."""
        present = self.confusion.sum(dim=1) > 0
        values = torch.tensor(self.distances[metric])[present]
        return float(values.mean()) if len(values) else float("nan")

    def summary(self) -> dict[str, Any]:
        return {
            "num_images": self.num_images,
            "accuracy": self.accuracy,
            "per_class_accuracy": self.per_class_accuracy,
            "confusion_matrix": self.confusion.tolist(),
            "cam_prototype_distance": {
                m: {"per_class": self.distances[m], "mean": self.mean_distance(m)} for m in METRICS
            },
            "misclassified_count": self.misclassified_count,
            "object_energy": self.object_energy,
            "decoy_energy": self.decoy_energy,
            "seconds_per_image": self.seconds_per_image,
        }


@dataclass
class _Totals:
    confusion: torch.Tensor
    cam_sums: torch.Tensor
    object_energy: float = 0.0
    decoy_energy: float = 0.0
    wrong: list[tuple[int, int, float]] = field(default_factory=list)  # (index, predicted, confidence)


def evaluate(
    extractor: CamExtractor,
    dataset: ImageDataset,
    prototypes: torch.Tensor,
    execution: Execution,
    *,
    batch_size: int = 256,
    gallery_size: int = 32,
) -> Evaluation:
    """One pass over ``dataset`` in eval mode (the model's modes are restored afterwards)."""
    prototypes = prototypes.float().cpu()  # compared with CAMs gathered on the CPU
    num_classes, (height, width) = dataset.num_classes, dataset.image_size
    totals = _Totals(
        confusion=torch.zeros(num_classes, num_classes, dtype=torch.int64),
        cam_sums=torch.zeros(num_classes, height, width, dtype=torch.float64),
    )
    started = time.perf_counter()
    with evaluating(extractor.model):
        for start in range(0, len(dataset), batch_size):
            _accumulate(extractor, dataset, slice(start, start + batch_size), execution, totals)
        seconds_per_image = (time.perf_counter() - started) / max(1, len(dataset))
        gallery = _misclassifications(extractor, dataset, prototypes, execution, totals.wrong[:gallery_size])
    return _finish(dataset, prototypes, totals, gallery, seconds_per_image, extractor)


def _accumulate(
    extractor: CamExtractor, dataset: ImageDataset, rows: slice, execution: Execution, totals: _Totals
) -> None:
    images_u8, labels = dataset[rows]
    images = execution.model_input(images_u8)
    with execution.autocast():
        activations, logits = extractor.forward(images, differentiable=False)
        cams = extractor.maps(activations, logits, labels.to(execution.device), dataset.image_size).cpu()
    probabilities = torch.softmax(logits.detach().float(), dim=1).cpu()
    confidence, predicted = probabilities.max(dim=1)
    num_classes = dataset.num_classes
    totals.confusion += torch.bincount(labels * num_classes + predicted, minlength=num_classes**2).view(
        num_classes, num_classes
    )
    totals.cam_sums.index_add_(0, labels, cams.double())
    mass = cams.sum(dim=(1, 2)).clamp(min=1e-12)
    if dataset.object_masks is not None:
        totals.object_energy += float(((cams * dataset.object_masks[rows]).sum(dim=(1, 2)) / mass).sum())
    if dataset.decoy_masks is not None:
        totals.decoy_energy += float(((cams * dataset.decoy_masks[rows]).sum(dim=(1, 2)) / mass).sum())
    first = rows.start or 0
    for offset in torch.nonzero(predicted != labels).flatten().tolist():
        totals.wrong.append((first + offset, int(predicted[offset]), float(confidence[offset])))


def _misclassifications(
    extractor: CamExtractor,
    dataset: ImageDataset,
    prototypes: torch.Tensor,
    execution: Execution,
    wrong: list[tuple[int, int, float]],
) -> list[Misclassification]:
    if not wrong:
        return []
    indices = torch.tensor([index for index, _, _ in wrong])
    predicted = torch.tensor([label for _, label, _ in wrong])
    images_u8, labels = dataset[indices]
    with execution.autocast():
        cams = extractor(execution.model_input(images_u8), predicted.to(execution.device)).maps.cpu()
    to_true = {m: distance(cams, prototypes[labels], m).tolist() for m in METRICS}
    to_predicted = {m: distance(cams, prototypes[predicted], m).tolist() for m in METRICS}
    return [
        Misclassification(
            index=index,
            true_label=int(labels[i]),
            predicted_label=label,
            confidence=confidence,
            cam=cams[i],
            distance_to_true={m: to_true[m][i] for m in METRICS},
            distance_to_predicted={m: to_predicted[m][i] for m in METRICS},
        )
        for i, (index, label, confidence) in enumerate(wrong)
    ]


def _finish(
    dataset: ImageDataset,
    prototypes: torch.Tensor,
    totals: _Totals,
    gallery: list[Misclassification],
    seconds_per_image: float,
    extractor: CamExtractor,
) -> Evaluation:
    counts = totals.confusion.sum(dim=1)
    mean_cams = (totals.cam_sums / counts.clamp(min=1)[:, None, None]).float()
    # Re-normalised to [0, 1], like one CAM: the reported distances compare shapes (see Evaluation).
    cam_prototypes = extractor.postprocess(mean_cams, dataset.image_size)
    correct = totals.confusion.diag()
    num_images = len(dataset)
    return Evaluation(
        num_images=num_images,
        accuracy=float(correct.sum()) / max(1, num_images),
        per_class_accuracy=[
            right / total if total else None
            for right, total in zip(correct.tolist(), counts.tolist(), strict=True)
        ],
        confusion=totals.confusion,
        cam_prototypes=cam_prototypes,
        distances={m: distance(cam_prototypes, prototypes, m).tolist() for m in METRICS},
        misclassified_count=len(totals.wrong),
        misclassified=gallery,
        object_energy=None if dataset.object_masks is None else totals.object_energy / max(1, num_images),
        decoy_energy=None if dataset.decoy_masks is None else totals.decoy_energy / max(1, num_images),
        seconds_per_image=seconds_per_image,
    )
