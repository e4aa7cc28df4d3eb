"""Input-space attributions, batched: input gradients, SmoothGrad and Integrated Gradients.

A CAM lives on the target layer's grid (7×7 for ``simple_cnn``, 4×4 for ``resnet18`` at 28×28), too
coarse to say whether a 4×4 decoy patch is used. Attributions on the input pixels can. Each function
returns float B×C×H×W attributions of the target-class *logit* (as Captum attributes a model's
output), computed with one ``torch.autograd.grad`` call per ``max_batch`` images; the model's modes
are set to eval and restored.
"""

from __future__ import annotations

import torch
from torch import nn

from batchcam.errors import ConfigError
from batchcam.modes import evaluating

DEFAULT_MAX_BATCH = 256  # larger batches were slower per image on a 2-core CPU (benchmarks)


def input_gradients(model: nn.Module, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """∂ logit_target / ∂ input (Simonyan et al. 2014)."""
    return _gradients(model, images, targets)


def smoothgrad(
    model: nn.Module,
    images: torch.Tensor,
    targets: torch.Tensor,
    *,
    samples: int = 16,
    sigma: float = 0.15,
    generator: torch.Generator | None = None,
    max_batch: int = DEFAULT_MAX_BATCH,
) -> torch.Tensor:
    """Input gradients averaged over ``samples`` noisy copies (Smilkov et al. 2017); ``sigma`` is the
    noise's standard deviation relative to each image's value range."""
    if samples < 1:
        raise ConfigError(f"SmoothGrad needs at least one sample, got {samples}")
    spread = (images.flatten(1).amax(dim=1) - images.flatten(1).amin(dim=1)).view(-1, 1, 1, 1)
    noise = torch.randn((samples, *images.shape), generator=generator).to(images.device, images.dtype)
    noisy = (images[None] + sigma * spread[None] * noise).flatten(0, 1)
    gradients = _gradients(model, noisy, targets.repeat(samples), max_batch)
    return gradients.view(samples, *images.shape).mean(dim=0)


def integrated_gradients(
    model: nn.Module,
    images: torch.Tensor,
    targets: torch.Tensor,
    *,
    steps: int = 32,
    baselines: torch.Tensor | None = None,
    max_batch: int = DEFAULT_MAX_BATCH,
) -> torch.Tensor:
    """(x − x₀) times the mean gradient along the straight path from the baseline x₀ (default black)
    to x (Sundararajan et al. 2017), midpoint Riemann sum (Captum's ``riemann_middle``)."""
    if steps < 1:
        raise ConfigError(f"Integrated Gradients needs at least one step, got {steps}")
    start = torch.zeros_like(images) if baselines is None else baselines
    alphas = ((torch.arange(steps, dtype=images.dtype) + 0.5) / steps).to(images.device)
    path = (start[None] + alphas.view(-1, 1, 1, 1, 1) * (images - start)[None]).flatten(0, 1)
    gradients = _gradients(model, path, targets.repeat(steps), max_batch)
    return (images - start) * gradients.view(steps, *images.shape).mean(dim=0)


def _gradients(
    model: nn.Module, images: torch.Tensor, targets: torch.Tensor, max_batch: int = DEFAULT_MAX_BATCH
) -> torch.Tensor:
    if images.ndim != 4 or not images.is_floating_point() or targets.shape != (len(images),):
        raise ConfigError(
            f"attributions need float B×C×H×W images and B targets, got {images.dtype} "
            f"{tuple(images.shape)} and {tuple(targets.shape)}"
        )
    parts = []
    with evaluating(model), torch.enable_grad():
        for start in range(0, len(images), max_batch):
            inputs = images[start : start + max_batch].detach().requires_grad_(True)
            logits = model(inputs)
            chosen = targets[start : start + max_batch].to(logits.device).view(-1, 1)
            (gradient,) = torch.autograd.grad(logits.gather(1, chosen).sum(), inputs)
            parts.append(gradient)
    return torch.cat(parts)
