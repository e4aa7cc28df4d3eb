"""Batched, differentiable CAMs: one forward pass, one ``torch.autograd.grad`` call per batch."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from batchcam.cam.methods import get_method
from batchcam.cam.postprocess import DEFAULT_POSTPROCESS, CamPostprocess
from batchcam.cam.split import make_split
from batchcam.errors import ConfigError, LayerError


@dataclass(frozen=True)
class CamResult:
    """CAMs (B×H×W in [0, 1]) with the logits of the same forward pass and how they were made."""

    maps: torch.Tensor
    logits: torch.Tensor
    targets: torch.Tensor
    layer: str
    method: str
    postprocess: CamPostprocess

    def describe(self) -> dict[str, Any]:
        return {"layer": self.layer, "method": self.method, "postprocess": self.postprocess.describe()}


class CamExtractor:
    """CAMs for one model and layer; build once and reuse (tracing, when needed, happens here).

    Gradients are taken w.r.t. the layer's activations only: no hooks, no per-image loop, no
    parameter ``.grad`` written, and the model's train/eval mode is left as found.
    """

    def __init__(
        self,
        model: nn.Module,
        layer: str | None = None,
        method: str = "gradcam",
        postprocess: CamPostprocess = DEFAULT_POSTPROCESS,
    ) -> None:
        self.model = model
        self.split = make_split(model, layer)
        self.method_name = method
        self.method = get_method(method)
        self.postprocess = postprocess

    @property
    def layer(self) -> str:
        return self.split.layer

    def with_constant_statistics(self) -> CamExtractor:
        """This extractor with the batch statistics of train-mode BatchNorm after its layer held
        constant: per-image CAMs with train mode's activations (see ``batch_constant``). Its pass
        updates no BatchNorm running averages. ``LayerError`` if no BatchNorm follows the layer."""
        other = copy.copy(self)
        other.split = self.split.with_constant_statistics()
        return other

    def forward(self, images: torch.Tensor, *, differentiable: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """One forward pass → (activations at the target layer, logits)."""
        _check_autograd_available()
        activations, logits = self.split(images, differentiable=differentiable)
        if activations.ndim != 4:
            raise LayerError(
                f"layer {self.layer!r} outputs shape {tuple(activations.shape)}; a CAM needs a "
                "B×K×h×w feature map (choose a convolutional layer)"
            )
        return activations, logits

    def maps(
        self,
        activations: torch.Tensor,
        logits: torch.Tensor,
        targets: torch.Tensor,
        size: tuple[int, int],
        *,
        create_graph: bool = False,
        constant_weights: bool = False,
    ) -> torch.Tensor:
        """CAMs from a forward pass already made (the trainer reuses its logits for the loss).

        ``create_graph=True``: the CAM is differentiable end to end, second-order terms included.
        ``constant_weights=True`` (with ``create_graph``): gradient-derived weights are treated as
        constants, so the CAM is differentiable only through the activations (no double backward).
        ``create_graph=False``: inference; the result is detached.
        """
        if constant_weights and not create_graph:
            raise ConfigError(
                "constant_weights=True needs create_graph=True (it is a cheaper differentiable CAM)"
            )
        _check_autograd_available()
        _check_targets(targets, logits)
        try:
            with torch.enable_grad():  # callers may be inside no_grad(); the forward kept its graph
                score = logits.gather(1, targets.to(logits.device).view(-1, 1)).sum()
                (grads,) = torch.autograd.grad(
                    score,
                    activations,
                    create_graph=create_graph and not constant_weights,
                    retain_graph=create_graph,
                )
        except RuntimeError as error:
            if not _is_disconnected_graph(error):
                raise  # out of memory, a failing kernel, …: not a problem with the layer
            raise LayerError(f"the logits do not depend on layer {self.layer!r}: {error}") from error
        # CAM arithmetic in float32 even inside a bf16 autocast region: normalisation needs range.
        with (
            torch.autocast(device_type=activations.device.type, enabled=False),
            torch.set_grad_enabled(create_graph),
        ):
            raw = self.method(_at_least_float32(activations), _at_least_float32(grads))
            return self.postprocess(raw, size)

    def __call__(
        self,
        images: torch.Tensor,
        targets: torch.Tensor | None = None,
        *,
        create_graph: bool = False,
        constant_weights: bool = False,
    ) -> CamResult:
        """CAMs for ``images`` (B×C×H×W) w.r.t. ``targets`` (B class indices; ``None`` = predicted)."""
        if images.ndim != 4:
            raise ConfigError(f"images must be B×C×H×W, got shape {tuple(images.shape)}")
        activations, logits = self.forward(images, differentiable=create_graph)
        if targets is None:
            targets = logits.detach().argmax(dim=1)
        maps = self.maps(
            activations,
            logits,
            targets,
            (images.shape[-2], images.shape[-1]),
            create_graph=create_graph,
            constant_weights=constant_weights,
        )
        return CamResult(
            maps=maps,
            logits=logits if create_graph else logits.detach(),
            targets=targets,
            layer=self.layer,
            method=self.method_name,
            postprocess=self.postprocess,
        )


# What autograd says when the score is not connected to the activations.
_DISCONNECTED_GRAPH = ("does not require grad", "not have been used in the graph")


def _is_disconnected_graph(error: RuntimeError) -> bool:
    return any(fragment in str(error) for fragment in _DISCONNECTED_GRAPH)


def _check_autograd_available() -> None:
    # Inside inference_mode even enable_grad() cannot record a graph, so every CAM would fail.
    if torch.is_inference_mode_enabled():
        raise ConfigError(
            "CAMs need autograd and cannot be computed under torch.inference_mode(); "
            "use torch.no_grad() or nothing"
        )


def _at_least_float32(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.float() if tensor.element_size() < 4 else tensor


def _check_targets(targets: torch.Tensor, logits: torch.Tensor) -> None:
    if targets.dtype != torch.int64 or targets.shape != (logits.shape[0],):
        raise ConfigError(
            f"targets must be a LongTensor of {logits.shape[0]} class indices, "
            f"got {targets.dtype} {tuple(targets.shape)}"
        )
    if len(targets) and (int(targets.min()) < 0 or int(targets.max()) >= logits.shape[1]):
        raise ConfigError(f"targets must lie in [0, {logits.shape[1]}), got values outside")


def grad_cam(
    model: nn.Module,
    images: torch.Tensor,
    targets: torch.Tensor | None,
    layer: str | None = None,
    method: str = "gradcam",
    create_graph: bool = False,
    *,
    constant_weights: bool = False,
    postprocess: CamPostprocess = DEFAULT_POSTPROCESS,
) -> torch.Tensor:
    """B×H×W CAMs in [0, 1] at the input's size (see :class:`CamExtractor`).

    For repeated calls at a layer other than the model's default, build a :class:`CamExtractor`
    once: it traces the model only at construction.
    """
    extractor = CamExtractor(model, layer, method, postprocess)
    return extractor(images, targets, create_graph=create_graph, constant_weights=constant_weights).maps
