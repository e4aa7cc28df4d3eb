"""What every registered model offers: the CAM machinery's native split, and how it was adapted."""

from __future__ import annotations

from typing import Protocol

from batchcam.cam.split_classifier import SplitClassifier


class RegisteredModel(SplitClassifier, Protocol):
    """A model built by :func:`batchcam.models.build`: it also records how it was adapted."""

    architecture: str
    input_size: tuple[int, int]
    adaptation: str
