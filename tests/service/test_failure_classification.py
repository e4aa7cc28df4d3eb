"""Which training failures get another attempt, and with which reason a job fails.

See docs/ARCHITECTURE.md §8.2.
"""

from __future__ import annotations

import pytest
import torch

from batchcam.errors import ConfigError, DatasetUnavailableError, LayerError, TrainingDivergedError
from persistence.objects import ObjectNotFoundError, ObjectStoreUnavailableError
from persistence.states import FailureReason
from worker.training.child import classify_failure


@pytest.mark.parametrize(
    ("error", "reason", "retryable"),
    [
        (TrainingDivergedError("loss became NaN", epoch=0, step=3), FailureReason.NAN_LOSS, False),
        (torch.cuda.OutOfMemoryError("CUDA out of memory"), FailureReason.OUT_OF_MEMORY, False),
        (ConfigError("batch_size must be ..."), FailureReason.INVALID_INPUT, False),
        (LayerError("layer 'x' does not exist"), FailureReason.INVALID_INPUT, False),
        (ObjectStoreUnavailableError("store unreachable"), FailureReason.INFRASTRUCTURE, True),
        (ObjectNotFoundError("tenants/t/datasets/d/data.npz"), FailureReason.INFRASTRUCTURE, False),
        (DatasetUnavailableError("mnist files missing"), FailureReason.INFRASTRUCTURE, False),
        (RuntimeError("a bug of ours"), FailureReason.INTERNAL_ERROR, False),
    ],
    ids=["nan", "oom", "config", "layer", "store-down", "object-missing", "dataset-missing", "bug"],
)
def test_only_transient_infrastructure_errors_are_retried(
    error: BaseException, reason: FailureReason, retryable: bool
) -> None:
    failed = classify_failure(error)
    assert (failed.reason, failed.retryable) == (reason, retryable)
    assert failed.message  # the job's failure message is never empty


def test_an_out_of_memory_failure_says_what_to_change() -> None:
    assert "smaller batch size" in classify_failure(torch.cuda.OutOfMemoryError("CUDA out of memory")).message
