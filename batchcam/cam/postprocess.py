"""Turning a raw layer-resolution map into a CAM: ReLU, bilinear upsampling, per-image [0, 1]."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F

Normalization = Literal["minmax", "max", "none"]


@dataclass(frozen=True)
class CamPostprocess:
    """Post-processing applied to every CAM, recorded with every result.

    - ``relu``: keep only evidence *for* the target class.
    - ``upsample``: bilinear (``align_corners=False``) to the input's height and width.
    - ``normalize``: per image, ``minmax`` maps to ``(x − min) / (max − min + eps)``, ``max`` to
      ``x / (max + eps)``; ``eps`` keeps an all-zero map at zero instead of dividing by zero.
    """

    relu: bool = True
    upsample: bool = True
    normalize: Normalization = "minmax"
    eps: float = 1e-7

    def __call__(self, raw: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        cam = raw.clamp(min=0) if self.relu else raw
        if self.upsample and tuple(cam.shape[-2:]) != tuple(size):
            cam = F.interpolate(cam.unsqueeze(1), size=size, mode="bilinear", align_corners=False).squeeze(1)
        if self.normalize == "none":
            return cam
        flat = cam.flatten(1)
        high = flat.max(dim=1).values[:, None, None]
        if self.normalize == "max":
            return cam / (high + self.eps)
        low = flat.min(dim=1).values[:, None, None]
        return (cam - low) / (high - low + self.eps)

    def describe(self) -> dict[str, Any]:
        return {**asdict(self), "interpolation": "bilinear, align_corners=False"}


DEFAULT_POSTPROCESS = CamPostprocess()
