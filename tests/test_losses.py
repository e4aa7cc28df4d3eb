"""The prototype losses against plain loops, and float64 gradchecks through CAM and losses."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.functional.image import structural_similarity_index_measure

from batchcam.cam import grad_cam
from batchcam.errors import ConfigError
from batchcam.losses import BatchCAMLoss, BatchCamObjective, PrototypeLoss
from batchcam.metrics import distance
from batchcam.spec.names import METRICS


def plain_distance(a: torch.Tensor, b: torch.Tensor, metric: str) -> torch.Tensor:
    if metric == "l1":
        return (a - b).abs().mean()
    if metric == "l2":
        return ((a - b) ** 2).mean()
    return 1 - structural_similarity_index_measure(a[None, None], b[None, None], data_range=1.0)


@pytest.mark.parametrize("size", [7, 14, 28])
def test_ssim_of_a_stack_equals_each_pair_alone_in_value_and_gradient(size: int) -> None:
    """The stack goes through torchmetrics as channels of one image (a depthwise convolution): each
    pair's value and gradient must be what torchmetrics gives for that pair on its own."""
    torch.manual_seed(size)
    cams = torch.rand(40, size, size, requires_grad=True)
    prototypes = torch.rand(40, size, size)
    stacked = distance(cams, prototypes, "ssim")
    (stacked_grad,) = torch.autograd.grad(stacked.sum(), cams)
    alone = torch.stack([plain_distance(cams[i], prototypes[i], "ssim") for i in range(len(cams))])
    (alone_grad,) = torch.autograd.grad(alone.sum(), cams)
    assert torch.allclose(stacked, alone, atol=1e-6)
    assert torch.allclose(stacked_grad, alone_grad, atol=1e-6)


@pytest.mark.parametrize("metric", METRICS)
def test_prototype_loss_is_the_mean_per_image_distance(metric: str) -> None:
    torch.manual_seed(0)
    cams, prototypes = torch.rand(6, 16, 16), torch.rand(3, 16, 16)
    labels = torch.tensor([0, 2, 2, 1, 0, 2])
    expected = torch.stack([plain_distance(cams[i], prototypes[labels[i]], metric) for i in range(6)]).mean()
    assert torch.allclose(PrototypeLoss(prototypes, metric)(cams, labels), expected, atol=1e-6)


@pytest.mark.parametrize("metric", METRICS)
def test_batchcam_loss_averages_class_mean_cams_over_present_classes(metric: str) -> None:
    torch.manual_seed(0)
    cams, prototypes = torch.rand(5, 16, 16), torch.rand(4, 16, 16)
    labels = torch.tensor([3, 0, 3, 3, 0])  # classes 1 and 2 absent from this batch
    per_class = []
    for c in (0, 3):
        mean_cam = cams[labels == c].mean(dim=0)
        per_class.append(plain_distance(mean_cam, prototypes[c], metric))
    expected = torch.stack(per_class).mean()
    assert torch.allclose(BatchCAMLoss(prototypes, metric)(cams, labels), expected, atol=1e-6)


def test_batchcam_and_prototype_losses_differ_when_cams_disagree_within_a_class() -> None:
    """Mean-then-distance (per batch) ≠ distance-then-mean (per image) for L1 with varied CAMs."""
    prototypes = torch.full((1, 4, 4), 0.5)
    cams = torch.stack([torch.zeros(4, 4), torch.ones(4, 4)])
    labels = torch.tensor([0, 0])
    assert PrototypeLoss(prototypes, "l1")(cams, labels) == pytest.approx(0.5)
    assert BatchCAMLoss(prototypes, "l1")(cams, labels) == pytest.approx(0.0)


def test_objective_modes_combine_the_chosen_terms() -> None:
    torch.manual_seed(0)
    logits, cams, labels = torch.randn(4, 3), torch.rand(4, 8, 8), torch.tensor([0, 1, 2, 1])
    prototypes = torch.rand(3, 8, 8)
    ce = F.cross_entropy(logits, labels)
    proto = PrototypeLoss(prototypes, "l2")(cams, labels)
    batch = BatchCAMLoss(prototypes, "l2")(cams, labels)
    expected = {
        "baseline": ce,
        "prototype": ce + 0.5 * proto,
        "batchcam": ce + 2 * batch,
        "both": ce + 0.5 * proto + 2 * batch,
    }
    for mode, value in expected.items():
        objective = BatchCamObjective(prototypes, mode, "l2", lambda_prototype=0.5, lambda_batchcam=2.0)
        terms = objective(logits, None if mode == "baseline" else cams, labels)
        assert torch.allclose(terms.total, value), mode
    with pytest.raises(ValueError, match="needs the batch's CAMs"):
        BatchCamObjective(prototypes, "both")(logits, None, labels)


def test_unknown_metric_and_mode_are_refused() -> None:
    with pytest.raises(ConfigError, match="accepted: l1, l2, ssim"):
        PrototypeLoss(torch.rand(2, 8, 8), "cosine")
    with pytest.raises(ConfigError, match="accepted: baseline, prototype, batchcam, both"):
        BatchCamObjective(torch.rand(2, 8, 8), "gradient")


@pytest.mark.parametrize("metric", METRICS)
def test_gradcheck_losses(metric: str) -> None:
    torch.manual_seed(0)
    cams = torch.rand(4, 12, 12, dtype=torch.float64, requires_grad=True)
    prototypes = torch.rand(3, 12, 12, dtype=torch.float64)
    labels = torch.tensor([0, 2, 2, 1])
    assert torch.autograd.gradcheck(lambda c: PrototypeLoss(prototypes, metric)(c, labels), (cams,))
    assert torch.autograd.gradcheck(lambda c: BatchCAMLoss(prototypes, metric)(c, labels), (cams,))
    assert torch.autograd.gradcheck(lambda c: distance(c, prototypes[labels], metric), (cams,))


class TinySplitNet(nn.Module):
    """Weights passed in as tensors so gradcheck can differentiate w.r.t. them."""

    default_target_layer = "features"

    def __init__(self, conv: torch.Tensor, mix: torch.Tensor, fc: torch.Tensor) -> None:
        super().__init__()
        self.features = nn.Identity()  # names the layer; the computation is below
        self.conv, self.mix, self.fc = conv, mix, fc

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(F.conv2d(x, self.conv, padding=1))

    def forward_head(self, a: torch.Tensor) -> torch.Tensor:
        # A non-linear head makes the CAM's gradients depend on A: second-order terms are non-trivial.
        hidden = torch.tanh(F.conv2d(a, self.mix))
        return hidden.mean(dim=(2, 3)) @ self.fc.T


@pytest.mark.parametrize("method", ["gradcam", "gradcam++", "xgradcam", "layercam", "hirescam"])
def test_gradcheck_through_the_cam(method: str) -> None:
    torch.manual_seed(0)
    images = torch.rand(2, 1, 5, 5, dtype=torch.float64, requires_grad=True)
    conv = torch.randn(3, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    mix = torch.randn(3, 3, 1, 1, dtype=torch.float64, requires_grad=True)
    fc = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    targets = torch.tensor([0, 1])

    def cams(images: torch.Tensor, conv: torch.Tensor, mix: torch.Tensor, fc: torch.Tensor) -> torch.Tensor:
        return grad_cam(TinySplitNet(conv, mix, fc), images, targets, method=method, create_graph=True)

    assert torch.autograd.gradcheck(cams, (images, conv, mix, fc))


@pytest.mark.parametrize("metric", METRICS)
def test_gradcheck_cam_plus_losses(metric: str) -> None:
    torch.manual_seed(1)
    images = torch.rand(3, 1, 12, 12, dtype=torch.float64)
    conv = torch.randn(3, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    mix = torch.randn(3, 3, 1, 1, dtype=torch.float64, requires_grad=True)
    fc = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 1, 1])
    prototypes = torch.rand(2, 12, 12, dtype=torch.float64)

    def total(conv: torch.Tensor, mix: torch.Tensor, fc: torch.Tensor) -> torch.Tensor:
        maps = grad_cam(TinySplitNet(conv, mix, fc), images, labels, create_graph=True)
        return PrototypeLoss(prototypes, metric)(maps, labels) + BatchCAMLoss(prototypes, metric)(
            maps, labels
        )

    assert torch.autograd.gradcheck(total, (conv, mix, fc))
