"""The model's confidence in a target class for many perturbed copies of a batch, in a few passes."""

from __future__ import annotations

import torch
from torch import nn

from batchcam.errors import ConfigError
from batchcam.modes import evaluating

DEFAULT_MAX_BATCH = 256  # larger batches were slower per image on a 2-core CPU (benchmarks)


@torch.no_grad()
def target_probabilities(
    model: nn.Module, images: torch.Tensor, targets: torch.Tensor, max_batch: int = DEFAULT_MAX_BATCH
) -> torch.Tensor:
    """Softmax probability of ``targets[i]`` for ``images[i]`` (float N×C×H×W), in eval mode.

    The images go through the model ``max_batch`` at a time; the model's modes are restored after.
    """
    scores = []
    with evaluating(model):
        for start in range(0, len(images), max_batch):
            logits = model(images[start : start + max_batch]).float()
            chosen = targets[start : start + max_batch].to(logits.device).view(-1, 1)
            scores.append(torch.softmax(logits, dim=1).gather(1, chosen).squeeze(1))
    return torch.cat(scores) if scores else images.new_zeros(0)


def steps_per_pass(batch: int, steps: int, max_batch: int) -> int:
    """How many perturbation steps of a batch fit into one forward pass."""
    return max(1, min(steps, max_batch // max(1, batch)))


def check_batch(images: torch.Tensor, maps: torch.Tensor, targets: torch.Tensor) -> None:
    """A float B×C×H×W batch, B×H×W maps and B target classes, or a ConfigError saying which."""
    if images.ndim != 4 or not images.is_floating_point():
        raise ConfigError(f"images must be a float B×C×H×W batch, got {images.dtype} {tuple(images.shape)}")
    if maps.shape != (images.shape[0], *images.shape[2:]):
        raise ConfigError(
            f"maps must be B×H×W matching the images {tuple(images.shape)}, got {tuple(maps.shape)}"
        )
    if targets.shape != (images.shape[0],):
        raise ConfigError(f"give one target class per image ({images.shape[0]}), got {tuple(targets.shape)}")
