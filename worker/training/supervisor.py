"""One attempt of one training job: claim the row, run the child, keep the lease, record, finish.

The supervising process is the only writer of the job row during the attempt; the child only
trains, uploads, and reports through a queue. A database outage does not end the attempt: the child
keeps training, epochs and checkpoints are recorded once the database answers again, and the end is
written with retries for ``end_write_patience_seconds``. If the sweep re-queued the job meanwhile
(its lease ran out), the attempt takes it back unless another attempt already claimed it, so
a finished model is neither trained again nor left behind unnamed.
"""

from __future__ import annotations

import logging
import queue as queue_module
import shutil
import signal
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from tenacity import Retrying, before_sleep_log, retry_if_exception_type, stop_after_delay, wait_exponential

from persistence.db import transaction
from persistence.jobs.leases import (
    Lease,
    claim,
    finish,
    heartbeat,
    record_checkpoint,
    record_epoch,
    release_for_retry,
)
from persistence.models import Dataset, Job, Model, utcnow
from persistence.objects import ObjectStore
from persistence.settings import Settings
from persistence.states import TERMINAL_STATES, FailureReason, JobState
from persistence.wakeups import Enqueue, send_after_commit
from worker.training.child import run_training_child
from worker.training.child_start import child_context
from worker.training.cleanup import clean_up_attempt
from worker.training.messages import (
    CheckpointUploaded,
    ChildMessage,
    EpochFinished,
    ProgressUpdate,
    TrainingFailed,
    TrainingRequest,
    TrainingStopped,
    TrainingSucceeded,
)
from worker.training.work_dirs import new_work_dir

log = logging.getLogger(__name__)
POLL_SECONDS = 0.2
CHILD_EXIT_GRACE_SECONDS = 30.0
MAX_RETRY_DELAY_SECONDS = 600.0
CLAIM_RETRY_S = 5.0  # a message that found the database unreachable is sent again this much later
OUTAGE_RETRY_MAX_WAIT_S = 2.0  # between tries to write through an outage: notice its end early


@dataclass(frozen=True)
class SupervisorContext:
    sessions: sessionmaker[Session]
    settings: Settings
    owner: str  # this worker's identity in leases, e.g. "host:pid"
    enqueue: Enqueue  # re-sends a job released for another attempt
    store: ObjectStore  # where attempts upload; the supervisor removes what they leave behind
    clock: Callable[[], datetime] = field(default=utcnow)

    @property
    def lease_for(self) -> timedelta:
        return timedelta(seconds=self.settings.lease_seconds)

    def retry_delay(self, attempt: int) -> float:
        """Exponential backoff: an outage of the store or the database should not use up every attempt."""
        return min(self.settings.retry_delay_seconds * 2 ** (attempt - 1), MAX_RETRY_DELAY_SECONDS)


class _Attempt:
    """State of the supervision loop: the latest progress, records not yet written, the child's final word."""

    def __init__(self, lease: Lease) -> None:
        self.lease = lease  # replaced when the attempt takes its job back (``_lease_gone``)
        self.progress: dict[str, Any] | None = None
        self.progress_changed = False
        self.progress_shown = False  # whether a beat has written any progress yet
        self.unrecorded: list[EpochFinished | CheckpointUploaded] = []  # in order, while the database is away
        self.final: TrainingSucceeded | TrainingStopped | TrainingFailed | None = None
        self.lease_lost = False
        self.database_down = False  # logged once when it goes away and once when it is back

    def database_answered(self, job_id: uuid.UUID) -> None:
        if self.database_down:
            log.info("job %s: the database answers again", job_id)
        self.database_down = False

    def database_failed(self, job_id: uuid.UUID) -> None:
        if not self.database_down:
            log.warning("job %s: database unreachable; training goes on, records wait", job_id)
        self.database_down = True


def run_training_job(job_id: uuid.UUID, context: SupervisorContext) -> JobState | None:
    """Run one attempt. Returns the state the job ended in, or None when it was not ours to run."""
    try:
        with transaction(context.sessions) as session:
            lease = claim(session, job_id, context.owner, context.lease_for, context.clock())
    except OperationalError:
        # The message was acknowledged on receipt: raising would lose it, and the job would wait for
        # the stale re-send (minutes). Sent again instead, it is claimed soon after the database is back.
        log.warning(
            "job %s: database unreachable; its message is sent again in %.0f s", job_id, CLAIM_RETRY_S
        )
        send_after_commit(partial(context.enqueue, job_id, delay_s=CLAIM_RETRY_S), f"job {job_id}")
        return None
    if lease is None:
        log.info("job %s is not claimable (held elsewhere, or ended); duplicate delivery ignored", job_id)
        return None
    work_dir = new_work_dir(job_id)
    attempt = _Attempt(lease)
    request: TrainingRequest | None = None
    try:
        request = _request(job_id, lease, context, work_dir)
        _supervise(request, context, attempt)
    except OperationalError:  # the database went away before the child started
        log.warning("job %s: database unreachable while starting the attempt", job_id, exc_info=True)
        attempt.final = TrainingFailed(FailureReason.INFRASTRUCTURE, "the database was unreachable", True)
    except Exception as error:  # a bug of ours: end the attempt with a reason instead of a stuck lease
        log.exception("job %s: the supervisor failed", job_id)
        attempt.final = TrainingFailed(
            FailureReason.INTERNAL_ERROR, f"internal error ({type(error).__name__})", False
        )
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    try:
        ended_in = _while_database_recovers(context, lambda: _write_end(attempt, context))
    except OperationalError:
        log.error("job %s: database still unreachable; the reaper will re-queue it", job_id)
        if request is not None and isinstance(attempt.final, TrainingSucceeded):
            # Its success may have committed with the answer lost: a model folder that no row names
            # is better than a succeeded job whose files were deleted.
            log.warning(
                "job %s: kept model %s's files; the job row says whether they are used",
                job_id,
                request.model_id,
            )
            return None
        ended_in = None
    if request is not None:
        clean_up_attempt(context.store, request, ended_in, _job_ended(ended_in, job_id, context))
    return ended_in


def _job_ended(ended_in: JobState | None, job_id: uuid.UUID, context: SupervisorContext) -> bool:
    """Whether no attempt can resume from the job's checkpoints any more. When this attempt wrote
    nothing (its lease was taken back while it kept uploading), the row says; unread, keep them."""
    if ended_in is not None:
        return ended_in in TERMINAL_STATES
    try:
        with context.sessions() as session:
            state = session.scalar(select(Job.state).where(Job.id == job_id))
    except OperationalError:
        return False
    return state in TERMINAL_STATES


def _write_end(attempt: _Attempt, context: SupervisorContext) -> JobState | None:
    _record(attempt, context, raise_errors=True)  # the last epoch and checkpoint first
    ended = None if attempt.lease_lost else _conclude(attempt.final, attempt.lease, context)
    if ended is None and not attempt.lease_lost and isinstance(attempt.final, TrainingSucceeded):
        _lease_gone(attempt, context)  # re-queued since the last record: the model is worth taking back
        if not attempt.lease_lost:
            ended = _conclude(attempt.final, attempt.lease, context)
    if attempt.lease_lost:
        log.warning(
            "job %s: lease lost (ended or claimed elsewhere); stopped without writing", attempt.lease.job_id
        )
    return ended


def _lease_gone(attempt: _Attempt, context: SupervisorContext) -> None:
    """The row says this attempt no longer holds its job. If the sweep re-queued it (the lease ran out
    while the database was away) and no other attempt has claimed it since, the attempt claims it
    again and goes on: what it trained meanwhile is neither lost nor trained twice. Otherwise the
    lease is lost."""
    job_id, held_attempt = attempt.lease.job_id, attempt.lease.attempt
    with transaction(context.sessions) as session:
        queued_at = session.scalar(select(Job.attempt).where(Job.id == job_id, Job.state == JobState.QUEUED))
        # A later claim would have counted one more attempt.
        retaken = (
            None
            if queued_at != held_attempt
            else claim(session, job_id, context.owner, context.lease_for, context.clock())
        )
    if retaken is None:
        attempt.lease_lost = True
        return
    log.info(
        "job %s: re-queued while the database was away; claimed again (attempt %d)", job_id, retaken.attempt
    )
    attempt.lease = retaken


def _while_database_recovers(
    context: SupervisorContext, write: Callable[[], JobState | None]
) -> JobState | None:
    """Retry a write through a database outage, for ``end_write_patience_seconds`` (at least a lease).

    Past the lease the sweep may re-queue the job; the attempt then takes it back (``_lease_gone``)
    if no other attempt has claimed it, so a short wait between tries matters more than load."""
    patience = max(context.settings.lease_seconds, context.settings.end_write_patience_seconds)
    retrying = Retrying(
        retry=retry_if_exception_type(OperationalError),
        wait=wait_exponential(multiplier=0.2, max=OUTAGE_RETRY_MAX_WAIT_S),
        stop=stop_after_delay(patience),
        before_sleep=before_sleep_log(log, logging.WARNING),
        reraise=True,
    )
    return retrying(write)


def _request(job_id: uuid.UUID, lease: Lease, context: SupervisorContext, work_dir: Path) -> TrainingRequest:
    with context.sessions() as session:
        job = session.get_one(Job, job_id)
        dataset_key = _uploaded_dataset_key(session, job)
        return TrainingRequest(
            job_id=job.id,
            tenant_id=job.tenant_id,
            attempt=lease.attempt,
            spec=dict(job.spec),
            dataset_key=dataset_key,
            checkpoint_key=job.checkpoint_key,
            model_id=uuid.uuid4(),
            settings=context.settings,
            work_dir=work_dir,
        )


def _uploaded_dataset_key(session: Session, job: Job) -> str | None:
    try:
        dataset_id = uuid.UUID(str(job.spec.get("dataset")))
    except ValueError:
        return None  # a built-in dataset name
    dataset = session.get(Dataset, dataset_id)
    return None if dataset is None or dataset.tenant_id != job.tenant_id else dataset.object_key


def _supervise(request: TrainingRequest, context: SupervisorContext, attempt: _Attempt) -> None:
    """Run the child until its final word, a lost child, or a lost lease (all recorded in ``attempt``)."""
    start = child_context(context.settings.train_child_start)  # never a fork of this process (CUDA)
    messages: Any = start.Queue()
    stop = start.Event()
    child = start.Process(  # type: ignore[attr-defined]
        target=run_training_child, args=(request, messages, stop), name=f"train-{request.job_id}"
    )
    child.start()
    last_beat = -float("inf")
    try:
        while attempt.final is None and not attempt.lease_lost:
            _drain(messages, attempt, timeout=POLL_SECONDS)
            _record(attempt, context)
            since_beat = time.monotonic() - last_beat
            # Beat on schedule, and sooner (at most once a second) when there is news to show; the
            # first progress at once, so that a user sees training start when it does.
            if since_beat >= context.settings.heartbeat_seconds or (
                attempt.progress_changed and (since_beat >= 1.0 or not attempt.progress_shown)
            ):
                last_beat = time.monotonic()
                _beat(attempt, context, stop)
            if not child.is_alive():
                _drain(messages, attempt, timeout=1.0)
                if attempt.final is None:
                    attempt.final = _lost_child(child.exitcode)
                break
    finally:
        _end_child(child, stop, attempt.lease_lost)


def _drain(messages: Any, attempt: _Attempt, timeout: float) -> None:
    try:
        message: ChildMessage = messages.get(timeout=timeout)
    except queue_module.Empty:
        return
    while True:
        _handle(message, attempt)
        try:
            message = messages.get_nowait()
        except queue_module.Empty:
            return


def _handle(message: ChildMessage, attempt: _Attempt) -> None:
    if isinstance(message, ProgressUpdate):
        attempt.progress, attempt.progress_changed = message.progress, True
    elif isinstance(message, EpochFinished | CheckpointUploaded):
        attempt.unrecorded.append(message)
    else:
        attempt.final = message


def _record(attempt: _Attempt, context: SupervisorContext, raise_errors: bool = False) -> None:
    """Write the finished epochs and uploaded checkpoints, oldest first; stop at a database error."""
    while attempt.unrecorded and not attempt.lease_lost:
        message, lease = attempt.unrecorded[0], attempt.lease
        try:
            with transaction(context.sessions) as session:
                if isinstance(message, EpochFinished):
                    owned = record_epoch(session, lease, message.epoch, message.metrics, context.clock())
                else:
                    owned = record_checkpoint(
                        session, lease, message.key, context.clock(), epoch=message.epoch, step=message.step
                    )
            if not owned:
                _lease_gone(attempt, context)  # taken back: the same message is recorded again
                continue
        except OperationalError:
            if raise_errors:
                raise
            attempt.database_failed(lease.job_id)
            return
        attempt.database_answered(lease.job_id)
        attempt.unrecorded.pop(0)


def _beat(attempt: _Attempt, context: SupervisorContext, stop: Any) -> None:
    lease = attempt.lease
    try:
        with transaction(context.sessions) as session:
            answer = heartbeat(session, lease, context.lease_for, context.clock(), attempt.progress)
        if not answer.still_owner:
            _lease_gone(attempt, context)
    except OperationalError:  # the child keeps training; the next beat tries again
        attempt.database_failed(lease.job_id)
        return
    attempt.database_answered(lease.job_id)
    attempt.progress_shown = attempt.progress_shown or attempt.progress is not None
    attempt.progress_changed = False
    if answer.cancel_requested and not stop.is_set():
        log.info("job %s: cancel requested; asking the trainer to stop", lease.job_id)
        stop.set()


def _lost_child(exitcode: int | None) -> TrainingFailed:
    """A child that ended without its final word. It is retried (up to the attempt limit): a SIGKILL
    is often the kernel's out-of-memory killer, but an operator's kill looks the same."""
    how = f"exited with code {exitcode}"
    if exitcode is not None and exitcode < 0:
        try:
            how = f"was killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            how = f"was killed by signal {-exitcode}"
        if exitcode == -signal.SIGKILL:
            how += " (often the kernel's out-of-memory killer: a smaller batch_size or image_size needs less)"
    return TrainingFailed(FailureReason.WORKER_LOST, f"the training process {how} without a result", True)


def _end_child(child: Any, stop: Any, forcefully: bool) -> None:
    if forcefully:
        child.terminate()
    stop.set()
    child.join(CHILD_EXIT_GRACE_SECONDS)
    if child.is_alive():
        child.kill()
        child.join()


def _conclude(
    final: TrainingSucceeded | TrainingStopped | TrainingFailed | None,
    lease: Lease,
    context: SupervisorContext,
) -> JobState | None:
    """Write the attempt's end. None: the lease was no longer ours, so nothing was written."""
    if isinstance(final, TrainingSucceeded):
        return _succeed(final, lease, context)
    if isinstance(final, TrainingStopped):
        return _stopped(final, lease, context)
    return _fail_or_retry(final, lease, context)


def _succeed(final: TrainingSucceeded, lease: Lease, context: SupervisorContext) -> JobState | None:
    with transaction(context.sessions) as session:
        if not finish(session, lease, JobState.SUCCEEDED, context.clock(), model_id=final.model_id):
            # A retry whose first commit went through but lost its answer: the success is written
            # (and the clean-up must keep this model's files).
            job = session.get(Job, lease.job_id)
            written = job is not None and job.state == JobState.SUCCEEDED and job.model_id == final.model_id
            return JobState.SUCCEEDED if written else None
        job = session.get_one(Job, lease.job_id)
        model = Model(id=final.model_id, tenant_id=job.tenant_id, job_id=job.id, spec=final.spec)
        model.summary, model.artifacts = final.summary, final.artifacts
        session.add(model)
    return JobState.SUCCEEDED


def _stopped(final: TrainingStopped, lease: Lease, context: SupervisorContext) -> JobState | None:
    with transaction(context.sessions) as session:
        if final.outcome == "cancelled":
            return JobState.CANCELLED if finish(session, lease, JobState.CANCELLED, context.clock()) else None
        limit = session.get_one(Job, lease.job_id).spec.get("max_runtime_s")
        message = f"the job reached its time limit (max_runtime_s = {limit}); resubmit with a larger one"
        ended = finish(
            session, lease, JobState.FAILED, context.clock(), reason=FailureReason.TIMEOUT, message=message
        )
    return JobState.FAILED if ended else None


def _fail_or_retry(final: TrainingFailed | None, lease: Lease, context: SupervisorContext) -> JobState | None:
    """Transient trouble (or a child that vanished) gets another attempt while attempts remain."""
    retryable = final is None or final.retryable
    reason = FailureReason.WORKER_LOST if final is None else final.reason
    message = "the training process exited without a result" if final is None else final.message
    with transaction(context.sessions) as session:
        # Locked: a cancel committed after an unlocked read would make the hand-back below match no
        # row, leaving the job in cancelling with no worker until its lease ran out.
        job = session.get_one(Job, lease.job_id, with_for_update=True)
        if job.state == JobState.CANCELLING:  # the user asked to stop: a failure now needs no retry
            return JobState.CANCELLED if finish(session, lease, JobState.CANCELLED, context.clock()) else None
        if retryable and lease.attempt < job.max_attempts:
            if not release_for_retry(session, lease, context.clock(), message):
                return None
            requeued = True
        else:
            if not finish(session, lease, JobState.FAILED, context.clock(), reason=reason, message=message):
                return None
            requeued = False
    if requeued:  # after commit: whoever takes it finds the row queued
        delay_s = context.retry_delay(lease.attempt)
        send_after_commit(partial(context.enqueue, lease.job_id, delay_s=delay_s), f"job {lease.job_id}")
        return JobState.QUEUED
    return JobState.FAILED
