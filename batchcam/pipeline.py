"""A whole training job: data → prototypes → model → training → evaluation → a run directory.

The CLI and the training workers both run this; they differ only in their callbacks (progress
bar vs database heartbeat) and in where checkpoints go.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn

import batchcam
from batchcam.artifacts import EXAMPLES_PER_CLASS, CamExamples, RunFiles, write_run
from batchcam.cam.extractor import CamExtractor
from batchcam.data.dataset import DatasetSplits, ImageDataset
from batchcam.data.registry import load_dataset
from batchcam.data.resize import resize_splits
from batchcam.data.validation import holdout_validation
from batchcam.device import Execution, select_execution
from batchcam.errors import BatchCamError, ConfigError
from batchcam.evaluation import Evaluation, evaluate
from batchcam.faithfulness.assessment import Assessment, FaithfulnessSettings, assess, select_subset
from batchcam.faithfulness.label_randomisation import label_randomisation
from batchcam.models.initial_weights import InitialWeightsReport, load_initial_weights
from batchcam.models.registry import build, spec_of
from batchcam.modes import evaluating
from batchcam.prototypes import PrototypeCache, class_median_prototypes, class_prototypes
from batchcam.spec.model_spec import ModelSpec
from batchcam.spec.names import PrototypeMask, PrototypeStatistic
from batchcam.spec.training import TrainConfig
from batchcam.training.batches import EpochBatchSampler
from batchcam.training.callbacks import Callback
from batchcam.training.state import TrainingState
from batchcam.training.trainer import Outcome, Trainer

log = logging.getLogger(__name__)

CACHE_DIR_ENV = "BATCHCAM_CACHE_DIR"
PROTOTYPE_BATCH = 4096


@dataclass(frozen=True)
class RunOutput:
    outcome: Outcome
    files: RunFiles
    report: dict[str, Any] | None  # None when the run stopped before finishing (cancel, time limit)
    final_state: TrainingState
    initial_weights: InitialWeightsReport | None = None  # what --initial-weights loaded, if given


def default_cache_dir() -> Path:
    return Path(os.environ.get(CACHE_DIR_ENV) or Path.home() / ".cache" / "batchcam")


def prepare_data(
    config: TrainConfig,
    *,
    splits: DatasetSplits | None = None,
    data_dir: Path | None = None,
    download: bool = True,
) -> DatasetSplits:
    """The configured built-in dataset (or the given splits), resized when ``image_size`` asks.

    ``evaluation_split="validation"`` evaluates on a split held out of the training images instead
    of the test split (for choosing settings; see ``batchcam.data.validation``).
    """
    validation = config.evaluation_split == "validation"
    if splits is None:
        splits = load_dataset(
            config.dataset, data_dir=data_dir, download=download, seed=config.seed, validation=validation
        )
    elif validation:
        splits = holdout_validation(splits)
    if config.image_size is not None and splits.train.image_size != (config.image_size, config.image_size):
        splits = resize_splits(splits, config.image_size)
    return splits


def prototypes_for(
    dataset: ImageDataset,
    cache: PrototypeCache | None = None,
    mask: PrototypeMask = "none",
    statistic: PrototypeStatistic = "mean",
) -> torch.Tensor:
    """Class prototypes of a training split: each pixel's mean (one streaming pass) or median over
    the class's images, cached by fingerprint.

    ``mask="decoy"`` leaves each image's decoy patch out of its class mean (decoy datasets only).
    """
    key = _prototype_key(dataset, mask, statistic)
    cached = cache.load(key) if cache else None
    if cached is not None:
        return cached
    excluded = dataset.decoy_masks if mask == "decoy" else None
    if mask == "decoy" and excluded is None:
        raise ConfigError(
            "prototype_mask 'decoy' needs a dataset with planted decoy patches (the decoy-… "
            "datasets); this one has none. Accepted here: prototype_mask 'none'"
        )
    if statistic == "median":
        prototypes = class_median_prototypes(dataset.images, dataset.labels, dataset.num_classes, excluded)
    else:
        sampler = EpochBatchSampler(len(dataset), PROTOTYPE_BATCH, seed=0, epoch=0)
        batches = (
            dataset[rows] if excluded is None else (*dataset[rows], excluded[rows]) for rows in sampler
        )
        prototypes = class_prototypes(batches, dataset.num_classes)
    if cache:
        cache.store(key, prototypes)
    return prototypes


def _prototype_key(dataset: ImageDataset, mask: PrototypeMask, statistic: PrototypeStatistic) -> str:
    variant = "" if mask == "none" else f":without-{mask}"
    variant += "" if statistic == "mean" else f":{statistic}"
    if not variant:
        return dataset.fingerprint  # the key of every cache written before masks existed
    return hashlib.sha256(f"{dataset.fingerprint}{variant}".encode()).hexdigest()


@dataclass(frozen=True)
class BuiltModel:
    model: nn.Module
    spec: ModelSpec
    initial_weights: InitialWeightsReport | None  # None without config.initial_weights


def build_model(config: TrainConfig, splits: DatasetSplits) -> BuiltModel:
    """A seeded, freshly initialised model (optionally from initial weights) and its spec."""
    torch.manual_seed(config.seed)
    height, width = splits.train.image_size
    if height != width:
        raise ConfigError(f"images must be square, got {height}×{width}; set image_size")
    model = build(config.model, splits.train.num_classes, splits.train.in_channels, height)
    loaded = load_initial_weights(model, Path(config.initial_weights)) if config.initial_weights else None
    return BuiltModel(model, spec_of(model, splits.class_names, config.target_layer), loaded)


def train_and_report(
    config: TrainConfig,
    out_dir: Path,
    *,
    splits: DatasetSplits | None = None,
    callbacks: Sequence[Callback] = (),
    resume: TrainingState | None = None,
    data_dir: Path | None = None,
    download: bool = True,
    cache_dir: Path | None = None,
    pictures: bool = True,
    on_ready: Callable[[], None] | None = None,
) -> RunOutput:
    """Trains, and when training completes evaluates and writes the run directory ``out_dir``.

    ``pictures=False`` writes weights, prototypes and the report without the PNGs. ``on_ready`` is
    called once data, model, device and CAM layer have all been checked, just before training (the
    CLI clears a run it replaces there, so a bad option never costs the previous run).
    """
    started = time.perf_counter()
    files = RunFiles(out_dir)
    splits = prepare_data(config, splits=splits, data_dir=data_dir, download=download)
    cache = PrototypeCache(cache_dir or default_cache_dir())
    prototypes = prototypes_for(splits.train, cache, config.prototype_mask, config.prototype_statistic)
    built = build_model(config, splits)
    execution = select_execution(config.device, config.precision)
    trainer = Trainer(built.model, splits.train, splits.test, prototypes, config, execution, callbacks)
    if on_ready is not None:
        on_ready()
    result = trainer.fit(resume)
    if result.outcome != "completed":
        return RunOutput(result.outcome, files, None, result.state, built.initial_weights)
    evaluation = evaluate(trainer.extractor, splits.test, prototypes, execution)
    examples = cam_examples(trainer.extractor, splits.test, execution)
    assessment = assess_faithfulness(trainer.extractor, splits.test, execution, config.faithfulness_images)
    report = build_report(
        config, built, splits, execution, trainer.extractor, evaluation, result.state, started
    )
    report["targets"] = trainer.targets.describe()
    report["faithfulness"] = assessment.summary if isinstance(assessment, Assessment) else assessment
    write_run(
        files,
        trainer.model,
        built.spec,
        prototypes,
        evaluation,
        result.state.history,
        splits.test,
        examples,
        report,
        assessment=assessment if isinstance(assessment, Assessment) else None,
        pictures=pictures,
    )
    return RunOutput("completed", files, files.read_report(), result.state, built.initial_weights)


def assess_faithfulness(
    extractor: CamExtractor, test_data: ImageDataset, execution: Execution, images: int
) -> Assessment | dict[str, str] | None:
    """The report's assessment; if it cannot be made (out of memory, images too small for a metric)
    the report says why in ``{"error": …}``: a trained model is never lost to its assessment."""
    try:
        return assess(extractor, test_data, execution, FaithfulnessSettings(images=images))
    except (BatchCamError, torch.cuda.OutOfMemoryError) as error:
        log.warning("the faithfulness assessment failed: %s", error)
        return {"error": f"the faithfulness assessment could not be made: {error}"}


def label_randomisation_check(
    config: TrainConfig,
    splits: DatasetSplits,
    trained: CamExtractor,
    execution: Execution,
    *,
    images: int = 32,
    cache_dir: Path | None = None,
) -> dict[str, float | None]:
    """Adebayo's data randomisation test with ``config``'s own recipe: a second run of training on
    permuted labels, then the CAM similarity on the first ``images`` of the report's subset (lower
    passes). Costs as much as the training did; not part of ``train_and_report``."""

    def train(shuffled: ImageDataset) -> nn.Module:
        prototypes = prototypes_for(shuffled, PrototypeCache(cache_dir or default_cache_dir()))
        twin = build_model(config, DatasetSplits(splits.name, shuffled, splits.test)).model
        trainer = Trainer(twin, shuffled, splits.test, prototypes, config, execution)
        trainer.fit()
        return trainer.model

    subset = select_subset(len(splits.test), FaithfulnessSettings(images=images))
    batch = execution.model_input(splits.test[subset][0])
    with evaluating(trained.model):
        targets = trained(batch).targets
    similarity = label_randomisation(train, splits.train, trained, batch, targets, seed=config.seed)
    rho = float(similarity.spearman.nanmean())  # NaN: every map of one of the models was constant
    return {"spearman": None if math.isnan(rho) else rho, "ssim": float(similarity.ssim.mean())}


def cam_examples(extractor: CamExtractor, test_data: ImageDataset, execution: Execution) -> CamExamples:
    """The first few test images of every class with CAMs for the predicted class."""
    indices = torch.cat(
        [
            torch.nonzero(test_data.labels == c).flatten()[:EXAMPLES_PER_CLASS]
            for c in range(test_data.num_classes)
        ]
    )
    images, labels = test_data[indices]
    with evaluating(extractor.model), execution.autocast():
        result = extractor(execution.model_input(images))
    names = test_data.class_names
    predicted = result.targets.cpu().tolist()
    titles = [f"{names[int(t)]} → {names[p]}" for t, p in zip(labels.tolist(), predicted, strict=True)]
    return CamExamples(images=images, cams=result.maps.detach().cpu(), titles=titles)


def build_report(
    config: TrainConfig,
    built: BuiltModel,
    splits: DatasetSplits,
    execution: Execution,
    extractor: CamExtractor,
    evaluation: Evaluation,
    state: TrainingState,
    started: float,
) -> dict[str, Any]:
    epochs = state.history
    return {
        "format": "batchcam-report-v1",
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": {
            "batchcam": batchcam.__version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "config": config.to_dict(),
        "model": built.spec.to_dict(),
        "initial_weights": None if built.initial_weights is None else built.initial_weights.summary(),
        "dataset": {
            "name": splits.name,
            "fingerprint": splits.fingerprint,
            "train_images": len(splits.train),
            "test_images": len(splits.test),
            "image_size": list(splits.train.image_size),
            "channels": splits.train.in_channels,
            "class_names": list(splits.class_names),
        },
        "execution": execution.describe(),
        "cam": {
            "layer": extractor.layer,
            "method": extractor.method_name,
            "postprocess": extractor.postprocess.describe(),
        },
        "test": evaluation.summary(),
        "misclassified": [
            {
                "index": item.index,
                "true_label": item.true_label,
                "predicted_label": item.predicted_label,
                "confidence": item.confidence,
                "distance_to_true": item.distance_to_true,
                "distance_to_predicted": item.distance_to_predicted,
            }
            for item in evaluation.misclassified
        ],
        "history": epochs,
        "timings": {
            "total_seconds": time.perf_counter() - started,
            "training_seconds": state.elapsed_s,
            "seconds_per_epoch": [entry["epoch_seconds"] for entry in epochs],
            "cam_ms_per_image": 1000 * evaluation.seconds_per_image,
        },
    }
