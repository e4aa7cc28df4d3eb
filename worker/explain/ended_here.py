"""The explanations this process ended lately, so that their own messages need no claim query.

With dynamic batching one message claims many rows; each of the others still has its message on the
way, which used to cost a claim transaction to learn that its row had ended. An ended row never runs
again (no state leads out of succeeded, failed or cancelled), so a message for an id in this set is
a duplicate for certain and returns at once. A row given back for another attempt is not in the
set: its message must still claim it. A message that reaches another process checks the database,
as before.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable

from cachetools import LRUCache

DEFAULT_CAPACITY = 8192  # far more than the rows a few batches end; 16 bytes a key


class EndedHere:
    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._ids: LRUCache[uuid.UUID, None] = LRUCache(maxsize=capacity)
        self._lock = threading.Lock()

    def add(self, ids: Iterable[uuid.UUID]) -> None:
        with self._lock:
            for explanation_id in ids:
                self._ids[explanation_id] = None

    def __contains__(self, explanation_id: object) -> bool:
        with self._lock:
            return explanation_id in self._ids
