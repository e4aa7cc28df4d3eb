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
from batchcam.faithfulness.road import DEFAULT_FRACTIONS, Order, road
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


# Images are assessed a chunk at a time, so that memory stays bounded for large images: ROAD alone
# holds nine imputed copies of a chunk. 2²⁰ values per chunk: the whole default subset at 28×28.
CHUNK_VALUES = 2**20
PERTURBATIONS = ("deletion", "insertion")
ROAD_ORDERS: tuple[Order, ...] = ("morf", "lerf")


@dataclass(frozen=True, eq=False)
class _Chunk:
    """What one chunk of the subset measured, per image: curves by name, and localisation values."""

    targets: torch.Tensor
    labels: torch.Tensor
    curves: dict[str, Curves]  # "deletion/map", "deletion/random", "deletion/uniform", "road_morf/map", …
    masks: dict[str, dict[str, torch.Tensor]]  # mask kind → measure → B values
    seconds: dict[str, float]


def assess(
    extractor: CamExtractor, dataset: ImageDataset, execution: Execution, settings: FaithfulnessSettings
) -> Assessment | None:
    """Deletion, insertion, ROAD, localisation where masks exist, sanity checks and input-space
    attribution on the masks; None when ``settings.images`` is 0 or the split is empty."""
    indices = select_subset(len(dataset), settings)
    if len(indices) == 0:
        return None
    started = time.perf_counter()
    generator = torch.Generator().manual_seed(settings.seed)
    per_image = dataset.in_channels * dataset.image_size[0] * dataset.image_size[1]
    chunks = [
        _measure_chunk(extractor, dataset, rows, execution, settings, generator)
        for rows in indices.split(max(1, CHUNK_VALUES // per_image))
    ]
    curves = {name: _concatenated([chunk.curves[name] for chunk in chunks]) for name in chunks[0].curves}
    targets, labels = torch.cat([c.targets for c in chunks]), torch.cat([c.labels for c in chunks])
    start = time.perf_counter()
    sanity = _sanity(extractor, dataset, indices, execution, settings, generator)
    seconds = {
        name: sum(chunk.seconds[name] for chunk in chunks)
        for name in ("deletion_insertion", "road", "localisation")
    }
    seconds["sanity"] = time.perf_counter() - start
    summary: dict[str, Any] = {
        "subset": {"size": len(indices), "seed": settings.seed, "indices": indices.tolist()},
        "target": "predicted",
        "accuracy_on_subset": float((targets == labels).float().mean()),
        "deletion": _perturbation_summary(
            curves, "deletion", better="lower", baseline="zero", steps=settings.steps
        ),
        "insertion": _perturbation_summary(
            curves, "insertion", better="higher", baseline="blur", steps=settings.steps
        ),
        "road": _road_summary(curves),
        "localisation": _localisation_summary(chunks),
        "sanity": sanity.summary,
        "seconds": {**seconds, "total": time.perf_counter() - started},
    }
    figure = {
        name: CurveSet(
            curves[f"{name}/map"].fractions.tolist(),
            {kind.split("/")[1]: _mean_curve(curves[kind]) for kind in curves if kind.startswith(f"{name}/")},
        )
        for name in (*PERTURBATIONS, *(f"road_{order}" for order in ROAD_ORDERS))
    }
    return Assessment(summary=summary, curves=figure, cascade=sanity.cascade)


def _measure_chunk(
    extractor: CamExtractor,
    dataset: ImageDataset,
    rows: torch.Tensor,
    execution: Execution,
    settings: FaithfulnessSettings,
    generator: torch.Generator,
) -> _Chunk:
    model = extractor.model
    images_u8, labels = dataset[rows]
    images = execution.model_input(images_u8)
    with evaluating(model):
        cams = extractor(images)
    maps, targets = cams.maps.detach(), cams.targets
    noise = random_maps(len(rows), dataset.image_size, generator).to(maps.device)
    steps = settings.steps
    started = time.perf_counter()
    curves = {
        "deletion/map": deletion(model, images, maps, targets, steps=steps, generator=generator),
        "deletion/random": deletion(model, images, noise, targets, steps=steps, generator=generator),
        "deletion/uniform": fade(model, images, targets, inserting=False, steps=steps, baseline="zero"),
        "insertion/map": insertion(model, images, maps, targets, steps=steps, generator=generator),
        "insertion/random": insertion(model, images, noise, targets, steps=steps, generator=generator),
        "insertion/uniform": fade(model, images, targets, inserting=True, steps=steps, baseline="blur"),
    }
    seconds = {"deletion_insertion": time.perf_counter() - started}
    started = time.perf_counter()
    for order in ROAD_ORDERS:
        for kind, ranking in (("map", maps), ("random", noise)):
            curves[f"road_{order}/{kind}"] = road(
                model, images, ranking, targets, order=order, generator=generator
            )
    seconds["road"] = time.perf_counter() - started
    started = time.perf_counter()
    masks = _localisation(model, dataset, rows, images, maps, noise, targets, settings)
    seconds["localisation"] = time.perf_counter() - started
    return _Chunk(targets.cpu(), labels, curves, masks, seconds)


def _concatenated(parts: list[Curves]) -> Curves:
    return Curves(parts[0].fractions, torch.cat([part.scores for part in parts]))


def _perturbation_summary(
    curves: dict[str, Curves], name: str, *, better: str, baseline: str, steps: int
) -> dict[str, Any]:
    scores = {kind: _average(curves[f"{name}/{kind}"].auc()) for kind in ("map", "random", "uniform")}
    sign = 1.0 if better == "higher" else -1.0
    return {
        "auc": scores,
        "better": better,
        "gain_over_random": sign * (scores["map"] - scores["random"]),
        "baseline": baseline,
        "steps": steps,
    }


def _road_summary(curves: dict[str, Curves]) -> dict[str, Any]:
    means = {
        order: {kind: _average(curves[f"road_{order}/{kind}"].mean()) for kind in ("map", "random")}
        for order in ROAD_ORDERS
    }
    combined = {kind: (means["lerf"][kind] - means["morf"][kind]) / 2 for kind in ("map", "random")}
    return {
        "morf": {**means["morf"], "better": "lower"},
        "lerf": {**means["lerf"], "better": "higher"},
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
    dataset: ImageDataset,
    indices: torch.Tensor,
    execution: Execution,
    settings: FaithfulnessSettings,
    generator: torch.Generator,
) -> _Sanity:
    few = execution.model_input(dataset[indices[: settings.sanity_images]][0])
    with evaluating(extractor.model):
        few_targets = extractor(few).targets
    num_classes = dataset.num_classes
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
    rows: torch.Tensor,
    images: torch.Tensor,
    maps: torch.Tensor,
    noise: torch.Tensor,
    targets: torch.Tensor,
    settings: FaithfulnessSettings,
) -> dict[str, dict[str, torch.Tensor]]:
    """Per mask kind and image: pointing, energy (and a random map's), and the share of input-space
    attribution inside the mask; ``mask_area`` is the share a map spread evenly would put there."""
    masks = {"object": dataset.object_masks, "decoy": dataset.decoy_masks}
    present = {name: mask[rows] for name, mask in masks.items() if mask is not None}
    if not present:
        return {}
    gradients = input_gradients(model, images, targets).cpu()
    integrated = integrated_gradients(model, images, targets, steps=settings.integrated_gradients_steps).cpu()
    cams, random = maps.cpu(), noise.cpu()
    return {
        name: {
            "mask_area": _area(mask),
            "pointing/map": pointing_game(cams, mask),
            "pointing/random": pointing_game(random, mask),
            "energy/map": energy_pointing_game(cams, mask),
            "energy/random": energy_pointing_game(random, mask),
            "input_gradients": mask_share(gradients, mask),
            "integrated_gradients": mask_share(integrated, mask),
        }
        for name, mask in present.items()
    }


def _localisation_summary(chunks: list[_Chunk]) -> dict[str, Any] | None:
    if not chunks[0].masks:
        return None
    summary: dict[str, Any] = {}
    for name in chunks[0].masks:
        values = {
            key: torch.cat([chunk.masks[name][key] for chunk in chunks]) for key in chunks[0].masks[name]
        }
        summary[name] = {
            "mask_area": _mean(values["mask_area"]),
            "pointing": {"map": _mean(values["pointing/map"]), "random": _mean(values["pointing/random"])},
            "energy": {"map": _mean(values["energy/map"]), "random": _mean(values["energy/random"])},
            "input_attribution_share": {
                "input_gradients": _mean(values["input_gradients"]),
                "integrated_gradients": _mean(values["integrated_gradients"]),
            },
        }
    return summary


def _area(mask: torch.Tensor) -> torch.Tensor:
    """Per image, the mask's share of the image; NaN for an empty mask (no answer there either)."""
    share = mask.flatten(1).float().mean(dim=1)
    return torch.where(share > 0, share, torch.nan)


def _similarity(similarity: Similarity) -> dict[str, float | int | None]:
    """Means over images; ρ is undefined where a map is constant (a randomised model often gives
    all-zero CAMs), so ``spearman_images`` says how many images it is the mean of."""
    return {
        "spearman": _mean(similarity.spearman),
        "spearman_images": int((~similarity.spearman.isnan()).sum()),
        "ssim": _mean(similarity.ssim),
    }


def _average(values: torch.Tensor) -> float:
    return float(values.double().mean())


def _mean(values: torch.Tensor) -> float | None:
    """Mean over images with an answer (NaN = none); None (JSON null) when no image has one."""
    value = float(values.double().nanmean())
    return None if math.isnan(value) else value


def _mean_curve(curves: Curves) -> list[float]:
    return curves.scores.double().mean(dim=0).tolist()
