"""What the CAM machinery needs of a model to skip tracing: a native features/head split."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class SplitClassifier(Protocol):
    """A classifier whose forward pass is ``forward_head(forward_features(x))``.

    ``forward_features`` ends at ``default_target_layer``, so a CAM at that layer needs no tracing
    (the same convention timm models follow).
    """

    default_target_layer: str

    def forward_features(self, x: torch.Tensor) -> torch.Tensor: ...

    def forward_head(self, x: torch.Tensor) -> torch.Tensor: ...
