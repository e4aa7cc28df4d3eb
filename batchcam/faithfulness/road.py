"""ROAD (Rong et al. 2022): remove and debias, with noisy linear imputation instead of a flat baseline.

Plain deletion leaves holes that a model never saw in training, so part of the confidence it loses
comes from the holes' shape, not from the evidence removed. ROAD fills removed pixels from their
neighbours (``imputation.impute``), which hides where the removed pixels were.

- MoRF (most relevant first): a faithful map makes the probability fall fast — lower is better.
- LeRF (least relevant first): removing what a faithful map calls irrelevant changes little — higher
  is better.
Each curve is scored at the same removal shares; its summary is the mean over those shares, and the
combined score ``(LeRF − MoRF) / 2`` (pytorch-grad-cam's ``ROADCombined``) is higher for better maps.
Every share of every image is imputed in one joint solve and scored in a few forward passes.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from batchcam.errors import ConfigError
from batchcam.faithfulness.curves import Curves
from batchcam.faithfulness.imputation import DEFAULT_NOISE, impute
from batchcam.faithfulness.ordering import relevance_ranks, removal_counts
from batchcam.faithfulness.scoring import DEFAULT_MAX_BATCH, check_batch, target_probabilities

Order = Literal["morf", "lerf"]
DEFAULT_FRACTIONS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def road(
    model: nn.Module,
    images: torch.Tensor,
    maps: torch.Tensor,
    targets: torch.Tensor,
    *,
    order: Order,
    fractions: tuple[float, ...] = DEFAULT_FRACTIONS,
    noise: float = DEFAULT_NOISE,
    generator: torch.Generator | None = None,
    max_batch: int = DEFAULT_MAX_BATCH,
) -> Curves:
    """Target probability after removing each share of pixels, most (``morf``) or least (``lerf``)
    relevant first, imputed. ``images`` float B×C×H×W, ``maps`` B×H×W, ``targets`` B classes."""
    check_batch(images, maps, targets)
    if order not in ("morf", "lerf"):
        raise ConfigError(f"unknown ROAD order {order!r}; accepted: morf, lerf")
    if not fractions or not all(0.0 < share < 1.0 for share in fractions):
        raise ConfigError(f"ROAD removal shares must lie strictly between 0 and 1, got {list(fractions)}")
    batch = len(images)
    height, width = images.shape[-2:]
    ranks = relevance_ranks(maps if order == "morf" else -maps, generator).view(batch, height, width)
    shares = torch.tensor(fractions)
    # At least one pixel stays, to impute from (a tiny image at 90 % could otherwise lose them all).
    counts = removal_counts(shares, height * width).clamp(max=height * width - 1).to(ranks.device)
    removed = (ranks[None] < counts[:, None, None, None]).flatten(0, 1)  # S·B×H×W, share-major
    imputed = impute(
        images.repeat(len(shares), 1, 1, 1), removed.to(images.device), noise=noise, generator=generator
    )
    scores = target_probabilities(model, imputed, targets.repeat(len(shares)), max_batch)
    return Curves(shares, scores.view(len(shares), batch).T.cpu())
