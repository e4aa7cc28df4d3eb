"""Per-image faithfulness scores for explanations: each map against a random map on the same image.

The names below are what ``batchcam explain --metrics`` and the explanations API accept. Every score
comes with the score of a random map for the same image and target (same steps, same baseline), so
it reads as "better than random by x" without a second request.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from batchcam.faithfulness.curves import Curves
from batchcam.faithfulness.ordering import random_maps
from batchcam.faithfulness.perturbation import DEFAULT_STEPS, deletion, insertion
from batchcam.faithfulness.road import road
from batchcam.spec.image_metrics import IMAGE_METRIC_INFO, check_image_metrics


def score_images(
    model: nn.Module,
    images: torch.Tensor,
    maps: torch.Tensor,
    targets: torch.Tensor,
    metrics: Sequence[str],
    *,
    seed: int = 0,
    steps: int = DEFAULT_STEPS,
) -> list[dict[str, dict[str, Any]]]:
    """For each image, ``{metric: {"score", "random", "better", "curve"}}`` (float B×C×H×W images as
    the model takes them, B×H×W maps, B targets). Seeded: the same call gives the same numbers."""
    chosen = check_image_metrics(metrics)
    if not chosen:
        return [{} for _ in range(len(images))]
    generator = torch.Generator().manual_seed(seed)
    noise = random_maps(len(images), (images.shape[-2], images.shape[-1]), generator).to(maps.device)
    per_metric: dict[str, tuple[Curves, Curves]] = {}
    for name in chosen:
        run = _RUNS[name]
        per_metric[name] = (
            run(model, images, maps, targets, generator, steps),
            run(model, images, noise, targets, generator, steps),
        )
    return [
        {name: _image_entry(name, mapped, random, row) for name, (mapped, random) in per_metric.items()}
        for row in range(len(images))
    ]


def _image_entry(name: str, mapped: Curves, random: Curves, row: int) -> dict[str, Any]:
    info = IMAGE_METRIC_INFO[name]  # type: ignore[index]
    summarise = Curves.auc if info.summary == "auc" else Curves.mean
    return {
        "score": float(summarise(mapped)[row]),
        "random": float(summarise(random)[row]),
        "better": info.better,
        "curve": {"fractions": mapped.fractions.tolist(), "values": mapped.scores[row].tolist()},
    }


Run = Callable[[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor, torch.Generator, int], Curves]
_RUNS: dict[str, Run] = {
    "deletion": lambda m, x, s, t, g, k: deletion(m, x, s, t, steps=k, generator=g),
    "insertion": lambda m, x, s, t, g, k: insertion(m, x, s, t, steps=k, generator=g),
    "road_morf": lambda m, x, s, t, g, k: road(m, x, s, t, order="morf", generator=g),
    "road_lerf": lambda m, x, s, t, g, k: road(m, x, s, t, order="lerf", generator=g),
}
