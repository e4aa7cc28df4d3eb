"""Ranking pixels by a heatmap, the step every perturbation metric starts from."""

from __future__ import annotations

import torch


def relevance_ranks(maps: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """B×H×W maps → B×(H·W) ranks: 0 for each image's most relevant pixel, H·W − 1 for its least.

    Ties (a CAM after ReLU is often zero over much of the image) are ranked in a random order drawn
    from ``generator``: a tie says nothing about which pixel matters more, so none is favoured, and
    a constant map ranks exactly like a random one.
    """
    flat = maps.detach().flatten(1).float()
    count, size = flat.shape
    shuffle = torch.rand(count, size, generator=generator).argsort(dim=1).to(flat.device)
    most_first = shuffle.gather(1, flat.gather(1, shuffle).argsort(dim=1, descending=True, stable=True))
    ranks = torch.empty_like(most_first)
    positions = torch.arange(size, device=flat.device).expand(count, size)
    return ranks.scatter_(1, most_first, positions)


def random_maps(count: int, size: tuple[int, int], generator: torch.Generator | None = None) -> torch.Tensor:
    """Uniform noise maps: the reference every ordering metric is compared against."""
    return torch.rand(count, *size, generator=generator)


def removal_counts(fractions: torch.Tensor, pixels: int) -> torch.Tensor:
    """How many pixels a share of the image means, rounded to the nearest whole pixel."""
    return torch.round(fractions.double() * pixels).long()
