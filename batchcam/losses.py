"""The two CAM-to-prototype losses of Batch-CAM and the modes that combine them with cross-entropy.

Besides the paper's modes, three modes use annotations instead of prototypes (``rrr``,
``rrr-gradcam``, ``energy``; see ``batchcam.annotation_losses``): the ceiling annotations buy.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from batchcam.annotation_losses import (
    energy_loss,
    input_gradients_of_log_probabilities,
    map_mask_penalty,
    rrr_penalty,
)
from batchcam.metrics import distance
from batchcam.spec.names import Metric, Mode, check_metric, check_mode, uses_annotations, uses_cams


class PrototypeLoss(nn.Module):
    """Per image: distance between its CAM (for its true class) and that class's prototype, averaged."""

    prototypes: torch.Tensor

    def __init__(self, prototypes: torch.Tensor, metric: Metric = "l1") -> None:
        super().__init__()
        self.metric = check_metric(metric)
        self.register_buffer("prototypes", prototypes, persistent=False)

    def forward(self, cams: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return distance(cams, self.prototypes[labels].to(cams.dtype), self.metric).mean()


class BatchCAMLoss(nn.Module):
    """Per batch: for each class present, the mean CAM of its images vs the class prototype.

    The per-class distances are averaged over the classes present in the batch. The mean of the
    (per-image normalised) CAMs is compared as it is, not normalised again; the CAM-prototype
    distance that evaluation reports re-normalises it to [0, 1] first.
    """

    prototypes: torch.Tensor

    def __init__(self, prototypes: torch.Tensor, metric: Metric = "l1") -> None:
        super().__init__()
        self.metric = check_metric(metric)
        self.register_buffer("prototypes", prototypes, persistent=False)

    def forward(self, cams: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        num_classes = int(self.prototypes.shape[0])
        membership = F.one_hot(labels, num_classes).to(cams.dtype)  # B×C
        counts = membership.sum(dim=0)
        present = counts > 0
        sums = membership.T @ cams.flatten(1)  # C×(H·W)
        mean_cams = (sums[present] / counts[present, None]).view(-1, *cams.shape[1:])
        return distance(mean_cams, self.prototypes[present].to(cams.dtype), self.metric).mean()


@dataclass(frozen=True)
class LossTerms:
    """The parts of one step's loss (``total`` is what is minimised)."""

    total: torch.Tensor
    cross_entropy: torch.Tensor
    prototype: torch.Tensor | None
    batchcam: torch.Tensor | None
    annotation: torch.Tensor | None = None


class BatchCamObjective(nn.Module):
    """Cross-entropy + λ_p · PrototypeLoss + λ_b · BatchCAMLoss, the terms chosen by ``mode``;
    or, in an annotation mode, cross-entropy + λ_a · that mode's penalty inside the masks.

    ``prototypes`` are the training targets (the class prototypes, or a control's targets).
    """

    def __init__(
        self,
        prototypes: torch.Tensor,
        mode: Mode,
        metric: Metric = "l1",
        lambda_prototype: float = 1.0,
        lambda_batchcam: float = 1.0,
        lambda_annotation: float = 1.0,
    ) -> None:
        super().__init__()
        self.mode = check_mode(mode)
        self.prototype_loss = PrototypeLoss(prototypes, metric)
        self.batchcam_loss = BatchCAMLoss(prototypes, metric)
        self.lambda_prototype = lambda_prototype
        self.lambda_batchcam = lambda_batchcam
        self.lambda_annotation = lambda_annotation

    @property
    def needs_cams(self) -> bool:
        return uses_cams(self.mode)

    @property
    def needs_masks(self) -> bool:
        return uses_annotations(self.mode)

    @property
    def needs_input_gradients(self) -> bool:
        """RRR differentiates the log-probabilities w.r.t. the inputs: they must require grad."""
        return self.mode == "rrr"

    def forward(
        self,
        logits: torch.Tensor,
        cams: torch.Tensor | None,
        labels: torch.Tensor,
        masks: torch.Tensor | None = None,
        inputs: torch.Tensor | None = None,
    ) -> LossTerms:
        if self.needs_cams and cams is None:
            raise ValueError(f"mode {self.mode!r} needs the batch's CAMs")
        if self.needs_masks and masks is None:
            raise ValueError(f"mode {self.mode!r} needs the batch's annotation masks")
        cross_entropy = F.cross_entropy(logits.float(), labels)
        total = cross_entropy
        prototype = batchcam = annotation = None
        if self.mode in ("prototype", "both"):
            prototype = self.prototype_loss(cams, labels)  # type: ignore[arg-type]
            total = total + self.lambda_prototype * prototype
        if self.mode in ("batchcam", "both"):
            batchcam = self.batchcam_loss(cams, labels)  # type: ignore[arg-type]
            total = total + self.lambda_batchcam * batchcam
        if self.needs_masks:
            annotation = self._annotation_penalty(logits, cams, masks.to(logits.device).float(), inputs)  # type: ignore[union-attr]
            total = total + self.lambda_annotation * annotation
        return LossTerms(total, cross_entropy, prototype, batchcam, annotation)

    def _annotation_penalty(
        self,
        logits: torch.Tensor,
        cams: torch.Tensor | None,
        masks: torch.Tensor,
        inputs: torch.Tensor | None,
    ) -> torch.Tensor:
        if self.mode == "rrr":
            if inputs is None or not inputs.requires_grad:
                raise ValueError("mode 'rrr' needs the batch's inputs, with requires_grad set")
            return rrr_penalty(input_gradients_of_log_probabilities(logits, inputs), masks)
        assert cams is not None  # checked in forward
        if self.mode == "rrr-gradcam":
            return map_mask_penalty(cams, masks)
        return energy_loss(cams, masks)
