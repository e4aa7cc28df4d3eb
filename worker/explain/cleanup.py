"""Removing an abandoned explanation attempt's shards (best effort).

Objects are written once, but deleting what an attempt left once it can never become the result is
fine: a failed, released or reaped attempt's claim is gone, so no row will ever name its shards
(``finish_explanation`` only succeeds for the attempt holding the claim).
"""

from __future__ import annotations

import uuid

from persistence.explanations.objects import attempt_prefix
from persistence.objects import ObjectStore
from worker.garbage import delete_prefix_quietly


def discard_attempt_maps(
    store: ObjectStore, tenant_id: uuid.UUID, explanation_id: uuid.UUID, attempt: int
) -> int:
    """Delete the attempt's shard folder; returns how many objects went (0 also when it failed)."""
    prefix = attempt_prefix(tenant_id, explanation_id, attempt)
    return delete_prefix_quietly(store, prefix, f"explanation {explanation_id} attempt {attempt}: shards")
