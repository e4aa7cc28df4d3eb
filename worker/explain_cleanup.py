"""Removing an abandoned explanation attempt's shards (best effort).

Objects are written once, but deleting what an attempt left once it can never become the result is
fine: a failed, released or reaped attempt's claim is gone, so no row will ever name its shards
(``finish_explanation`` only succeeds for the attempt holding the claim). A failure here leaves
garbage behind, never a wrong answer, so it is logged and not raised.
"""

from __future__ import annotations

import logging
import uuid

from persistence.explanation_objects import attempt_prefix
from persistence.object_errors import ObjectStoreError
from persistence.objects import ObjectStore

log = logging.getLogger(__name__)


def discard_attempt_maps(
    store: ObjectStore, tenant_id: uuid.UUID, explanation_id: uuid.UUID, attempt: int
) -> int:
    """Delete the attempt's shard folder; returns how many objects went (0 also when it failed)."""
    try:
        removed = store.delete_prefix(attempt_prefix(tenant_id, explanation_id, attempt))
    except (ObjectStoreError, OSError) as error:  # OSError: the local store's folder operations
        log.warning(
            "explanation %s attempt %d: its shards could not be removed (%s); they stay as garbage",
            explanation_id,
            attempt,
            error,
        )
        return 0
    if removed:
        log.info("explanation %s attempt %d: removed %d abandoned shard(s)", explanation_id, attempt, removed)
    return removed
