"""CAM methods: each combines one layer's activations ``A`` and gradients ``G`` (both B×K×h×w).

All five reuse the same forward pass and the same single ``autograd.grad`` call; they differ only in
how they weight the channels. Each returns the map *before* ReLU (B×h×w); formulas follow the papers
and pytorch-grad-cam's implementations, epsilons included, so results can be compared one to one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

import torch

from batchcam.spec.names import check_cam_method

CamMethod = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

# The epsilons pytorch-grad-cam uses, so that the two agree to float precision.
_GRADCAM_PLUS_PLUS_EPS = 1e-6
_XGRADCAM_EPS = 1e-7


def _weighted_sum(weights: torch.Tensor, activations: torch.Tensor) -> torch.Tensor:
    return torch.einsum("bk,bkhw->bhw", weights, activations)


def gradcam(activations: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """Grad-CAM (Selvaraju et al. 2017): channel weight = spatial mean of the gradient."""
    return _weighted_sum(grads.mean(dim=(2, 3)), activations)


def gradcam_plus_plus(activations: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """Grad-CAM++ (Chattopadhay et al. 2018), closed form under the exponential-score assumption."""
    grads_2 = grads.pow(2)
    grads_3 = grads_2 * grads
    sum_activations = activations.sum(dim=(2, 3), keepdim=True)
    alpha = grads_2 / (2 * grads_2 + sum_activations * grads_3 + _GRADCAM_PLUS_PLUS_EPS)
    alpha = torch.where(grads != 0, alpha, torch.zeros_like(alpha))
    weights = (alpha * grads.clamp(min=0)).sum(dim=(2, 3))
    return _weighted_sum(weights, activations)


def xgradcam(activations: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """XGrad-CAM (Fu et al. 2020): gradients weighted by the normalised activations."""
    sum_activations = activations.sum(dim=(2, 3), keepdim=True)
    weights = (grads * activations / (sum_activations + _XGRADCAM_EPS)).sum(dim=(2, 3))
    return _weighted_sum(weights, activations)


def layercam(activations: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """LayerCAM (Jiang et al. 2021): element-wise positive gradients times activations."""
    return (grads.clamp(min=0) * activations).sum(dim=1)


def hirescam(activations: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """HiResCAM (Draelos & Carin 2020): element-wise gradients times activations."""
    return (grads * activations).sum(dim=1)


CAM_METHODS: Mapping[str, CamMethod] = MappingProxyType(
    {
        "gradcam": gradcam,
        "gradcam++": gradcam_plus_plus,
        "xgradcam": xgradcam,
        "layercam": layercam,
        "hirescam": hirescam,
    }
)


def get_method(name: str) -> CamMethod:
    return CAM_METHODS[check_cam_method(name)]
