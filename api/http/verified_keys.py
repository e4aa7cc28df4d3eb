"""Verified API keys, remembered by one API process so that most requests skip the key's query.

Looking the key up was one database session per request: about a third of the API's CPU on a small
request (docs/BENCHMARKS.md). A verified key is remembered for ``BATCHCAM_KEY_CACHE_SECONDS``, keyed
by its SHA-256 (never the key), and only while change notifications are live: revoking or deleting a
key notifies ``batchcam_key_revoked`` (migration 0007) and every API process forgets it as the
notification arrives, a millisecond or two after the revoking transaction commits. A lost listener
connection forgets everything and stops remembering until it is back, so a missed notification can
never keep a revoked key alive; the expiry bounds what any other failure could. Unknown and revoked
keys are never remembered, so a new key works at once and a guessed one costs a query each time.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from cachetools import TTLCache

from persistence.api_keys import VerifiedKey, hash_key

DEFAULT_CAPACITY = 4096


class VerifiedKeys:
    """Used from the event loop only (lookups, remembering, notifications): no lock needed."""

    def __init__(
        self,
        seconds: float,
        is_live: Callable[[], bool],
        capacity: int = DEFAULT_CAPACITY,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self.seconds = seconds
        self._is_live = is_live
        self._keys: TTLCache[str, VerifiedKey] = TTLCache(capacity, ttl=max(seconds, 1e-9), timer=timer)
        self._forgettings = 0  # counts every forget, so a lookup that raced one is not remembered

    @property
    def enabled(self) -> bool:
        return self.seconds > 0 and self._is_live()

    def get(self, presented: str) -> VerifiedKey | None:
        if not self.enabled:
            return None
        return self._keys.get(hash_key(presented))

    def mark(self) -> int:
        """Taken before the database lookup whose result ``remember`` may keep."""
        return self._forgettings

    def remember(self, presented: str, verified: VerifiedKey, mark: int) -> None:
        """Keep ``verified`` unless a key was forgotten since ``mark``: the lookup may predate it."""
        if self.enabled and mark == self._forgettings:
            self._keys[hash_key(presented)] = verified

    def forget(self, key_id: str | None) -> None:
        """A ``batchcam_key_revoked`` payload: that key's id, or None for "any key may be revoked"."""
        self._forgettings += 1
        if key_id is None:
            self._keys.clear()
            return
        for digest, verified in list(self._keys.items()):
            if str(verified.key_id) == key_id:
                del self._keys[digest]
