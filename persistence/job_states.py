"""Job states and failure reasons: the vocabulary the API publishes and the workers write."""

from __future__ import annotations

from enum import StrEnum


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    CANCELLING = "cancelling"  # cancel requested; the worker has not confirmed yet
    SUCCEEDED = "succeeded"
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
