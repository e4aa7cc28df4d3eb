"""The explain worker's warm models: a bounded LRU of loaded ``Explainer``s, keyed by model id.

Models are immutable, so an entry never goes stale; the least recently used one is dropped when the
cache is full. One instance lives per worker process (``worker.tasks`` owns it). Loads happen under
the lock, so two deliveries for one cold model load it once; explanations themselves run one at a
time per process (an explain worker runs ``--pool solo`` or ``--concurrency 1`` per GPU).
"""

from __future__ import annotations

import tempfile
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from batchcam.artifacts import MODEL_FILE, PROTOTYPES_FILE
from batchcam.explain import Explainer
from persistence.objects import ObjectStore

DEFAULT_CAPACITY = 4


@dataclass(frozen=True)
class StoredModel:
    """Where a trained model's weights and prototypes are in the object store."""

    model_id: uuid.UUID
    weights_key: str
    prototypes_key: str


class ExplainerCache:
    def __init__(self, load: Callable[[StoredModel], Explainer], capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError(f"the explainer cache needs room for at least one model, got {capacity}")
        self._load = load
        self._capacity = capacity
        self._entries: OrderedDict[uuid.UUID, Explainer] = OrderedDict()
        self._lock = threading.Lock()
        self.loads = 0  # how many times a model was loaded (misses), for metrics and tests

    def get(self, stored: StoredModel) -> Explainer:
        with self._lock:
            explainer = self._entries.get(stored.model_id)
            if explainer is not None:
                self._entries.move_to_end(stored.model_id)
                return explainer
            explainer = self._load(stored)
            self.loads += 1
            self._entries[stored.model_id] = explainer
            while len(self._entries) > self._capacity:
                self._entries.popitem(last=False)
            return explainer

    def __len__(self) -> int:
        return len(self._entries)


def load_explainer(store: ObjectStore, stored: StoredModel, device: torch.device | None = None) -> Explainer:
    """Download weights and prototypes into a private folder and load them as the library does."""
    with tempfile.TemporaryDirectory(prefix=f"batchcam-model-{stored.model_id}-") as folder:
        run_dir = Path(folder)
        store.download_file(stored.weights_key, run_dir / MODEL_FILE)
        store.download_file(stored.prototypes_key, run_dir / PROTOTYPES_FILE)
        return Explainer.from_run(run_dir, device)  # the best device when None
