"""Deletion and insertion (Petsiuk et al. 2018, RISE): how fast confidence falls or rises along a map.

Deletion replaces pixels with a baseline, most relevant first; a faithful map makes the target-class
probability fall fast (low area under the curve is better). Insertion starts from the baseline and
puts pixels back, most relevant first; a faithful map makes it rise fast (high area is better).
Every step of a whole batch is scored in a few forward passes (``max_batch`` images each).

Two references measured on the same images make a score readable: a random map (pixels in random
order) and a uniform map, which ranks no pixel above another and so fades the whole image toward the
baseline in the same number of steps.
"""

from __future__ import annotations

from typing import Literal

import torch
import torchvision.transforms.functional as TF
from torch import nn

from batchcam.errors import ConfigError
from batchcam.faithfulness.curves import Curves
from batchcam.faithfulness.ordering import relevance_ranks, removal_counts
from batchcam.faithfulness.scoring import DEFAULT_MAX_BATCH, check_batch, steps_per_pass, target_probabilities

Baseline = Literal["zero", "blur", "mean"]
BASELINES: tuple[Baseline, ...] = ("zero", "blur", "mean")
DEFAULT_STEPS = 20
# RISE's insertion baseline: a Gaussian blur with an 11-pixel kernel and σ = 5.
BLUR_KERNEL, BLUR_SIGMA = 11, 5.0


def baseline_images(images: torch.Tensor, baseline: Baseline) -> torch.Tensor:
    """What a removed pixel becomes: black, the image blurred (RISE), or the image's channel means."""
    if baseline == "zero":
        return torch.zeros_like(images)
    if baseline == "blur":
        kernel = min(BLUR_KERNEL, _largest_odd(min(images.shape[-2:])))
        return TF.gaussian_blur(images, [kernel, kernel], [BLUR_SIGMA, BLUR_SIGMA])
    if baseline == "mean":
        return images.mean(dim=(2, 3), keepdim=True).expand_as(images).clone()
    raise ConfigError(f"unknown baseline {baseline!r}; accepted: {', '.join(BASELINES)}")


def deletion(
    model: nn.Module,
    images: torch.Tensor,
    maps: torch.Tensor,
    targets: torch.Tensor,
    *,
    steps: int = DEFAULT_STEPS,
    baseline: Baseline = "zero",
    generator: torch.Generator | None = None,
    max_batch: int = DEFAULT_MAX_BATCH,
) -> Curves:
    """Target probability as the most relevant pixels are replaced by the baseline (lower AUC: better).

    ``images`` float B×C×H×W as the model takes them, ``maps`` B×H×W, ``targets`` B class indices.
    """
    _check(images, maps, targets, steps)
    return _walk(model, images, baseline_images(images, baseline), maps, targets, steps, generator, max_batch)


def insertion(
    model: nn.Module,
    images: torch.Tensor,
    maps: torch.Tensor,
    targets: torch.Tensor,
    *,
    steps: int = DEFAULT_STEPS,
    baseline: Baseline = "blur",
    generator: torch.Generator | None = None,
    max_batch: int = DEFAULT_MAX_BATCH,
) -> Curves:
    """Target probability as the most relevant pixels are put back on the baseline (higher AUC: better)."""
    _check(images, maps, targets, steps)
    return _walk(model, baseline_images(images, baseline), images, maps, targets, steps, generator, max_batch)


def fade(
    model: nn.Module,
    images: torch.Tensor,
    targets: torch.Tensor,
    *,
    inserting: bool,
    steps: int = DEFAULT_STEPS,
    baseline: Baseline = "zero",
    max_batch: int = DEFAULT_MAX_BATCH,
) -> Curves:
    """The uniform-map reference: every pixel moves toward (deletion) or from (insertion) the baseline
    by 1/steps per step, so the curve has the same points as a map's but favours no pixel."""
    if steps < 1:
        raise ConfigError(f"steps must be at least 1, got {steps}")
    base = baseline_images(images, baseline)
    start, end = (base, images) if inserting else (images, base)
    fractions = torch.linspace(0.0, 1.0, steps + 1)
    per_pass = steps_per_pass(len(images), steps + 1, max_batch)
    scores = []
    for first in range(0, steps + 1, per_pass):
        weights = fractions[first : first + per_pass].to(images.device, images.dtype)[
            :, None, None, None, None
        ]
        blended = (start + weights * (end - start)).flatten(0, 1)
        scores.append(target_probabilities(model, blended, targets.repeat(len(weights)), max_batch))
    return Curves(fractions, torch.cat(scores).view(steps + 1, len(images)).T.cpu())


def _walk(
    model: nn.Module,
    start: torch.Tensor,
    end: torch.Tensor,
    maps: torch.Tensor,
    targets: torch.Tensor,
    steps: int,
    generator: torch.Generator | None,
    max_batch: int,
) -> Curves:
    """Scores of ``start`` with its first ``k/steps`` share of pixels (by map rank) taken from ``end``."""
    batch = len(start)
    height, width = start.shape[-2:]
    ranks = relevance_ranks(maps, generator).view(batch, 1, height, width).to(start.device)
    fractions = torch.linspace(0.0, 1.0, steps + 1)
    counts = removal_counts(fractions, height * width).to(start.device)
    per_pass = steps_per_pass(batch, steps + 1, max_batch)
    scores = []
    for first in range(0, steps + 1, per_pass):
        taken = ranks[None] < counts[first : first + per_pass, None, None, None, None]  # S×B×1×H×W
        perturbed = torch.where(taken, end[None], start[None]).flatten(0, 1)
        scores.append(target_probabilities(model, perturbed, targets.repeat(len(taken)), max_batch))
    return Curves(fractions, torch.cat(scores).view(steps + 1, batch).T.cpu())


def _check(images: torch.Tensor, maps: torch.Tensor, targets: torch.Tensor, steps: int) -> None:
    check_batch(images, maps, targets)
    if steps < 1:
        raise ConfigError(f"steps must be at least 1, got {steps}")


def _largest_odd(limit: int) -> int:
    return limit if limit % 2 else limit - 1
