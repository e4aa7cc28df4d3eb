"""Explaining new images with a trained model: prediction, CAM, distance to the class prototypes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from torch import nn

from batchcam.artifacts import RunFiles
from batchcam.cam.extractor import CamExtractor
from batchcam.data.dataset import as_model_input
from batchcam.device import best_device
from batchcam.errors import ConfigError, DataValidationError
from batchcam.faithfulness.image_scores import score_images
from batchcam.metrics import distance
from batchcam.modes import evaluating
from batchcam.spec.image_metrics import check_image_metrics
from batchcam.spec.model_spec import ModelSpec
from batchcam.spec.names import METRICS
from batchcam.weights import load_model

# ITU-R BT.601 luma, as Pillow's convert("L") uses.
_LUMA = torch.tensor([0.299, 0.587, 0.114])


@dataclass(frozen=True, eq=False)
class Explanation:
    """One image: what the model predicted, which class the CAM explains, and the CAM itself."""

    predicted: int
    probabilities: list[float]
    target: int
    cam: torch.Tensor  # H×W in [0, 1] at the model's input size
    distance_to_predicted: dict[str, float]  # CAM vs the predicted class's prototype
    distance_to_target: dict[str, float]
    # Per requested faithfulness metric: score, random-map reference, direction, curve.
    faithfulness: dict[str, dict[str, Any]] = field(default_factory=dict)


class Explainer:
    """A loaded model with its prototypes, ready to explain batches on the best device."""

    def __init__(
        self,
        model: nn.Module,
        spec: ModelSpec,
        prototypes: torch.Tensor,
        device: torch.device | None = None,
    ) -> None:
        self.device = device or best_device()
        self.model = model.to(self.device).eval()
        self.spec = spec
        self.prototypes = prototypes.float().cpu()
        self._extractors: dict[str, CamExtractor] = {}  # per CAM method; tracing happens once

    @classmethod
    def from_run(cls, run_dir: Path, device: torch.device | None = None) -> Explainer:
        files = RunFiles(run_dir)
        missing = [path.name for path in (files.model, files.prototypes) if not path.exists()]
        if missing:
            raise ConfigError(
                f"{run_dir} is not a finished run: {' and '.join(missing)} "
                f"{'is' if len(missing) == 1 else 'are'} missing"
            )
        model, spec = load_model(files.model)
        return cls(model, spec, _read_prototypes(files), device)

    def conform(self, image: torch.Tensor) -> torch.Tensor:
        """A decoded uint8 C×H×W image → the model's channels and input size (bilinear, antialiased);
        an image already there is returned itself, not a copy."""
        if image.ndim != 3 or image.shape[0] not in (1, 3) or image.dtype != torch.uint8:
            raise ConfigError(
                f"images must be uint8 C×H×W with 1 or 3 channels, got {image.dtype} {tuple(image.shape)}"
            )
        if image.shape[0] == self.spec.in_channels and tuple(image.shape[1:]) == self.spec.input_size:
            return image  # already the model's input: the conversions below would give it back unchanged
        pixels = image.float()
        if pixels.shape[0] == 3 and self.spec.in_channels == 1:
            pixels = (pixels * _LUMA[:, None, None]).sum(dim=0, keepdim=True)
        elif pixels.shape[0] == 1 and self.spec.in_channels == 3:
            pixels = pixels.expand(3, -1, -1)
        if tuple(pixels.shape[1:]) != self.spec.input_size:
            pixels = F.interpolate(pixels[None], size=self.spec.input_size, mode="bilinear", antialias=True)[
                0
            ]
        return pixels.round().clamp(0, 255).to(torch.uint8)

    def explain(
        self,
        images: torch.Tensor,
        targets: list[int | None] | None = None,
        method: str = "gradcam",
        metrics: Sequence[str] = (),
    ) -> list[Explanation]:
        """Explain a uint8 batch (N×C×H×W at the model's input spec); a target of None = predicted.

        ``metrics`` (see ``batchcam.faithfulness.IMAGE_METRICS``) adds per-image faithfulness scores
        of each CAM, measured with the same model on the same image and target.
        """
        expected = (self.spec.in_channels, *self.spec.input_size)
        if images.dtype != torch.uint8 or images.ndim != 4 or tuple(images.shape[1:]) != expected:
            raise ConfigError(
                f"images must be a uint8 N×{expected[0]}×{expected[1]}×{expected[2]} batch (this model's "
                f"input), got {images.dtype} {tuple(images.shape)}; Explainer.conform() brings a decoded "
                "image there"
            )
        _check_targets(targets, len(images), self.spec.num_classes)
        chosen_metrics = check_image_metrics(metrics)
        if method not in self._extractors:
            self._extractors[method] = CamExtractor(self.model, self.spec.target_layer, method)
        extractor = self._extractors[method]
        batch = as_model_input(images.to(self.device))
        with evaluating(self.model):
            activations, logits = extractor.forward(batch, differentiable=False)
            predicted = logits.detach().argmax(dim=1)
            chosen = torch.tensor(
                [
                    p if t is None else t
                    for p, t in zip(predicted.tolist(), targets or [None] * len(images), strict=True)
                ],
                device=self.device,
            )
            cams = extractor.maps(activations, logits, chosen, self.spec.input_size).cpu()
        scores = (
            score_images(self.model, batch, cams.to(self.device), chosen, chosen_metrics)
            if chosen_metrics
            else [{} for _ in range(len(images))]  # the explain hot path pays nothing without metrics
        )
        probabilities = torch.softmax(logits.detach().float(), dim=1).cpu()
        predicted, chosen = predicted.cpu(), chosen.cpu()
        to_predicted = {m: distance(cams, self.prototypes[predicted], m) for m in METRICS}
        same = torch.equal(chosen, predicted)  # the usual case (no targets): one set of distances, not two
        to_target = to_predicted if same else {m: distance(cams, self.prototypes[chosen], m) for m in METRICS}
        # Python numbers, converted once per batch: indexing a tensor per image and number costs more
        # than the model on a small batch.
        predicted_classes, chosen_classes = predicted.tolist(), chosen.tolist()
        predicted_distances = {m: to_predicted[m].tolist() for m in METRICS}
        target_distances = {m: to_target[m].tolist() for m in METRICS}
        return [
            Explanation(
                predicted=predicted_classes[i],
                probabilities=image_probabilities,
                target=chosen_classes[i],
                cam=cams[i],
                distance_to_predicted={m: predicted_distances[m][i] for m in METRICS},
                distance_to_target={m: target_distances[m][i] for m in METRICS},
                faithfulness=scores[i],
            )
            for i, image_probabilities in enumerate(probabilities.tolist())
        ]


def _read_prototypes(files: RunFiles) -> torch.Tensor:
    try:
        prototypes, _ = files.read_prototypes()
    except (SafetensorError, OSError, KeyError) as error:
        raise DataValidationError(
            f"cannot read {files.prototypes}: {error}; it is damaged or not from `batchcam train`",
            code="invalid_weights",
        ) from error
    return prototypes


def _check_targets(targets: list[int | None] | None, count: int, num_classes: int) -> None:
    if targets is None:
        return
    if len(targets) != count:
        raise ConfigError(f"give one target per image ({count}), got {len(targets)}")
    for target in targets:
        if target is not None and not 0 <= target < num_classes:
            raise ConfigError(f"target class {target} is outside [0, {num_classes})", code="invalid_target")
