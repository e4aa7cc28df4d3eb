"""The states and failure reasons of every row delivered through a lease: training jobs and explanations.

One lifecycle for both (docs/ARCHITECTURE.md §6.1: an explanation's states are "as for jobs"), so
``persistence.leases`` moves both tables the same way: ``queued → running → succeeded | failed |
cancelled``, with ``cancelling`` between a cancel request and the worker's confirmation. For an
explanation, a batch in which some images failed ends ``succeeded`` with per-item errors. The API
publishes the values under a name per resource (``JobState``, ``ExplanationState``).
"""

from __future__ import annotations

from enum import StrEnum


# The one lifecycle, named for jobs (which had it first); explanations share it. Its docstring and
# FailureReason's would show in the OpenAPI document, so what they say stays what it was.
class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    CANCELLING = "cancelling"  # cancel requested; the worker has not confirmed yet
    SUCCEEDED = "succeeded"  # an explanation's items may still carry errors of their own
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})
LEASED_STATES = frozenset({JobState.RUNNING, JobState.CANCELLING})


class FailureReason(StrEnum):
    """Why a job failed. Only ``worker_lost`` and ``infrastructure`` were retried before failing."""

    INVALID_INPUT = "invalid_input"  # the spec or its data is unusable; retrying cannot help
    NAN_LOSS = "nan_loss"
    OUT_OF_MEMORY = "out_of_memory"
    TIMEOUT = "timeout"  # max_runtime_s reached
    WORKER_LOST = "worker_lost"  # leases expired max_attempts times
    INFRASTRUCTURE = "infrastructure"  # database / object store / broker errors past their retries
    INTERNAL_ERROR = "internal_error"  # a bug of ours; logged with the job id
