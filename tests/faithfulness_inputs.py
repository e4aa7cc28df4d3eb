"""Small models and maps that the faithfulness tests share."""

from __future__ import annotations

import torch
from torch import nn


def tiny_net(channels: int = 1, classes: int = 4, seed: int = 0) -> nn.Module:
    """A small conv net in eval mode whose class probabilities move clearly with the input."""
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(channels, 6, 3, padding=1),
        nn.Tanh(),
        nn.AdaptiveAvgPool2d(3),
        nn.Flatten(),
        nn.Linear(54, classes),
    )
    with torch.no_grad():
        model[-1].weight.mul_(8)
    return model.eval()


def untied_maps(count: int, height: int, width: int, seed: int) -> torch.Tensor:
    """Continuous maps without ties, so every pixel order is defined without a tie-break."""
    maps = torch.rand(count, height, width, generator=torch.Generator().manual_seed(seed))
    assert all(len(m.unique()) == height * width for m in maps)
    return maps
