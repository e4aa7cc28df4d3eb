"""Distances between maps in [0, 1]: L1, L2 (mean squared) and SSIM (as 1 − SSIM)."""

from __future__ import annotations

import torch
from torchmetrics.functional.image import structural_similarity_index_measure

from batchcam.errors import ConfigError
from batchcam.spec.names import Metric, check_metric


def distance(a: torch.Tensor, b: torch.Tensor, metric: Metric) -> torch.Tensor:
    """Per-pair distance of two N×H×W stacks of maps → N values (differentiable).

    SSIM uses torchmetrics' Gaussian window (σ = 1.5, 11×11) with data range 1.
    """
    check_metric(metric)
    if a.shape != b.shape or a.ndim != 3:
        raise ConfigError(
            f"distance needs two N×H×W tensors of one shape, got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    if metric == "l1":
        return (a - b).abs().flatten(1).mean(dim=1)
    if metric == "l2":
        return (a - b).pow(2).flatten(1).mean(dim=1)
    if metric == "ssim":
        return 1.0 - ssim_per_map(a, b)
    raise AssertionError(f"check_metric accepted {metric!r} but distance has no branch for it")


def ssim_per_map(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """torchmetrics' SSIM of each pair of maps in two N×H×W stacks → N values.

    The N maps go in as the N channels of one image, not as N one-channel images: torchmetrics then
    filters them with one depthwise (grouped) convolution, which oneDNN runs about 10× faster forward
    (far more backward) than N single-channel convolutions, with identical values and gradients
    (tests/test_losses.py). Each channel's SSIM map is independent of the others, so its mean is that
    pair's SSIM.
    """
    _, full = structural_similarity_index_measure(
        a.unsqueeze(0), b.unsqueeze(0), data_range=1.0, return_full_image=True
    )
    return full[0].mean(dim=(-2, -1))
