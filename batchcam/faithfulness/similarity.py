"""How alike two stacks of maps are: Spearman rank correlation (ties averaged) and SSIM."""

from __future__ import annotations

import torch

from batchcam.metrics import distance


def average_ranks(values: torch.Tensor) -> torch.Tensor:
    """Ranks along the last dimension of a B×N tensor, tied values sharing their mean rank
    (scipy's ``rankdata(method="average")``, 0-based), for a whole batch without a loop."""
    ordered, order = values.sort(dim=1, stable=True)
    count, size = ordered.shape
    starts = torch.ones_like(ordered, dtype=torch.bool)
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    group = starts.long().cumsum(dim=1) - 1  # tie group of each sorted position
    positions = torch.arange(size, dtype=torch.float64, device=values.device).expand(count, size)
    totals = torch.zeros(count, size, dtype=torch.float64, device=values.device).scatter_add_(
        1, group, positions
    )
    sizes = torch.zeros_like(totals).scatter_add_(1, group, torch.ones_like(positions))
    mean_rank = (totals / sizes.clamp(min=1)).gather(1, group)
    return torch.empty_like(mean_rank).scatter_(1, order, mean_rank)


def spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per pair of B×H×W maps, Spearman's ρ; NaN where either map is constant (no ranking to compare)."""
    first, second = average_ranks(a.detach().flatten(1)), average_ranks(b.detach().flatten(1))
    first = first - first.mean(dim=1, keepdim=True)
    second = second - second.mean(dim=1, keepdim=True)
    scale = (first.pow(2).sum(dim=1) * second.pow(2).sum(dim=1)).sqrt()
    rho = (first * second).sum(dim=1) / scale.clamp(min=1e-30)
    return torch.where(scale > 0, rho, torch.nan).float()


def ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per pair of B×H×W maps in [0, 1], SSIM (torchmetrics, Gaussian window σ = 1.5, data range 1)."""
    return 1.0 - distance(a.detach().float(), b.detach().float(), "ssim")
