"""Registered models: ``simple_cnn``, ``simple_cnn_mlp``, ``resnet18`` (torchvision), ``convnextv2_tiny``
(timm)."""

from batchcam.models.base import RegisteredModel, SplitClassifier
from batchcam.models.registry import DEFAULT_INPUT_SIZE, build, build_from_spec, spec_of
from batchcam.spec.model_spec import ModelSpec
from batchcam.spec.names import MODEL_NAMES

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
