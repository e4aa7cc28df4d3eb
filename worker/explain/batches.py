"""Explaining the usable images of a request in batches, and storing their maps in shards.

Each batch goes through the ``Explainer`` in one call (one forward and one gradient pass). Its CAMs
and the images as the model saw them are stored as ``.npz`` shards small enough that serving one
heatmap later reads little (see ``persistence.explanations.objects``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from batchcam.errors import BatchCamError
from batchcam.explain import Explainer, Explanation
from batchcam.metrics import distance
from batchcam.spec.names import METRICS
from persistence.explanations.objects import NPZ_CONTENT_TYPE, maps_key, maps_npz
from persistence.objects import ObjectStore
from worker.explain.inputs import InputItem, ItemError
from worker.explain.threads import TorchThreads

DEFAULT_BATCH_SIZE = 256
# Faithfulness metrics cost about 150 forward passes (and ROAD's imputations) per image: batches of
# at most 16 images of 32×32 values keep the time between two lease renewals (one per batch) far
# below the lease; larger images go fewer at a time, down to one.
SCORED_BATCH_VALUES = 16 * 32 * 32
TARGET_SHARD_BYTES = 8 * 1024 * 1024
SMALL_BATCHES_ONE_THREAD = TorchThreads()


@dataclass(frozen=True, eq=False)
class ReadyItem:
    position: int  # in the request
    image: torch.Tensor  # uint8 C×H×W at the model's input spec
    target: int | None
    true_label: int | None


@dataclass(frozen=True)
class ShardWriter:
    """Stores one shard and says under which key (written once; the attempt keeps retries apart)."""

    store: ObjectStore
    tenant_id: uuid.UUID
    explanation_id: uuid.UUID
    attempt: int

    def __call__(self, shard: int, cams: np.ndarray, images: np.ndarray) -> str:
        key = maps_key(self.tenant_id, self.explanation_id, self.attempt, shard)
        self.store.put(key, maps_npz(cams, images), content_type=NPZ_CONTENT_TYPE)
        return key


@dataclass(frozen=True)
class ExplainedChunk:
    items: Sequence[ReadyItem]
    images: torch.Tensor  # uint8 n×C×H×W, as explained
    explanations: list[Explanation]
    to_true: dict[int, dict[str, float]]  # position → distance to the true class's prototype


def explained_chunks(
    explainer: Explainer,
    items: Sequence[ReadyItem],
    method: str,
    batch_size: int = DEFAULT_BATCH_SIZE,
    metrics: Sequence[str] = (),
    threads: TorchThreads = SMALL_BATCHES_ONE_THREAD,
) -> Iterator[ExplainedChunk]:
    """The items explained one chunk (one forward and gradient pass) at a time."""
    if metrics and items:
        batch_size = min(batch_size, max(1, SCORED_BATCH_VALUES // items[0].image.numel()))
    for batch in chunks(items, batch_size):
        images = torch.stack([item.image for item in batch])
        with threads.for_batch(len(batch)):
            explanations = explainer.explain(images, [item.target for item in batch], method, metrics)
        yield ExplainedChunk(batch, images, explanations, distances_to_true(explainer, batch, explanations))


def explain_in_batches(
    explainer: Explainer,
    items: Sequence[ReadyItem],
    method: str,
    write_shard: Callable[[int, np.ndarray, np.ndarray], str],
    batch_size: int = DEFAULT_BATCH_SIZE,
    after_batch: Callable[[], None] = lambda: None,
    metrics: Sequence[str] = (),
    threads: TorchThreads = SMALL_BATCHES_ONE_THREAD,
) -> dict[int, dict[str, Any]]:
    """position → stored result, for every item. ``after_batch`` runs once each batch is stored
    (the runner renews its lease there; it may raise to stop)."""
    results: dict[int, dict[str, Any]] = {}
    shard_size = items_per_shard(items, batch_size)
    shard = 0
    for chunk in explained_chunks(explainer, items, method, batch_size, metrics, threads):
        for start in range(0, len(chunk.items), shard_size):
            part = slice(start, start + shard_size)
            cams = torch.stack([e.cam for e in chunk.explanations[part]]).numpy()
            key = write_shard(shard, cams, chunk.images[part].numpy())
            shard += 1
            for slot, (item, explanation) in enumerate(
                zip(chunk.items[part], chunk.explanations[part], strict=True)
            ):
                results[item.position] = item_result(explanation, chunk.to_true.get(item.position), slot)
                results[item.position]["maps_key"] = key
        after_batch()
    return results


def conform_all(
    explainer: Explainer, inputs: list[InputItem], targets: list[int | None]
) -> tuple[list[ReadyItem], dict[int, ItemError]]:
    """Every usable image at the model's input spec; the others with the reason they are not."""
    ready: list[ReadyItem] = []
    errors: dict[int, ItemError] = {}
    for position, (item, target) in enumerate(zip(inputs, targets, strict=True)):
        if item.image is None:
            errors[position] = item.error or ItemError("input_missing", "the image could not be read")
            continue
        try:
            image = explainer.conform(item.image)
        except BatchCamError as error:
            errors[position] = ItemError(error.code, error.message)
            continue
        ready.append(ReadyItem(position, image, target, item.true_label))
    return ready, errors


def items_per_shard(items: Sequence[ReadyItem], batch_size: int) -> int:
    if not items:
        return batch_size
    channels, height, width = items[0].image.shape
    bytes_per_item = height * width * (4 + channels)  # float32 CAM + uint8 image
    return max(1, min(batch_size, TARGET_SHARD_BYTES // bytes_per_item))


def chunks(items: Sequence[ReadyItem], size: int) -> Iterator[Sequence[ReadyItem]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def distances_to_true(
    explainer: Explainer, batch: Sequence[ReadyItem], explanations: list[Explanation]
) -> dict[int, dict[str, float]]:
    """For dataset images: how far each CAM is from its true class's prototype, per metric."""
    num_classes = len(explainer.prototypes)
    labelled = [
        (item.position, item.true_label, explanation.cam)
        for item, explanation in zip(batch, explanations, strict=True)
        if item.true_label is not None and 0 <= item.true_label < num_classes
    ]
    if not labelled:
        return {}
    cams = torch.stack([cam for _, _, cam in labelled])
    prototypes = explainer.prototypes[[label for _, label, _ in labelled]]
    per_metric = {metric: distance(cams, prototypes, metric).tolist() for metric in METRICS}
    return {
        position: {metric: float(values[row]) for metric, values in per_metric.items()}
        for row, (position, _, _) in enumerate(labelled)
    }


def item_result(explanation: Explanation, to_true: dict[str, float] | None, slot: int) -> dict[str, Any]:
    """What the row records of one explained image (the caller adds where its maps are)."""
    return {
        "predicted": explanation.predicted,
        "probabilities": explanation.probabilities,
        "target": explanation.target,
        "distance_to_predicted": explanation.distance_to_predicted,
        "distance_to_target": explanation.distance_to_target,
        "distance_to_true": to_true,
        "faithfulness": explanation.faithfulness,
        "slot": slot,
    }
