"""Best-effort deletion of objects nothing can use any more.

A failure leaves garbage behind, never a wrong answer, so it is logged and not raised.
"""

from __future__ import annotations

import logging

from persistence.objects import ObjectStore, ObjectStoreError

log = logging.getLogger(__name__)


def delete_prefix_quietly(store: ObjectStore, prefix: str, what: str) -> int:
    """Delete every object under ``prefix``; ``what`` names them in the log ("job 12…: checkpoints").

    Returns how many went (0 also when the deletion failed).
    """
    try:
        removed = store.delete_prefix(prefix)
    except (ObjectStoreError, OSError) as error:  # OSError: the local store's folder operations
        log.warning("%s could not be removed (%s); they stay as garbage", what, error)
        return 0
    if removed:
        log.info("removed %d object(s): %s", removed, what)
    return removed
