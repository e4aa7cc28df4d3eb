"""Adebayo's data randomisation test: plumbing with a stand-in trainer, then with the real recipe."""

from __future__ import annotations

import copy

import pytest
import torch

from batchcam.cam.extractor import CamExtractor
from batchcam.data.dataset import ImageDataset
from batchcam.data.shapes import load_shapes
from batchcam.device import select_execution
from batchcam.faithfulness.label_randomisation import label_randomisation, permuted_labels
from batchcam.models import build
from batchcam.pipeline import build_model, label_randomisation_check, prepare_data, prototypes_for
from batchcam.training import TrainConfig
from batchcam.training.trainer import Trainer


def test_permuted_labels_shuffle_the_labels_and_keep_images_and_class_counts() -> None:
    data = load_shapes(seed=0, n_train=200, n_test=10).train
    shuffled = permuted_labels(data, seed=1)
    assert torch.equal(shuffled.images, data.images)
    assert torch.equal(shuffled.class_counts(), data.class_counts())
    assert (shuffled.labels != data.labels).float().mean() > 0.5
    assert torch.equal(permuted_labels(data, seed=1).labels, shuffled.labels)


def test_a_model_that_ignores_the_labels_fails_the_check_and_a_fresh_one_passes_it() -> None:
    data = load_shapes(seed=0, n_train=64, n_test=8)
    model = build("simple_cnn", num_classes=5, in_channels=1).eval()
    extractor = CamExtractor(model)
    images = data.test.images.float() / 255
    targets = torch.arange(len(images)) % 5
    seen: list[ImageDataset] = []

    def same_model(shuffled: ImageDataset) -> torch.nn.Module:
        seen.append(shuffled)
        return copy.deepcopy(model)  # "training" that learns nothing from the labels

    unchanged = label_randomisation(same_model, data.train, extractor, images, targets)
    assert len(seen) == 1 and not torch.equal(seen[0].labels, data.train.labels)
    assert torch.allclose(unchanged.ssim, torch.ones(len(images)), atol=1e-4)

    def fresh_model(_: ImageDataset) -> torch.nn.Module:
        torch.manual_seed(123)
        return build("simple_cnn", num_classes=5, in_channels=1).eval()

    changed = label_randomisation(fresh_model, data.train, extractor, images, targets)
    assert float(changed.ssim.mean()) < 0.9


@pytest.mark.slow
def test_the_recipe_on_permuted_labels_gives_maps_unlike_the_trained_ones(tmp_path) -> None:
    config = TrainConfig(epochs=2, batch_size=32, mode="baseline", bn_recalibration_batches=0)
    splits = prepare_data(config)
    splits = type(splits)(splits.name, splits.train.subset(torch.arange(800)), splits.test)
    execution = select_execution("cpu", "fp32")
    trainer = Trainer(
        build_model(config, splits).model,
        splits.train,
        splits.test,
        prototypes_for(splits.train),
        config,
        execution,
    )
    trainer.fit()
    result = label_randomisation_check(
        config, splits, trainer.extractor, execution, images=16, cache_dir=tmp_path
    )
    assert set(result) == {"spearman", "ssim"}
    assert result["ssim"] is not None and result["ssim"] < 0.8
