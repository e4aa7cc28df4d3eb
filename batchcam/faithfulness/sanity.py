"""Sanity checks (Adebayo et al. 2018): a map that explains the model must change with the model.

- Cascading model-parameter randomisation: re-initialise the model's parameterised modules one at a
  time from the output back to the input (cumulatively, on a copy) and compare each step's maps with
  the original ones. Maps that stay alike describe the image, not the trained model.
- Random logit (Sixt et al. 2020, the label side of the check without retraining): compare the map
  of the explained class with the map of a random other class. Maps that do not depend on the class
  asked for cannot explain a class decision.
Both report per image Spearman's ρ (ties averaged) and SSIM: lower means the check is passed.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from batchcam.cam.extractor import CamExtractor
from batchcam.cam.postprocess import DEFAULT_POSTPROCESS, CamPostprocess
from batchcam.errors import ConfigError
from batchcam.faithfulness.similarity import spearman, ssim
from batchcam.modes import evaluating


@dataclass(frozen=True, eq=False)
class Similarity:
    """Per image: how alike two maps of it are."""

    spearman: torch.Tensor  # B, NaN where a map is constant
    ssim: torch.Tensor  # B


@dataclass(frozen=True, eq=False)
class RandomisationStep:
    module: str  # the module re-initialised at this step (every module after it already was)
    similarity: Similarity


def parameterised_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Modules that own parameters, output side first (the reverse of registration order)."""
    owning = [
        (name, module)
        for name, module in model.named_modules()
        if any(True for _ in module.parameters(recurse=False))
    ]
    return owning[::-1]


def cascading_randomisation(
    model: nn.Module,
    images: torch.Tensor,
    targets: torch.Tensor,
    *,
    layer: str | None = None,
    method: str = "gradcam",
    postprocess: CamPostprocess = DEFAULT_POSTPROCESS,
    seed: int = 0,
) -> list[RandomisationStep]:
    """One step per parameterised module, output side first; ``model`` itself is not changed.

    The randomised copy lives on the CPU and draws its new weights from the CPU generator alone,
    seeded here and restored after: no device's random state (the caller's) changes.
    """
    original = _maps(CamExtractor(model, layer, method, postprocess), images, targets)
    randomised = copy.deepcopy(model).cpu()
    extractor = CamExtractor(randomised, layer, method, postprocess)
    images, targets = images.cpu(), targets.cpu()
    steps = []
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        for name, module in parameterised_modules(randomised):
            _reinitialise(module)
            maps = _maps(extractor, images, targets)
            steps.append(RandomisationStep(name, Similarity(spearman(original, maps), ssim(original, maps))))
    return steps


def random_logit(
    extractor: CamExtractor,
    images: torch.Tensor,
    targets: torch.Tensor,
    num_classes: int,
    generator: torch.Generator | None = None,
) -> Similarity:
    """Maps for ``targets`` against maps for a uniformly drawn other class, per image."""
    if num_classes < 2:
        raise ConfigError("the random-logit check needs at least two classes")
    offsets = torch.randint(1, num_classes, targets.shape, generator=generator).to(targets.device)
    others = (targets + offsets) % num_classes
    explained, other = _maps(extractor, images, targets), _maps(extractor, images, others)
    return Similarity(spearman(explained, other), ssim(explained, other))


def _maps(extractor: CamExtractor, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    with evaluating(extractor.model):
        return extractor(images, targets).maps.detach().cpu()


def _reinitialise(module: nn.Module) -> None:
    reset = getattr(module, "reset_parameters", None)
    if callable(reset):
        reset()  # the module's own initialisation (BatchNorm also forgets its statistics)
        return
    with torch.no_grad():
        for parameter in module.parameters(recurse=False):
            parameter.normal_(0.0, 0.02)  # timm's default for parameters without an initialiser
