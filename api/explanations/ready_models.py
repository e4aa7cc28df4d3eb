"""Models ready to explain, remembered by one API process so that a submission need not read them.

A model never changes once the job that trained it has succeeded, and models are never deleted, so
what a first submission read stays true: later submissions for the same (tenant, model) skip two
queries. Only ready models are remembered (a model whose job still runs may become ready).
"""

from __future__ import annotations

import threading
import uuid

from cachetools import LRUCache

from batchcam.spec.model_spec import ModelSpec

DEFAULT_CAPACITY = 1024


class ReadyModels:
    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._specs: LRUCache[tuple[uuid.UUID, uuid.UUID], ModelSpec] = LRUCache(capacity)
        self._lock = threading.Lock()  # read from the threadpool

    def get(self, tenant_id: uuid.UUID, model_id: uuid.UUID) -> ModelSpec | None:
        with self._lock:
            return self._specs.get((tenant_id, model_id))

    def remember(self, tenant_id: uuid.UUID, model_id: uuid.UUID, spec: ModelSpec) -> None:
        with self._lock:
            self._specs[(tenant_id, model_id)] = spec
