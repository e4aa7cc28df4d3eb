"""The explain worker's warm models: a bounded LRU of loaded ``Explainer``s, keyed by model id.

Models are immutable, so an entry never goes stale; the least recently used one is dropped when the
cache is full. One instance lives per worker process (``worker.tasks`` owns it). Explanations run
one at a time per process (an explain worker runs one task at a time, one process per GPU).
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from batchcam.explain import Explainer
from batchcam.spec.run_files import MODEL_FILE, PROTOTYPES_FILE
from persistence.models import Model
from persistence.objects import ObjectStore
from worker.bounded_cache import BoundedCache

DEFAULT_CAPACITY = 4


@dataclass(frozen=True)
class StoredModel:
    """Where a trained model's weights and prototypes are in the object store."""

    model_id: uuid.UUID
    weights_key: str
    prototypes_key: str


class ModelArtifactsMissingError(Exception):
    """The model row lacks its weights or prototypes: nothing to explain with."""


def stored_model(model: Model) -> StoredModel:
    weights, prototypes = model.artifacts.get(MODEL_FILE), model.artifacts.get(PROTOTYPES_FILE)
    if not isinstance(weights, str) or not isinstance(prototypes, str):
        raise ModelArtifactsMissingError(f"model {model.id} has no stored weights or prototypes")
    return StoredModel(model.id, weights, prototypes)


class ExplainerCache:
    def __init__(self, load: Callable[[StoredModel], Explainer], capacity: int = DEFAULT_CAPACITY) -> None:
        self._load = load
        self._cache: BoundedCache[uuid.UUID, Explainer] = BoundedCache(capacity, "models")

    def for_model(self, model_id: uuid.UUID, find: Callable[[], StoredModel]) -> Explainer:
        """The model's explainer; ``find`` (a database read of where it is stored) runs only on a miss."""
        return self._cache.get(model_id, lambda: self._load(find()))

    @property
    def loads(self) -> int:
        """How many times a model was loaded (misses), for metrics and tests."""
        return self._cache.loads

    def __len__(self) -> int:
        return len(self._cache)


def load_explainer(store: ObjectStore, stored: StoredModel, device: torch.device | None = None) -> Explainer:
    """Download weights and prototypes into a private folder and load them as the library does."""
    with tempfile.TemporaryDirectory(prefix=f"batchcam-model-{stored.model_id}-") as folder:
        run_dir = Path(folder)
        store.download_file(stored.weights_key, run_dir / MODEL_FILE)
        store.download_file(stored.prototypes_key, run_dir / PROTOTYPES_FILE)
        return Explainer.from_run(run_dir, device)  # the best device when None
