"""Explanation states: the vocabulary the API publishes and the explain workers write.

The values are the jobs' (design §3: "states as for jobs"): a cancel request ends a queued explanation
at once and asks a running one to stop (``cancelling``); its worker notices when it next renews its
lease (between batches) and confirms ``cancelled``. Failure reasons are the jobs' ``FailureReason``.
"""

from __future__ import annotations

from enum import StrEnum


class ExplanationState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    CANCELLING = "cancelling"  # asked to stop; the worker confirms
    SUCCEEDED = "succeeded"  # possibly with per-item errors
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL_EXPLANATION_STATES = frozenset(
    {ExplanationState.SUCCEEDED, ExplanationState.FAILED, ExplanationState.CANCELLED}
)
LEASED_EXPLANATION_STATES = frozenset({ExplanationState.RUNNING, ExplanationState.CANCELLING})
