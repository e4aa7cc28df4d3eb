"""A head that is not global-average-pool + linear: there the differentiable Grad-CAM's
second-order terms reach beyond the last linear layer, so ``exact`` and ``constant_weights`` differ."""

from __future__ import annotations

import pytest
import torch

from batchcam.cam.extractor import CamExtractor
from batchcam.models import build


def feature_gradients(architecture: str, constant_weights: bool) -> torch.Tensor:
    """∂ (a CAM loss) / ∂ (the first conv's weights), eval mode so BatchNorm does not mix images."""
    torch.manual_seed(0)
    model = build(architecture, num_classes=3).eval()
    for parameter in model.parameters():  # away from initial symmetry: non-trivial head gradients
        parameter.data.add_(0.05 * torch.randn_like(parameter))
    extractor = CamExtractor(model)
    images = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    result = extractor(
        images, torch.tensor([0, 1, 2, 1]), create_graph=True, constant_weights=constant_weights
    )
    target = torch.zeros(28, 28)
    target[8:20, 8:20] = 1.0
    loss = (result.maps - target).abs().mean()
    first_conv = model.features[0][0].weight
    (gradient,) = torch.autograd.grad(loss, first_conv)
    return gradient


def test_a_gap_linear_head_gives_the_features_the_same_gradient_either_way() -> None:
    """Grad-CAM's weights are the linear layer's row there: constant in the activations."""
    exact, constant = feature_gradients("simple_cnn", False), feature_gradients("simple_cnn", True)
    assert torch.allclose(exact, constant, rtol=1e-4, atol=1e-8)


def test_an_mlp_head_sends_second_order_terms_into_the_features() -> None:
    exact, constant = feature_gradients("simple_cnn_mlp", False), feature_gradients("simple_cnn_mlp", True)
    assert (exact - constant).norm() > 1e-3 * exact.norm()


@pytest.mark.parametrize("size", [28, 32])
def test_the_mlp_head_fits_its_input_size(size: int) -> None:
    model = build("simple_cnn_mlp", num_classes=4, input_size=size)
    assert model(torch.rand(2, 1, size, size)).shape == (2, 4)
