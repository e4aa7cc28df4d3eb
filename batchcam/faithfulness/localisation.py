"""Does a map point at the evidence? Pointing game and energy-based pointing game, where masks exist.

Masks are the ground truth a dataset carries: the ``shapes`` objects, a decoy patch, or masks
uploaded with a dataset. An image whose mask is empty has no answer (NaN).
"""

from __future__ import annotations

import torch

from batchcam.errors import ConfigError


def pointing_game(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """1.0 where the map's maximum lies inside the mask, else 0.0 (Zhang et al. 2018, no tolerance
    margin). Tied maxima point at one of them at random, so the answer is the share of them inside
    the mask: an all-zero CAM scores the mask's area, as a random map would, not a hit. (Quantus's
    ``PointingGame`` counts a hit if any tied maximum is inside; the two agree without ties.)"""
    _check(maps, masks)
    flat, inside = maps.detach().flatten(1), masks.flatten(1)
    peaks = flat == flat.max(dim=1, keepdim=True).values
    hits = (peaks & inside).sum(dim=1) / peaks.sum(dim=1)
    return torch.where(inside.any(dim=1), hits.float(), torch.nan)


def energy_pointing_game(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """The share of each map's mass inside the mask (Wang et al. 2020, Score-CAM; Quantus's
    ``RelevanceMassAccuracy``), in [0, 1]. An all-zero map puts no mass anywhere: 0."""
    _check(maps, masks)
    flat, inside = maps.detach().flatten(1).clamp(min=0), masks.flatten(1)
    total = flat.sum(dim=1)
    share = (flat * inside).sum(dim=1) / total.clamp(min=1e-12)
    return torch.where(inside.any(dim=1), share, torch.nan)


def mask_share(attributions: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """The share of absolute attribution inside the mask; B×C×H×W attributions are summed over
    channels first. For input-space attributions, which can resolve a 4×4 patch that a 4×4 CAM cannot."""
    magnitude = attributions.detach().abs()
    if magnitude.ndim == 4:
        magnitude = magnitude.sum(dim=1)
    return energy_pointing_game(magnitude, masks)


def _check(maps: torch.Tensor, masks: torch.Tensor) -> None:
    if maps.ndim != 3 or masks.shape != maps.shape or masks.dtype != torch.bool:
        raise ConfigError(
            f"maps (B×H×W) and masks (bool, same shape) must match, got {tuple(maps.shape)} and "
            f"{masks.dtype} {tuple(masks.shape)}"
        )
