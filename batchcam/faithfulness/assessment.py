"""A trained model's faithfulness, measured once on a fixed, recorded subset of its test split.

This is the ``faithfulness`` section of ``report.json`` and the data of ``faithfulness.png``. Every
number is measured on the CAM of the *predicted* class (what the model acted on), next to the same
measure for a random map, and for deletion/insertion a uniform map, on the same images.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from batchcam.cam.extractor import CamExtractor
from batchcam.data.dataset import ImageDataset
from batchcam.device import Execution
from batchcam.errors import ConfigError
from batchcam.faithfulness.attribution import input_gradients, integrated_gradients
from batchcam.faithfulness.curves import Curves
from batchcam.faithfulness.localisation import energy_pointing_game, mask_share, pointing_game
from batchcam.faithfulness.ordering import random_maps
from batchcam.faithfulness.perturbation import deletion, fade, insertion
from batchcam.faithfulness.road import DEFAULT_FRACTIONS, road
from batchcam.faithfulness.sanity import Similarity, cascading_randomisation, random_logit
from batchcam.modes import evaluating


@dataclass(frozen=True)
class FaithfulnessSettings:
    """How much of the test split to assess and how finely (``images=0`` skips the assessment)."""

    images: int = 256
    steps: int = 20  # deletion/insertion steps
    sanity_images: int = 32  # images for the randomisation checks (one CAM pass per module)
    integrated_gradients_steps: int = 16
    seed: int = 0

    def __post_init__(self) -> None:
        for name, low in (
            ("images", 0),
            ("steps", 1),
            ("sanity_images", 1),
            ("integrated_gradients_steps", 1),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= 100_000:
                raise ConfigError(
                    f"faithfulness {name} must be a whole number in [{low}, 100000], got {value!r}"
                )


@dataclass(frozen=True, eq=False)
class CurveSet:
    """Mean curves over the subset, for the figure: the map's and its references'."""

    fractions: list[float]
    curves: dict[str, list[float]]  # "map", "random", maybe "uniform"


@dataclass(frozen=True, eq=False)
class Assessment:
    summary: dict[str, Any]  # report.json's "faithfulness"
    curves: dict[str, CurveSet] = field(
        default_factory=dict
    )  # "deletion", "insertion", "road_morf", "road_lerf"
    cascade: list[tuple[str, float | None, float | None]] = field(
        default_factory=list
    )  # (module, ρ, SSIM) per step


def select_subset(size: int, settings: FaithfulnessSettings) -> torch.Tensor:
    """The assessed test images: ``settings.images`` positions drawn with ``settings.seed``, sorted."""
    generator = torch.Generator().manual_seed(settings.seed)
    return torch.randperm(size, generator=generator)[: settings.images].sort().values


def assess(
    extractor: CamExtractor, dataset: ImageDataset, execution: Execution, settings: FaithfulnessSettings
) -> Assessment | None:
    """Deletion, insertion, ROAD, localisation where masks exist, sanity checks and input-space
    attribution on the masks; None when ``settings.images`` is 0 or the split is empty."""
    indices = select_subset(len(dataset), settings)
    if len(indices) == 0:
        return None
    started = time.perf_counter()
    model = extractor.model
    images_u8, labels = dataset[indices]
    images = execution.model_input(images_u8)
    with evaluating(model):
        cams = extractor(images)
    maps, targets = cams.maps.detach(), cams.targets
    generator = torch.Generator().manual_seed(settings.seed)
    noise = random_maps(len(indices), dataset.image_size, generator).to(maps.device)
    timings: dict[str, float] = {}

    def timed(name: str, start: float) -> None:
        timings[name] = time.perf_counter() - start

    start = time.perf_counter()
    kinds = {
        "deletion": (
            deletion(model, images, maps, targets, steps=settings.steps, generator=generator),
            deletion(model, images, noise, targets, steps=settings.steps, generator=generator),
            fade(model, images, targets, inserting=False, steps=settings.steps, baseline="zero"),
        ),
        "insertion": (
            insertion(model, images, maps, targets, steps=settings.steps, generator=generator),
            insertion(model, images, noise, targets, steps=settings.steps, generator=generator),
            fade(model, images, targets, inserting=True, steps=settings.steps, baseline="blur"),
        ),
    }
    timed("deletion_insertion", start)
    start = time.perf_counter()
    roads = {
        order: (
            road(model, images, maps, targets, order=order, generator=generator),
            road(model, images, noise, targets, order=order, generator=generator),
        )
        for order in ("morf", "lerf")
    }
    timed("road", start)
    start = time.perf_counter()
    sanity = _sanity(extractor, images, targets, dataset.num_classes, settings, generator)
    timed("sanity", start)
    start = time.perf_counter()
    localisation = _localisation(model, dataset, indices, images, maps, noise, targets, settings)
    timed("localisation", start)

    summary: dict[str, Any] = {
        "subset": {"size": len(indices), "seed": settings.seed, "indices": indices.tolist()},
        "target": "predicted",
        "accuracy_on_subset": float((targets.cpu() == labels).float().mean()),
        "deletion": _perturbation_summary(
            *kinds["deletion"], better="lower", baseline="zero", steps=settings.steps
        ),
        "insertion": _perturbation_summary(
            *kinds["insertion"], better="higher", baseline="blur", steps=settings.steps
        ),
        "road": _road_summary(roads),
        "localisation": localisation,
        "sanity": sanity.summary,
        "seconds": {**timings, "total": time.perf_counter() - started},
    }
    curves = {
        name: CurveSet(
            mapped.fractions.tolist(),
            {"map": _mean_curve(mapped), "random": _mean_curve(random), "uniform": _mean_curve(uniform)},
        )
        for name, (mapped, random, uniform) in kinds.items()
    } | {
        f"road_{order}": CurveSet(
            mapped.fractions.tolist(), {"map": _mean_curve(mapped), "random": _mean_curve(random)}
        )
        for order, (mapped, random) in roads.items()
    }
    return Assessment(summary=summary, curves=curves, cascade=sanity.cascade)


def _perturbation_summary(
    mapped: Curves, random: Curves, uniform: Curves, *, better: str, baseline: str, steps: int
) -> dict[str, Any]:
    scores = {
        "map": _average(mapped.auc()),
        "random": _average(random.auc()),
        "uniform": _average(uniform.auc()),
    }
    sign = 1.0 if better == "higher" else -1.0
    return {
        "auc": scores,
        "better": better,
        "gain_over_random": sign * (scores["map"] - scores["random"]),
        "baseline": baseline,
        "steps": steps,
    }


def _road_summary(roads: dict[str, tuple[Curves, Curves]]) -> dict[str, Any]:
    (morf, morf_random), (lerf, lerf_random) = roads["morf"], roads["lerf"]
    morf_scores = {"map": _average(morf.mean()), "random": _average(morf_random.mean())}
    lerf_scores = {"map": _average(lerf.mean()), "random": _average(lerf_random.mean())}
    combined = {kind: (lerf_scores[kind] - morf_scores[kind]) / 2 for kind in ("map", "random")}
    return {
        "morf": {**morf_scores, "better": "lower"},
        "lerf": {**lerf_scores, "better": "higher"},
        "combined": {**combined, "better": "higher"},
        "fractions": list(DEFAULT_FRACTIONS),
        "imputation": "noisy linear (σ = 0.01)",
    }


@dataclass(frozen=True, eq=False)
class _Sanity:
    summary: dict[str, Any]
    cascade: list[tuple[str, float | None, float | None]]


def _sanity(
    extractor: CamExtractor,
    images: torch.Tensor,
    targets: torch.Tensor,
    num_classes: int,
    settings: FaithfulnessSettings,
    generator: torch.Generator,
) -> _Sanity:
    few, few_targets = images[: settings.sanity_images], targets[: settings.sanity_images]
    steps = cascading_randomisation(
        extractor.model,
        few,
        few_targets,
        layer=extractor.layer,
        method=extractor.method_name,
        postprocess=extractor.postprocess,
        seed=settings.seed,
    )
    cascade = [(step.module, _mean(step.similarity.spearman), _mean(step.similarity.ssim)) for step in steps]
    logit = random_logit(extractor, few, few_targets, num_classes, generator) if num_classes > 1 else None
    return _Sanity(
        summary={
            "images": len(few),
            "better": "lower",
            "cascading_randomisation": [
                {"module": module, "spearman": rho, "ssim": similarity} for module, rho, similarity in cascade
            ],
            "fully_randomised": _similarity(steps[-1].similarity) if steps else None,
            "random_logit": None if logit is None else _similarity(logit),
        },
        cascade=cascade,
    )


def _localisation(
    model: torch.nn.Module,
    dataset: ImageDataset,
    indices: torch.Tensor,
    images: torch.Tensor,
    maps: torch.Tensor,
    noise: torch.Tensor,
    targets: torch.Tensor,
    settings: FaithfulnessSettings,
) -> dict[str, Any] | None:
    """Per mask kind: pointing, energy (and what a random map scores), and the share of input-space
    attribution inside the mask; ``mask_area`` is the share a map spread evenly would put there."""
    masks = {"object": dataset.object_masks, "decoy": dataset.decoy_masks}
    present = {name: mask[indices] for name, mask in masks.items() if mask is not None}
    if not present:
        return None
    gradients = input_gradients(model, images, targets).cpu()
    integrated = integrated_gradients(model, images, targets, steps=settings.integrated_gradients_steps).cpu()
    cams, random = maps.cpu(), noise.cpu()
    return {
        name: {
            "mask_area": _mean(mask.flatten(1).float().mean(dim=1)),
            "pointing": {
                "map": _mean(pointing_game(cams, mask)),
                "random": _mean(pointing_game(random, mask)),
            },
            "energy": {
                "map": _mean(energy_pointing_game(cams, mask)),
                "random": _mean(energy_pointing_game(random, mask)),
            },
            "input_attribution_share": {
                "input_gradients": _mean(mask_share(gradients, mask)),
                "integrated_gradients": _mean(mask_share(integrated, mask)),
            },
        }
        for name, mask in present.items()
    }


def _similarity(similarity: Similarity) -> dict[str, float | None]:
    return {"spearman": _mean(similarity.spearman), "ssim": _mean(similarity.ssim)}


def _average(values: torch.Tensor) -> float:
    return float(values.double().mean())


def _mean(values: torch.Tensor) -> float | None:
    """Mean over images with an answer (NaN = none); None (JSON null) when no image has one."""
    value = float(values.double().nanmean())
    return None if math.isnan(value) else value


def _mean_curve(curves: Curves) -> list[float]:
    return curves.scores.double().mean(dim=0).tolist()
