"""A small thread-safe LRU of values that never go stale (loaded models, dataset splits).

Loads happen under the lock, so two deliveries that need one cold entry load it once.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

Key = TypeVar("Key", bound=Hashable)
Value = TypeVar("Value")


class BoundedCache(Generic[Key, Value]):
    def __init__(self, capacity: int, what: str = "entries") -> None:
        if capacity < 1:
            raise ValueError(f"a cache of {what} needs room for at least one, got {capacity}")
        self._capacity = capacity
        self._entries: OrderedDict[Key, Value] = OrderedDict()
        self._lock = threading.Lock()
        self.loads = 0  # misses: how many times a value was loaded (for metrics and tests)

    def get(self, key: Key, load: Callable[[], Value]) -> Value:
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
            value = load()
            self.loads += 1
            self._entries[key] = value
            while len(self._entries) > self._capacity:
                self._entries.popitem(last=False)
            return value

    def __len__(self) -> int:
        return len(self._entries)
