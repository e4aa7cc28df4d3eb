"""Build a registered model by name."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import cast

from torch import nn

from batchcam.errors import ConfigError
from batchcam.models.base import RegisteredModel
from batchcam.models.convnext import CamConvNeXtV2
from batchcam.models.resnet import CamResNet
from batchcam.models.simple_cnn import SimpleCNN
from batchcam.models.simple_cnn_mlp import SimpleCNNMLP
from batchcam.spec.model_spec import ModelSpec
from batchcam.spec.names import MODEL_NAMES

DEFAULT_INPUT_SIZE = 28

_BUILDERS: Mapping[str, Callable[[int, int, int], nn.Module]] = MappingProxyType(
    {
        "simple_cnn": SimpleCNN,
        "simple_cnn_mlp": SimpleCNNMLP,
        "resnet18": CamResNet,
        "convnextv2_tiny": CamConvNeXtV2,
    }
)


def build(
    name: str, num_classes: int, in_channels: int = 1, input_size: int = DEFAULT_INPUT_SIZE
) -> nn.Module:
    """A freshly initialised model; it knows its ``default_target_layer`` and ``input_size``."""
    if name not in _BUILDERS:
        raise ConfigError(f"unknown model {name!r}; accepted: {', '.join(MODEL_NAMES)}", code="unknown_model")
    if num_classes < 2:
        raise ConfigError(f"num_classes must be at least 2, got {num_classes}")
    if in_channels not in (1, 3):
        raise ConfigError(f"in_channels must be 1 or 3, got {in_channels}")
    if not 8 <= input_size <= 1024:
        raise ConfigError(f"input_size must lie in [8, 1024] pixels, got {input_size}")
    return _BUILDERS[name](num_classes, in_channels, input_size)


def spec_of(model: nn.Module, class_names: Sequence[str], target_layer: str | None = None) -> ModelSpec:
    """The spec recorded with a model built by :func:`build`."""
    registered = cast(RegisteredModel, model)
    return ModelSpec(
        architecture=registered.architecture,
        num_classes=len(class_names),
        in_channels=int(next(model.parameters()).shape[1]),
        input_size=registered.input_size,
        target_layer=target_layer or registered.default_target_layer,
        class_names=tuple(class_names),
        adaptation=registered.adaptation,
    )


def build_from_spec(spec: ModelSpec) -> nn.Module:
    """An untrained model with the architecture a spec describes (load weights into it next)."""
    if spec.input_size[0] != spec.input_size[1]:
        raise ConfigError(f"only square inputs are supported, got {spec.input_size}")
    return build(spec.architecture, spec.num_classes, spec.in_channels, spec.input_size[0])
