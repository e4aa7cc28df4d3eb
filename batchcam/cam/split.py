"""Splitting a model at its CAM layer: one forward pass → (activations at that layer, logits).

Two ways, no hooks in either:

- *native*: the model's own ``forward_features`` / ``forward_head``, used when the model has both
  methods *and* a ``default_target_layer`` (the registered models) and the requested layer is that
  one. Inference then runs the features without autograd and only the head with it. timm models
  have the two methods but no ``default_target_layer``, so they are traced.
- *traced*: ``torch.fx`` feature extraction (timm's wrapper of torchvision's, which knows timm's
  leaf modules) for any other layer of any traceable classifier.
"""

from __future__ import annotations

import difflib
from abc import ABC, abstractmethod
from typing import cast

import torch
from torch import fx, nn

from batchcam.cam.batch_constant import constant_statistics_graph
from batchcam.cam.batch_mixing import batchnorm_between
from batchcam.cam.split_classifier import SplitClassifier
from batchcam.errors import LayerError
from batchcam.modes import training_modes_preserved


class FeatureSplit(ABC):
    """Callable that returns the target layer's activations and the logits of one forward pass."""

    layer: str
    # BatchNorm between the layer and the logits (see batch_mixing). The native split is only used
    # at a model's default layer, which the registered models all place after their last BatchNorm.
    batchnorm_after_layer: tuple[str, ...] = ()

    @abstractmethod
    def __call__(self, images: torch.Tensor, *, differentiable: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """``differentiable=False`` may skip building the graph below the target layer."""

    def with_constant_statistics(self) -> FeatureSplit:
        """The split whose train-mode pass holds the batch statistics of the BatchNorms after the layer
        constant (per-image CAMs; see batch_constant) and updates no running averages."""
        raise LayerError(
            f"no BatchNorm follows layer {self.layer!r}: its CAMs are per-image already, there are no "
            "batch statistics to hold constant"
        )


class NativeSplit(FeatureSplit):
    def __init__(self, model: nn.Module, layer: str) -> None:
        self.model = cast(SplitClassifier, model)
        self.layer = layer

    def __call__(self, images: torch.Tensor, *, differentiable: bool) -> tuple[torch.Tensor, torch.Tensor]:
        if differentiable:
            activations = self.model.forward_features(images)
        else:
            with torch.no_grad():
                activations = self.model.forward_features(images)
        if not activations.requires_grad:
            # Inference, or frozen features: the gradient stops here anyway, so make A a leaf.
            activations = activations.detach().requires_grad_(True)
        with torch.enable_grad():
            logits = self.model.forward_head(activations)
        return activations, logits


class TracedSplit(FeatureSplit):
    """FX graphs returning ``{"activations", "logits"}``, one per mode (code may branch on ``training``)."""

    def __init__(self, model: nn.Module, layer: str) -> None:
        self.model = model
        self.layer = layer
        self._train_graph, self._eval_graph = _trace(model, layer)
        self.batchnorm_after_layer = batchnorm_between(self._train_graph, "activations", "logits")

    def __call__(self, images: torch.Tensor, *, differentiable: bool) -> tuple[torch.Tensor, torch.Tensor]:
        graph = self._train_graph if self.model.training else self._eval_graph
        return _run(graph, images, differentiable=differentiable)

    def with_constant_statistics(self) -> FeatureSplit:
        if not self.batchnorm_after_layer:
            return super().with_constant_statistics()
        return ConstantStatisticsSplit(self)


class ConstantStatisticsSplit(FeatureSplit):
    """A traced split whose train graph is rewritten by ``batch_constant``; eval mode is unchanged
    (BatchNorm uses its running averages there, which mix nothing)."""

    def __init__(self, traced: TracedSplit) -> None:
        self.model = traced.model
        self.layer = traced.layer
        self._train_graph = constant_statistics_graph(traced._train_graph, "activations", "logits")
        self._eval_graph = traced._eval_graph

    def __call__(self, images: torch.Tensor, *, differentiable: bool) -> tuple[torch.Tensor, torch.Tensor]:
        graph = self._train_graph if self.model.training else self._eval_graph
        return _run(graph, images, differentiable=differentiable)


def _run(
    graph: fx.GraphModule, images: torch.Tensor, *, differentiable: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.enable_grad():
        if not differentiable and not images.requires_grad:
            # Guarantees that A is part of the graph even when every parameter is frozen.
            images = images.detach().requires_grad_(True)
        outputs = graph(images)
    return outputs["activations"], outputs["logits"]


def _trace(model: nn.Module, layer: str) -> tuple[fx.GraphModule, fx.GraphModule]:
    from timm.models import create_feature_extractor
    from torchvision.models.feature_extraction import get_graph_node_names

    try:
        with training_modes_preserved(model):
            _, eval_nodes = get_graph_node_names(model)
            dual = create_feature_extractor(
                model, return_nodes={layer: "activations", eval_nodes[-1]: "logits"}
            )
    except Exception as error:  # tracing fails in many library-specific ways; all mean "cannot split"
        raise LayerError(
            f"cannot split {type(model).__name__} at layer {layer!r}: torch.fx could not trace it "
            f"({type(error).__name__}: {error}). Use the model's default target layer, or give the "
            "model forward_features()/forward_head() methods that end at the layer you want."
        ) from error
    if set(_output_names(dual.eval_graph)) != {"activations", "logits"}:
        raise LayerError(f"layer {layer!r} ends at the classifier output; choose a convolutional layer")
    return fx.GraphModule(dual, dual.train_graph), fx.GraphModule(dual, dual.eval_graph)


def _output_names(graph: fx.Graph) -> list[str]:
    output = next(node for node in graph.nodes if node.op == "output")
    returned = output.args[0]
    return list(returned) if isinstance(returned, dict) else []


def resolve_layer(model: nn.Module, layer: str | None) -> str:
    """The layer to use, checked to exist; ``None`` means the model's default target layer."""
    if layer is None:
        layer = getattr(model, "default_target_layer", None)
        if layer is None:
            raise LayerError(
                f"{type(model).__name__} has no default target layer; pass layer=<module name>, "
                f"for example one of: {', '.join(_conv_layer_names(model)[-4:]) or 'none found'}"
            )
    names = [name for name, _ in model.named_modules() if name]
    if layer not in names:
        close = difflib.get_close_matches(layer, names, n=4)
        hint = (
            f"did you mean {', '.join(close)}?"
            if close
            else f"last conv layers: {', '.join(_conv_layer_names(model)[-4:])}"
        )
        raise LayerError(f"layer {layer!r} does not exist in {type(model).__name__}; {hint}")
    return layer


def _conv_layer_names(model: nn.Module) -> list[str]:
    return [name for name, module in model.named_modules() if isinstance(module, nn.Conv2d)]


def make_split(model: nn.Module, layer: str | None) -> FeatureSplit:
    layer = resolve_layer(model, layer)
    has_native = callable(getattr(model, "forward_features", None)) and callable(
        getattr(model, "forward_head", None)
    )
    if has_native and layer == getattr(model, "default_target_layer", None):
        return NativeSplit(model, layer)
    return TracedSplit(model, layer)
