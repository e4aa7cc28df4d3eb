"""Noisy linear imputation (Rong et al. 2022, ROAD), solved for a whole batch at once.

A removed pixel takes the weighted mean of its eight neighbours (1/6 for the four beside it, 1/12
for the four diagonal ones), where neighbours may themselves be removed: one linear system per
image. The system is symmetric positive definite whenever an image keeps at least one pixel, so
preconditioned conjugate gradients solve every image of the batch together, on the batch's device,
with one eight-neighbour stencil (shifted adds, several times faster than a one-channel conv2d on
a CPU) per iteration. The reference implementation (ROAD's authors', copied into
pytorch-grad-cam) builds and factorises a sparse matrix per image; the answers agree to solver
tolerance (tests/test_faithfulness.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from batchcam.errors import ConfigError

DEFAULT_NOISE = 0.01  # standard deviation of the noise added to imputed pixels (ROAD's default)
_SIDE, _DIAGONAL = 1 / 6, 1 / 12
_TOLERANCE = 1e-5  # relative residual; far below the imputation noise


def neighbour_sums(values: torch.Tensor) -> torch.Tensor:
    """Σ weight × neighbour for every pixel of N×1×H×W ``values``; outside the image counts as 0."""
    height, width = values.shape[-2:]
    padded = F.pad(values, (1, 1, 1, 1))
    side = (
        padded[..., 0:height, 1 : width + 1]
        + padded[..., 2 : height + 2, 1 : width + 1]
        + padded[..., 1 : height + 1, 0:width]
        + padded[..., 1 : height + 1, 2 : width + 2]
    )
    diagonal = (
        padded[..., 0:height, 0:width]
        + padded[..., 0:height, 2 : width + 2]
        + padded[..., 2 : height + 2, 0:width]
        + padded[..., 2 : height + 2, 2 : width + 2]
    )
    return side * _SIDE + diagonal * _DIAGONAL


def impute(
    images: torch.Tensor,
    removed: torch.Tensor,
    *,
    noise: float = DEFAULT_NOISE,
    generator: torch.Generator | None = None,
    max_iterations: int | None = None,
) -> torch.Tensor:
    """``images`` float B×C×H×W, ``removed`` bool B×H×W → the images with removed pixels imputed.

    Each removed pixel is set to the solution of the neighbour-mean system, plus Gaussian noise of
    standard deviation ``noise`` (0: none), drawn from ``generator`` on the CPU.
    """
    if removed.shape != (images.shape[0], *images.shape[2:]) or removed.dtype != torch.bool:
        raise ConfigError(f"removed must be bool B×H×W for images {tuple(images.shape)}")
    if bool(removed.flatten(1).all(dim=1).any()):
        raise ConfigError("every image must keep at least one pixel: there is nothing to impute from")
    batch, channels, height, width = images.shape
    work = torch.float32
    unknown = removed.to(work)[:, None].expand(batch, channels, height, width).reshape(-1, 1, height, width)
    known_values = images.to(work).reshape(-1, 1, height, width) * (1 - unknown)
    solved = _solve(unknown, known_values, max_iterations or 4 * (height + width) + 50)
    filled = known_values + solved * unknown
    if noise > 0:
        filled = filled + noise * unknown * torch.randn(filled.shape, generator=generator, dtype=work).to(
            filled.device
        )
    imputed = filled.view(batch, channels, height, width).to(images.dtype)
    return torch.where(removed[:, None], imputed, images)  # kept pixels exactly as given


def _solve(unknown: torch.Tensor, known_values: torch.Tensor, max_iterations: int) -> torch.Tensor:
    """Jacobi-preconditioned conjugate gradients on ``s⊙x − W∗(x⊙U) = W∗known`` over the unknowns U,
    where ``s`` is each pixel's sum of in-image neighbour weights (smaller at the border)."""
    neighbours = neighbour_sums
    weight_sums = neighbours(torch.ones_like(unknown[:1]))

    def system(values: torch.Tensor) -> torch.Tensor:
        return unknown * (weight_sums * values - neighbours(values * unknown))

    def per_image(values: torch.Tensor) -> torch.Tensor:
        return values.flatten(1).sum(dim=1)[:, None, None, None]

    right = unknown * neighbours(known_values)
    solution = unknown * right / weight_sums  # the one-step Jacobi guess
    residual = right - system(solution)
    direction = residual / weight_sums
    product = per_image(residual * direction)
    stop = _TOLERANCE**2 * per_image(right * right).clamp(min=1e-30)
    for _ in range(max_iterations):
        if bool((per_image(residual * residual) <= stop).all()):
            break
        image_of_direction = system(direction)
        curvature = per_image(direction * image_of_direction)
        step = torch.where(curvature > 0, product / curvature.clamp(min=1e-30), 0.0)
        solution = solution + step * direction
        residual = residual - step * image_of_direction
        preconditioned = residual / weight_sums
        updated = per_image(residual * preconditioned)
        direction = (
            preconditioned + torch.where(product > 0, updated / product.clamp(min=1e-30), 0.0) * direction
        )
        product = updated
    return solution
