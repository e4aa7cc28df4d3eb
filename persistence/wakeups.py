"""Wake-up messages for rows committed as ``queued``: what the API and the workers agree on.

The row is the truth (docs/ARCHITECTURE.md §6.7); a message only tells a worker to look. It is sent after the
transaction that queued the row has committed, and a failed send is logged, not raised: the sweep
sends a queued row's message again once it is due (``persistence.resend_schedule``), so a lost
message only delays the work. Raising would instead abort what follows the send (an HTTP answer,
clean-up, the rest of a sweep). Free of any broker library, so the API process needs none: the
composition root (``api.main``) hands the API Celery's senders (``worker.enqueue``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)


class BrokerUnavailableError(Exception):
    """The broker could not take the message (unreachable, or it dropped the connection)."""


class Enqueue(Protocol):
    """Sends one wake-up message; ``delay_s`` holds it back (a retry's backoff)."""

    def __call__(self, item_id: uuid.UUID, /, delay_s: float = 0.0) -> None: ...


class WakeExplanation(Protocol):
    """Wakes a worker for a queued explanation of ``model_id`` (or learns that one is on its way)."""

    def __call__(self, explanation_id: uuid.UUID, model_id: uuid.UUID, /) -> None: ...


def send_after_commit(send: Callable[[], None], what: str) -> bool:
    """Send the wake-up of a row already committed as queued; False when the broker failed."""
    try:
        send()
    except (BrokerUnavailableError, OSError):
        log.warning("sending %s failed; it stays queued and the sweep sends it again", what, exc_info=True)
        return False
    except Exception:  # anything else is a bug of ours: loud, but the row still gets its resend
        log.exception("sending %s failed unexpectedly; it stays queued and the sweep sends it again", what)
        return False
    return True
