"""The annotation-supervised baselines (RRR, RRR on Grad-CAM, energy) and input-gradient maps,
against per-image reference loops, and in the trainer."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from batchcam.annotation_losses import (
    energy_loss,
    input_gradients_of_log_probabilities,
    map_mask_penalty,
    rrr_penalty,
)
from batchcam.cam.gradient_maps import input_gradient_maps
from batchcam.data import DatasetSplits, load_dataset, load_shapes
from batchcam.data.annotations import AnnotatedImages, irrelevant_regions
from batchcam.data.dataset import ImageDataset
from batchcam.device import select_execution
from batchcam.errors import ConfigError
from batchcam.losses import BatchCamObjective
from batchcam.models import build
from batchcam.pipeline import prototypes_for
from batchcam.training import TrainConfig, Trainer


def tiny_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(4 * 8 * 8, 3)
    ).double()


def test_rrr_penalty_matches_a_per_image_reference() -> None:
    model = tiny_model()
    inputs = torch.rand(5, 1, 8, 8, dtype=torch.float64, requires_grad=True)
    masks = torch.rand(5, 8, 8) > 0.7
    batched = rrr_penalty(input_gradients_of_log_probabilities(model(inputs), inputs), masks.double())
    expected = []
    for image, mask in zip(inputs.detach(), masks, strict=True):
        one = image[None].clone().requires_grad_(True)
        (gradient,) = torch.autograd.grad(F.log_softmax(model(one), dim=1).sum(), one)
        expected.append((gradient[0, 0] * mask).pow(2).sum())
    assert torch.allclose(batched, torch.stack(expected).mean(), rtol=1e-10)


def test_rrr_penalty_is_differentiable_in_the_parameters() -> None:
    model = tiny_model()
    inputs = torch.rand(3, 1, 8, 8, dtype=torch.float64, requires_grad=True)
    penalty = rrr_penalty(input_gradients_of_log_probabilities(model(inputs), inputs), torch.ones(3, 8, 8))
    penalty.backward()
    assert model[0].weight.grad is not None and model[0].weight.grad.abs().sum() > 0


def test_map_penalties_on_hand_made_maps() -> None:
    maps = torch.zeros(2, 4, 4)
    maps[0, 0, 0] = 1.0  # all of image 0's mass on the masked corner
    maps[1, 3, 3] = 0.5  # image 1's mass off it
    masks = torch.zeros(2, 4, 4)
    masks[:, 0, 0] = 1.0
    assert energy_loss(maps, masks).item() == pytest.approx(0.5)  # (1 + 0) / 2
    assert map_mask_penalty(maps, masks).item() == pytest.approx(0.5)  # (1² + 0) / 2
    assert energy_loss(torch.zeros(2, 4, 4), masks).item() == 0.0  # no mass: no energy inside


def test_input_gradient_maps_match_a_per_image_reference() -> None:
    model = tiny_model()
    inputs = torch.rand(4, 1, 8, 8, dtype=torch.float64, requires_grad=True)
    targets = torch.tensor([0, 2, 1, 2])
    maps = input_gradient_maps(model(inputs), targets, inputs)
    for i in range(4):
        one = inputs.detach()[i : i + 1].clone().requires_grad_(True)
        (gradient,) = torch.autograd.grad(model(one)[0, targets[i]], one)
        raw = gradient[0].abs().sum(dim=0)
        expected = (raw - raw.min()) / (raw.max() - raw.min() + 1e-7)
        assert torch.allclose(maps[i].double(), expected, atol=1e-6)
    assert maps.requires_grad  # the prototype losses train through it


def test_irrelevant_regions_are_the_decoy_patch_or_the_background() -> None:
    decoy = load_dataset("decoy-shapes", seed=0).train
    shapes = load_shapes(seed=0, n_train=50, n_test=10).train
    assert decoy.decoy_masks is not None and shapes.object_masks is not None
    assert torch.equal(irrelevant_regions(decoy), decoy.decoy_masks)
    assert torch.equal(irrelevant_regions(shapes), ~shapes.object_masks)
    _, labels, masks = AnnotatedImages(decoy)[torch.tensor([3, 1])]
    assert torch.equal(masks, decoy.decoy_masks[torch.tensor([3, 1])]) and torch.equal(
        labels, decoy.labels[[3, 1]]
    )


def test_an_annotation_mode_without_masks_fails_before_training() -> None:
    data = load_shapes(seed=0, n_train=64, n_test=16)
    unmasked = ImageDataset(data.train.images, data.train.labels, data.train.class_names)
    bare = DatasetSplits("bare", unmasked, data.test)
    with pytest.raises(ConfigError, match="need a mask per training image") as error:
        Trainer(
            build("simple_cnn", 5),
            bare.train,
            bare.test,
            prototypes_for(bare.train),
            TrainConfig(mode="rrr"),
            select_execution("cpu"),
        )
    assert error.value.code == "annotations_missing"


def test_objective_weighs_the_annotation_penalty_by_its_lambda() -> None:
    cams, labels, masks = torch.rand(4, 6, 6), torch.tensor([0, 1, 1, 0]), torch.rand(4, 6, 6).round()
    logits = torch.randn(4, 2)
    prototypes = torch.rand(2, 6, 6)
    one = BatchCamObjective(prototypes, "energy", lambda_annotation=1.0)(logits, cams, labels, masks)
    ten = BatchCamObjective(prototypes, "energy", lambda_annotation=10.0)(logits, cams, labels, masks)
    assert one.annotation is not None and one.prototype is None and one.batchcam is None
    assert torch.allclose(ten.total - ten.cross_entropy, 10 * (one.total - one.cross_entropy))
    with pytest.raises(ValueError, match="annotation masks"):
        BatchCamObjective(prototypes, "energy")(logits, cams, labels)


@pytest.mark.parametrize("mode", ["rrr", "rrr-gradcam", "energy"])
def test_annotation_modes_pull_explanations_off_the_decoy(mode: str) -> None:
    """On decoy shapes, each penalty ends lower than the same model's baseline would score on it."""
    splits = load_dataset("decoy-shapes", seed=0)
    splits = DatasetSplits(
        splits.name, splits.train.subset(torch.arange(1000)), splits.test.subset(torch.arange(200))
    )
    histories = {}
    for lam in (0.0, 10.0):
        torch.manual_seed(0)
        config = TrainConfig(mode=mode, lambda_annotation=lam, epochs=2, batch_size=32, faithfulness_images=0)
        trainer = Trainer(
            build("simple_cnn", 5),
            splits.train,
            splits.test,
            prototypes_for(splits.train),
            config,
            select_execution("cpu"),
        )
        histories[lam] = trainer.fit().history[-1]
    penalised, free = histories[10.0].train_annotation_loss, histories[0.0].train_annotation_loss
    assert penalised is not None and free is not None and penalised < free
    assert histories[10.0].test_accuracy > 0.5
