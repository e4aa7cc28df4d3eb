"""What every registered model offers the CAM machinery: a native split between features and head."""

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


class RegisteredModel(SplitClassifier, Protocol):
    """A model built by :func:`batchcam.models.build`: it also records how it was adapted."""

    architecture: str
    input_size: tuple[int, int]
    adaptation: str
