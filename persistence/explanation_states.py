"""Explanation states: the vocabulary the API publishes and the explain workers write.

The values are the jobs' (design §3: "states as for jobs"), less cancellation: an explanation takes
seconds, so it is never cancelled. Failure reasons are the jobs' ``FailureReason``.
"""

from __future__ import annotations

from enum import StrEnum


class ExplanationState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"  # possibly with per-item errors
    FAILED = "failed"


TERMINAL_EXPLANATION_STATES = frozenset({ExplanationState.SUCCEEDED, ExplanationState.FAILED})
