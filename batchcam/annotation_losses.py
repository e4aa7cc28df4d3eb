"""Losses that use annotations: where an explanation must *not* look (a decoy patch, background).

These are the baselines that tell how much of the possible gain the annotation-free Batch-CAM
losses get. ``masks`` is a float ``B×H×W`` tensor, 1 on the pixels to keep explanations off.

- RRR (Ross, Hughes & Doshi-Velez 2017, "Right for the Right Reasons"): the squared input gradient
  of the summed log-probabilities inside the mask.
- The same penalty on the differentiable Grad-CAM (GradMask / "RRR-G" style): squared CAM inside it.
- The energy loss (Rao et al. 2023, "Studying How to Efficiently and Effectively Guide Models with
  Explanations"): the share of the map's positive mass inside the mask (1 − energy inside the box).

Each is summed over an image's pixels and averaged over the batch, so λ does not depend on the
batch size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

ENERGY_EPS = 1e-8  # an all-zero map puts no energy anywhere: a loss of 0, not 0/0


def input_gradients_of_log_probabilities(logits: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """∂ Σ_k log p_k / ∂ inputs (B×C×H×W), differentiable (``create_graph``): RRR's explanation."""
    log_probabilities = F.log_softmax(logits.float(), dim=1)
    (gradients,) = torch.autograd.grad(log_probabilities.sum(), inputs, create_graph=True)
    return gradients


def rrr_penalty(input_gradients: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    return (masks[:, None] * input_gradients).pow(2).flatten(1).sum(dim=1).mean()


def map_mask_penalty(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """RRR's penalty on explanation maps (B×H×W) instead of input gradients."""
    return (masks * maps).pow(2).flatten(1).sum(dim=1).mean()


def energy_loss(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    positive = maps.clamp(min=0).flatten(1)
    inside = (positive * masks.flatten(1)).sum(dim=1)
    return (inside / (positive.sum(dim=1) + ENERGY_EPS)).mean()
