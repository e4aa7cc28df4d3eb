"""A deliberately plain CAM reference: forward hooks, one image at a time, formulas spelled out.

It shares no code with ``batchcam.cam``; the batched implementation must agree with it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def activations_and_gradients(
    model: nn.Module, layer: str, image: torch.Tensor, target: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """K×h×w activations of ``layer`` and the gradient of logit ``target`` w.r.t. them, for one image."""
    module = dict(model.named_modules())[layer]
    captured: dict[str, torch.Tensor] = {}

    def keep(_module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
        output.retain_grad()
        captured["a"] = output

    handle = module.register_forward_hook(keep)
    try:
        logits = model(image.unsqueeze(0))
        logits[0, target].backward()
    finally:
        handle.remove()
        model.zero_grad(set_to_none=True)
    activation = captured["a"]
    assert activation.grad is not None
    return activation[0].detach(), activation.grad[0].detach()


def reference_raw_map(method: str, a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """h×w map before ReLU for one image, from the papers' formulas (channel loops on purpose)."""
    channels = a.shape[0]
    if method in ("layercam", "hirescam"):
        weighted = g.clamp(min=0) * a if method == "layercam" else g * a
        return sum(weighted[k] for k in range(channels))
    weights = []
    for k in range(channels):
        if method == "gradcam":
            weights.append(g[k].mean())
        elif method == "xgradcam":
            weights.append((g[k] * a[k]).sum() / (a[k].sum() + 1e-7))
        elif method == "gradcam++":
            alpha = g[k] ** 2 / (2 * g[k] ** 2 + a[k].sum() * g[k] ** 3 + 1e-6)
            alpha = torch.where(g[k] != 0, alpha, torch.zeros_like(alpha))
            weights.append((alpha * g[k].clamp(min=0)).sum())
        else:
            raise ValueError(method)
    return sum(weights[k] * a[k] for k in range(channels))


def reference_cam(
    model: nn.Module, layer: str, method: str, image: torch.Tensor, target: int
) -> torch.Tensor:
    """ReLU → bilinear upsampling to the image size → min-max normalisation to [0, 1]."""
    a, g = activations_and_gradients(model, layer, image, target)
    cam = reference_raw_map(method, a, g).clamp(min=0)
    cam = F.interpolate(cam[None, None], size=image.shape[-2:], mode="bilinear", align_corners=False)[0, 0]
    return (cam - cam.min()) / (cam.max() - cam.min() + 1e-7)
