"""ConvNeXt-V2-Tiny (timm) that resizes its input so the last stage keeps a spatial grid."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from timm.models.convnext import ConvNeXt

# ConvNeXt downsamples 32×: 28×28 input would vanish before the last stage. 128 keeps a 4×4 grid
# there (the same grid our ResNet-18 has at 28×28).
MIN_INTERNAL_SIZE = 128
TOTAL_STRIDE = 32


def internal_size_for(input_size: int) -> int:
    """The side length the network runs at: a multiple of 32, at least ``MIN_INTERNAL_SIZE``."""
    return max(MIN_INTERNAL_SIZE, TOTAL_STRIDE * math.ceil(input_size / TOTAL_STRIDE))


class CamConvNeXtV2(ConvNeXt):
    """timm's ConvNeXt-V2-Tiny; ``forward_features`` first resizes (bilinear) to ``internal_size``.

    The resize lives inside the model so that callers feed native-size images and CAMs come back
    at that size; state-dict keys stay timm's.
    """

    architecture = "convnextv2_tiny"
    default_target_layer = "stages.3"

    def __init__(self, num_classes: int, in_channels: int = 1, input_size: int = 28) -> None:
        super().__init__(
            in_chans=in_channels,
            num_classes=num_classes,
            depths=(3, 3, 9, 3),
            dims=(96, 192, 384, 768),
            use_grn=True,
            ls_init_value=None,
        )
        self.input_size = (input_size, input_size)
        self.internal_size = internal_size_for(input_size)
        self.resize_input = self.internal_size != input_size
        self.adaptation = (
            f"input resized (bilinear) to {self.internal_size}x{self.internal_size} inside the model"
            if self.resize_input
            else "none"
        )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        if self.resize_input:
            x = F.interpolate(
                x, size=(self.internal_size, self.internal_size), mode="bilinear", align_corners=False
            )
        return super().forward_features(x)
