"""A small CNN that trains on 28×28 images in seconds on a CPU."""

from __future__ import annotations

import torch
from torch import nn


def _conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class SimpleCNN(nn.Module):
    """Four conv blocks (two 2× poolings) and a global-average-pool linear head.

    At 28×28 the target layer ``features`` is a 64×7×7 map: fine enough for a useful CAM.
    """

    architecture = "simple_cnn"
    default_target_layer = "features"

    def __init__(self, num_classes: int, in_channels: int = 1, input_size: int = 28, width: int = 16) -> None:
        super().__init__()
        self.input_size = (input_size, input_size)  # any size works: global pooling before the head
        self.adaptation = "none"
        self.features = nn.Sequential(
            _conv_block(in_channels, width),
            nn.MaxPool2d(2),
            _conv_block(width, 2 * width),
            nn.MaxPool2d(2),
            _conv_block(2 * width, 4 * width),
            _conv_block(4 * width, 4 * width),
        )
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * width, num_classes))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))
