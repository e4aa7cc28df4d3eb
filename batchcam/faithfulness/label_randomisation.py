"""Adebayo et al.'s data randomisation test: do the maps survive training on permuted labels?

The same recipe trains the same architecture on the training images with their labels shuffled;
that model can only memorise. If its CAMs for the same images and targets look like the trained
model's, the maps describe the images (edges, blobs), not what was learnt from the labels. It costs
a second training run, so the report does not run it; call it where that budget exists.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
from torch import nn

from batchcam.cam.extractor import CamExtractor
from batchcam.data.dataset import ImageDataset
from batchcam.faithfulness.sanity import Similarity
from batchcam.faithfulness.similarity import spearman, ssim
from batchcam.modes import evaluating


def permuted_labels(dataset: ImageDataset, seed: int = 0) -> ImageDataset:
    """The same images with their labels shuffled among them (class counts kept)."""
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))
    return dataclasses.replace(dataset, labels=dataset.labels[order].clone())


def label_randomisation(
    train: Callable[[ImageDataset], nn.Module],
    train_data: ImageDataset,
    trained: CamExtractor,
    images: torch.Tensor,
    targets: torch.Tensor,
    *,
    seed: int = 0,
) -> Similarity:
    """Per image, Spearman ρ and SSIM between the trained model's CAMs and those of a model that
    ``train`` (the trained model's recipe) fits to ``train_data`` with permuted labels; lower passes."""
    randomised = train(permuted_labels(train_data, seed))
    twin = CamExtractor(randomised, trained.layer, trained.method_name, trained.postprocess)
    with evaluating(trained.model), evaluating(randomised):
        original = trained(images, targets).maps.detach().cpu()
        shuffled = twin(images, targets).maps.detach().cpu()
    return Similarity(spearman(original, shuffled), ssim(original, shuffled))
