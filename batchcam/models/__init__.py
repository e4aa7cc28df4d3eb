"""Registered models: ``simple_cnn``, ``resnet18`` (torchvision), ``convnextv2_tiny`` (timm)."""

from batchcam.models.base import RegisteredModel, SplitClassifier
from batchcam.models.registry import DEFAULT_INPUT_SIZE, MODEL_NAMES, build, build_from_spec, spec_of
from batchcam.models.spec import ModelSpec

__all__ = [
    "DEFAULT_INPUT_SIZE",
    "MODEL_NAMES",
    "ModelSpec",
    "RegisteredModel",
    "SplitClassifier",
    "build",
    "build_from_spec",
    "spec_of",
]
