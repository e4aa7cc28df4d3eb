"""A training attempt end to end without a broker: real Postgres, real object store, real child.

The supervisor claims the row, spawns the training child, keeps the lease, records epochs and
checkpoints, and writes the end; these tests drive it directly and check what it left behind.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from celery import Celery
from sqlalchemy import Engine, create_engine, func, make_url, select
from sqlalchemy.orm import Session, sessionmaker

from batchcam.data import make_shapes
from persistence.db import make_engine, make_session_factory, transaction
from persistence.jobs.leases import claim, heartbeat, request_cancel
from persistence.models import Dataset, Job, JobEpoch, JobEvent, Model, Tenant, utcnow
from persistence.objects import LocalObjectStore, object_key, open_object_store
from persistence.settings import Settings
from persistence.states import FailureReason, JobState
from service.postgres import fresh_database, run_alembic
from service.seaweed import free_port
from service.tcp_proxy import TcpProxy
from worker.enqueue import training_enqueuer
from worker.reaper import JobSweep, sweep_jobs
from worker.training import supervisor
from worker.training.messages import TrainingFailed, TrainingSucceeded
from worker.training.supervisor import (
    CLAIM_RETRY_S,
    SupervisorContext,
    _fail_or_retry,
    _succeed,
    run_training_job,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with fresh_database("batchcam_worker") as url:
        run_alembic(url, upgrade=True, revision="head")
        yield url


@pytest.fixture(scope="module")
def engine(database: str) -> Iterator[Engine]:
    engine = create_engine(database)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, database: str) -> Settings:
    state = tmp_path_factory.mktemp("state")
    return Settings(
        BATCHCAM_STATE_DIR=state,
        DATABASE_URL=database,
        OBJECT_STORE_URL=(state / "objects").as_uri(),
        BATCHCAM_LEASE_SECONDS=3.0,
        BATCHCAM_HEARTBEAT_SECONDS=0.5,
    )


@pytest.fixture(scope="module")
def sessions(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@pytest.fixture(scope="module")
def store(settings: Settings) -> LocalObjectStore:
    return LocalObjectStore(settings.state_dir / "objects")


@pytest.fixture(scope="module")
def uploaded(sessions: sessionmaker[Session], store: LocalObjectStore) -> tuple[uuid.UUID, uuid.UUID]:
    """A tenant and a 600-image .npz dataset of theirs, stored like the API stores uploads."""
    data = make_shapes(600, seed=11)
    buffer = io.BytesIO()
    np.savez(
        buffer,
        images=data.images[:, 0].numpy(),
        labels=data.labels.numpy(),
        class_names=np.array(data.class_names),
    )
    with transaction(sessions) as session:
        tenant = Tenant(name="worker-tests")
        session.add(tenant)
        session.flush()
        dataset_id = uuid.uuid4()
        key = object_key(str(tenant.id), "datasets", str(dataset_id), "data.npz")
        store.put(key, buffer.getvalue(), content_type="application/octet-stream")
        session.add(
            Dataset(
                id=dataset_id,
                tenant_id=tenant.id,
                name="small-shapes",
                format="npz",
                sha256="0" * 64,
                size_bytes=len(buffer.getvalue()),
                object_key=key,
                summary={},
            )
        )
        return tenant.id, dataset_id


def submit(
    sessions: sessionmaker[Session], uploaded: tuple[uuid.UUID, uuid.UUID], **spec: object
) -> uuid.UUID:
    tenant_id, dataset_id = uploaded
    full = {"dataset": str(dataset_id), "epochs": 2, "batch_size": 16, "mode": "batchcam", **spec}
    with transaction(sessions) as session:
        job = Job(tenant_id=tenant_id, spec=full, max_attempts=3)
        session.add(job)
        session.flush()
        return job.id


def context(
    sessions: sessionmaker[Session],
    settings: Settings,
    sent: list[uuid.UUID] | None = None,
    delays: list[float] | None = None,
) -> SupervisorContext:
    def enqueue(job_id: uuid.UUID, delay_s: float = 0.0) -> None:
        (sent if sent is not None else []).append(job_id)
        (delays if delays is not None else []).append(delay_s)

    return SupervisorContext(
        sessions=sessions,
        settings=settings,
        owner=f"test:{os.getpid()}",
        enqueue=enqueue,
        store=open_object_store(settings),  # the same folder as the ``store`` fixture
    )


def when_training(
    sessions: sessionmaker[Session], job_id: uuid.UUID, act: Callable[[], None]
) -> threading.Thread:
    """Runs ``act`` in a thread once the job has reported a few training steps."""

    def wait_then_act() -> None:
        deadline = time.monotonic() + 120
        while (job_row(sessions, job_id).progress or {}).get("step", 0) < 5:
            assert time.monotonic() < deadline, "training never reported progress"
            time.sleep(0.05)
        act()

    thread = threading.Thread(target=wait_then_act)
    thread.start()
    return thread


def checkpoints_left(store: LocalObjectStore, job_id: uuid.UUID) -> list[Path]:
    published = store.root.glob(f"tenants/*/checkpoints/{job_id}/*.pt")
    return [path for path in published if ".batchcam" not in path.parts]


def kill_training_child(job_id: uuid.UUID) -> None:
    (child,) = [p for p in multiprocessing.active_children() if p.name == f"train-{job_id}"]
    os.kill(child.pid, signal.SIGKILL)


def job_row(sessions: sessionmaker[Session], job_id: uuid.UUID) -> Job:
    with sessions() as session:
        return session.get_one(Job, job_id)


def event_types(sessions: sessionmaker[Session], job_id: uuid.UUID) -> list[tuple[str, dict]]:
    with sessions() as session:
        rows = session.execute(
            select(JobEvent.type, JobEvent.data).where(JobEvent.job_id == job_id).order_by(JobEvent.id)
        )
        return [(type_, data) for type_, data in rows]


def test_a_job_trains_to_a_model_with_its_artifacts_stored(sessions, settings, store, uploaded) -> None:
    job_id = submit(sessions, uploaded, checkpoint_every_steps=20)
    assert run_training_job(job_id, context(sessions, settings)) == JobState.SUCCEEDED
    job = job_row(sessions, job_id)
    assert job.state == JobState.SUCCEEDED and job.attempt == 1 and job.lease_owner is None
    assert job.progress["step"] == job.progress["total_steps"] == 60 and job.latest_metrics["epoch"] == 2
    with sessions() as session:
        model = session.get_one(Model, job.model_id)
        epochs = session.scalars(
            select(JobEpoch.epoch).where(JobEpoch.job_id == job_id).order_by(JobEpoch.epoch)
        ).all()
    assert list(epochs) == [1, 2]
    assert model.spec["architecture"] == "simple_cnn" and model.summary["accuracy"] > 0.3
    for name in (
        "model.safetensors",
        "report.json",
        "prototypes.safetensors",
        "cam_prototypes.png",
        "prototypes-0.png",
    ):
        assert store.head(model.artifacts[name]) is not None, name
    assert checkpoints_left(store, job_id) == []  # the job ended: nothing can resume from them
    states = [data["state"] for type_, data in event_types(sessions, job_id) if type_ == "state"]
    assert states == ["running", "succeeded"]


def test_a_success_written_again_after_a_lost_commit_answer_still_reads_as_success(
    sessions, settings, uploaded
) -> None:
    """The end is retried through a database outage; a first commit whose answer was lost must not
    make the retry report "not ours" (the clean-up would then delete the new model's files)."""
    job_id = submit(sessions, uploaded)
    with transaction(sessions) as session:
        lease = claim(session, job_id, "test-worker", timedelta(minutes=5), utcnow())
    assert lease is not None
    final = TrainingSucceeded(model_id=uuid.uuid4(), spec={}, summary={})
    supervisor = context(sessions, settings)
    assert _succeed(final, lease, supervisor) == JobState.SUCCEEDED
    assert _succeed(final, lease, supervisor) == JobState.SUCCEEDED  # the retry
    other = TrainingSucceeded(model_id=uuid.uuid4(), spec={}, summary={})
    assert _succeed(other, lease, supervisor) is None  # another model: not this attempt's success
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Model).where(Model.job_id == job_id)) == 1


def test_a_duplicate_delivery_does_not_start_a_second_run(sessions, settings, uploaded) -> None:
    job_id = submit(sessions, uploaded)
    with transaction(sessions) as session:
        assert claim(session, job_id, "other-worker", timedelta(minutes=5), utcnow()) is not None
    started = time.monotonic()
    assert run_training_job(job_id, context(sessions, settings)) is None
    assert time.monotonic() - started < 1.0  # returned at once: no child was spawned
    assert job_row(sessions, job_id).lease_owner == "other-worker"


def test_bad_input_fails_once_with_a_reason_and_is_not_retried(sessions, settings, uploaded) -> None:
    job_id = submit(sessions, uploaded, target_layer="no.such.layer")
    sent: list[uuid.UUID] = []
    assert run_training_job(job_id, context(sessions, settings, sent)) == JobState.FAILED
    job = job_row(sessions, job_id)
    assert job.failure_reason == FailureReason.INVALID_INPUT and "no.such.layer" in job.failure_message
    assert job.attempt == 1 and sent == []


def test_cancelling_a_running_job_stops_it_cooperatively(sessions, settings, store, uploaded) -> None:
    job_id = submit(sessions, uploaded, epochs=50)
    seen: dict[str, str] = {}

    def cancel_once_running() -> None:
        while job_row(sessions, job_id).progress.get("step", 0) < 5:
            time.sleep(0.1)
        with transaction(sessions) as session:
            request_cancel(session, session.get_one(Job, job_id), utcnow())
        seen["state_after_request"] = job_row(sessions, job_id).state

    canceller = threading.Thread(target=cancel_once_running)
    canceller.start()
    assert run_training_job(job_id, context(sessions, settings)) == JobState.CANCELLED
    canceller.join()
    assert seen["state_after_request"] == JobState.CANCELLING  # never reported cancelled early
    job = job_row(sessions, job_id)
    assert job.state == JobState.CANCELLED and job.checkpoint_key is not None and job.model_id is None
    assert checkpoints_left(store, job_id) == []
    assert job.progress["step"] < 50 * 30


def _run_in_own_process(job_id: uuid.UUID, settings: Settings) -> None:
    engine = create_engine(settings.resolved_database_url())
    sessions = sessionmaker(engine, expire_on_commit=False)
    run_training_job(
        job_id,
        SupervisorContext(
            sessions=sessions,
            settings=settings,
            owner="doomed",
            enqueue=lambda *_: None,
            store=open_object_store(settings),
        ),
    )


def test_a_killed_worker_is_resumed_from_its_last_checkpoint(sessions, settings, uploaded, store) -> None:
    job_id = submit(sessions, uploaded, epochs=3, checkpoint_every_steps=10)
    doomed = multiprocessing.get_context("spawn").Process(target=_run_in_own_process, args=(job_id, settings))
    doomed.start()
    deadline = time.monotonic() + 120
    while job_row(sessions, job_id).checkpoint_key is None:
        assert time.monotonic() < deadline and doomed.is_alive(), "no checkpoint was recorded"
        time.sleep(0.1)
    os.kill(doomed.pid, signal.SIGKILL)  # the supervising worker dies; its child must notice and stop
    doomed.join()
    killed_at = job_row(sessions, job_id)
    checkpoints_before = [d for t, d in event_types(sessions, job_id) if t == "checkpoint"]

    time.sleep(settings.lease_seconds + 0.5)  # no more heartbeats: the lease expires
    sent: list[uuid.UUID] = []
    assert sweep_jobs(JobSweep(sessions, sent.append, store, timedelta(hours=1)), utcnow()) == [job_id]
    assert job_row(sessions, job_id).state == JobState.QUEUED

    assert run_training_job(job_id, context(sessions, settings)) == JobState.SUCCEEDED
    job = job_row(sessions, job_id)
    assert job.attempt == 2 and killed_at.attempt == 1
    last_recorded = next(d for d in checkpoints_before if d["key"] == killed_at.checkpoint_key)
    second_attempt = [
        d for t, d in event_types(sessions, job_id) if t == "checkpoint" and "attempt2" in d["key"]
    ]
    # The second attempt started where the last *recorded* checkpoint was: no step before it re-run.
    assert second_attempt and min(d["step"] for d in second_attempt) > last_recorded["step"]
    assert job.latest_metrics["epoch"] == 3


def test_a_lost_child_is_retried_after_a_backoff(sessions, settings, uploaded) -> None:
    job_id = submit(sessions, uploaded, epochs=50)
    sent: list[uuid.UUID] = []
    delays: list[float] = []
    killer = when_training(sessions, job_id, lambda: kill_training_child(job_id))
    backing_off = settings.model_copy(update={"retry_delay_seconds": 7.0})

    assert run_training_job(job_id, context(sessions, backing_off, sent, delays)) == JobState.QUEUED
    killer.join()
    assert sent == [job_id] and delays == [7.0]  # attempt 1: the base delay; it doubles per attempt
    assert context(sessions, backing_off).retry_delay(3) == 28.0
    job = job_row(sessions, job_id)
    assert job.state == JobState.QUEUED and job.attempt == 1 and job.lease_owner is None
    (retry,) = [
        d["retry_reason"] for t, d in event_types(sessions, job_id) if t == "state" and "retry_reason" in d
    ]
    assert "killed by SIGKILL" in retry and "out-of-memory" in retry  # what a user can act on


def test_a_child_lost_while_cancelling_ends_cancelled_not_retried(sessions, settings, uploaded) -> None:
    job_id = submit(sessions, uploaded, epochs=50)
    sent: list[uuid.UUID] = []

    def cancel_then_lose_the_child() -> None:
        with transaction(sessions) as session:
            request_cancel(session, session.get_one(Job, job_id), utcnow())
        kill_training_child(job_id)  # before the supervisor's next heartbeat sees the request

    killer = when_training(sessions, job_id, cancel_then_lose_the_child)
    assert run_training_job(job_id, context(sessions, settings, sent)) == JobState.CANCELLED
    killer.join()
    job = job_row(sessions, job_id)
    assert job.state == JobState.CANCELLED and job.lease_owner is None and sent == []


def wait_until_blocked_on_a_lock(engine: Engine, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    query = (
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )
    # Autocommit: inside one transaction Postgres keeps showing the first snapshot of pg_stat_activity.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        while connection.exec_driver_sql(query).scalar_one() == 0:
            if time.monotonic() > deadline:
                activity = connection.exec_driver_sql(
                    "SELECT state, wait_event_type, wait_event, left(query, 80) FROM pg_stat_activity"
                    " WHERE datname = current_database()"
                ).all()
                raise AssertionError(f"the supervisor never waited on the job's row: {activity}")
            time.sleep(0.05)


def test_a_cancel_committed_while_a_failure_is_handed_back_ends_cancelled(
    engine, sessions, settings, uploaded
) -> None:
    """The user's cancel holds the row while the worker hands a transient failure back for retry:
    the retry must see the cancel (ended at once), not leave the job in cancelling without a worker."""
    job_id = submit(sessions, uploaded)
    with transaction(sessions) as session:
        lease = claim(session, job_id, "test-worker", timedelta(minutes=5), utcnow())
    assert lease is not None
    failure = TrainingFailed(FailureReason.INFRASTRUCTURE, "the store answered 503", retryable=True)
    sent: list[uuid.UUID] = []
    outcome: list[JobState | None] = []
    with transaction(sessions) as session:  # the API's cancel: row locked, then cancelling
        request_cancel(session, session.get_one(Job, job_id, with_for_update=True), utcnow())
        handing_back = threading.Thread(
            target=lambda: outcome.append(_fail_or_retry(failure, lease, context(sessions, settings, sent)))
        )
        handing_back.start()
        wait_until_blocked_on_a_lock(engine)
    handing_back.join(timeout=60)
    assert outcome == [JobState.CANCELLED] and sent == []
    job = job_row(sessions, job_id)
    assert job.state == JobState.CANCELLED and job.lease_owner is None


def test_a_retry_the_broker_cannot_send_stays_queued_for_the_sweep(sessions, settings, uploaded) -> None:
    """The hand-back committed, then the broker refused the message: the hand-back still returns
    (so the attempt's clean-up follows) and the queued row is what the sweep sends again."""
    job_id = submit(sessions, uploaded)
    with transaction(sessions) as session:
        lease = claim(session, job_id, "test-worker", timedelta(minutes=5), utcnow())
    assert lease is not None
    nothing_listens = Celery("no-broker", broker=f"redis://127.0.0.1:{free_port()}/0")
    broker_down = replace(context(sessions, settings), enqueue=training_enqueuer(nothing_listens))
    failure = TrainingFailed(FailureReason.INFRASTRUCTURE, "the store answered 503", retryable=True)
    assert _fail_or_retry(failure, lease, broker_down) == JobState.QUEUED
    job = job_row(sessions, job_id)
    assert (job.state, job.attempt, job.lease_owner) == (JobState.QUEUED, 1, None)
    resend_after = timedelta(seconds=1)
    sweep = JobSweep(sessions, lambda _: None, broker_down.store, requeue_stale_after=resend_after)
    assert job_id in sweep_jobs(sweep, utcnow() + 2 * resend_after)


def test_checkpoints_uploaded_after_the_sweep_ended_the_job_are_removed(
    sessions, settings, uploaded, store
) -> None:
    """A worker that hung past its lease: the sweep fails its job (last attempt) and removes the
    checkpoints; the worker wakes and uploads one more before it learns the lease is gone. The
    attempt's own clean-up must remove that one, since no row will ever name it."""
    job_id = submit(sessions, uploaded, epochs=50, checkpoint_every_steps=2)
    with transaction(sessions) as session:
        session.get_one(Job, job_id).max_attempts = 1
    late_upload: list[str] = []
    hung, woken = threading.Event(), threading.Event()

    def beat_unless_hung(*args: Any, **kwargs: Any) -> Any:
        if hung.is_set():  # the worker hangs: it learns nothing until the late upload is in
            woken.wait(60)
        return heartbeat(*args, **kwargs)

    def reap_then_upload_late() -> None:
        hung.set()
        far_later = utcnow() + timedelta(hours=1)  # every lease has expired by then
        sweep = JobSweep(sessions, lambda _: None, store, timedelta(hours=2))
        deadline = time.monotonic() + 30
        while job_row(sessions, job_id).state != JobState.FAILED:  # a beat under way holds the row
            assert time.monotonic() < deadline, "the sweep never took the job back"
            sweep_jobs(sweep, far_later)
        # Not asserted: that the sweep removed everything. The child is still uploading, and an
        # upload racing the removal may stay (the local store then reports the folder not empty).
        key = object_key(str(uploaded[0]), "checkpoints", str(job_id), "late-upload.pt")
        store.put(key, b"uploaded after the sweep", content_type="application/octet-stream")
        late_upload.append(key)
        woken.set()

    during = when_training(sessions, job_id, reap_then_upload_late)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(supervisor, "heartbeat", beat_unless_hung)
        assert run_training_job(job_id, context(sessions, settings)) is None  # the lease was lost
    during.join()
    assert late_upload and store.head(late_upload[0]) is None
    assert checkpoints_left(store, job_id) == []


@pytest.fixture()
def proxied(database: str, settings: Settings) -> Iterator[tuple[TcpProxy, sessionmaker[Session], Settings]]:
    """Sessions and settings that reach Postgres only through a proxy the test can cut."""
    url = make_url(database)
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        through_proxy = url.set(port=proxy.port).render_as_string(hide_password=False)
        engine = make_engine(through_proxy)
        yield proxy, make_session_factory(engine), settings.model_copy(update={"database_url": through_proxy})
        engine.dispose()


def test_a_database_outage_during_training_loses_nothing(sessions, proxied, uploaded, store) -> None:
    proxy, cut_off, proxied_settings = proxied
    job_id = submit(sessions, uploaded, epochs=4, mode="baseline", checkpoint_every_steps=2)
    seen: dict[str, int] = {}

    def uploads() -> list[Path]:  # the child uploads checkpoints whatever the database does
        return checkpoints_left(store, job_id)

    def outage() -> None:
        proxy.cut()
        before, cut_at = len(uploads()), time.monotonic()
        # Longer than the 3 s lease, and until checkpoints were uploaded that could not be recorded.
        while time.monotonic() - cut_at < 3.0 or (
            len(uploads()) < before + 2 and time.monotonic() - cut_at < 60
        ):
            time.sleep(0.1)
        seen["step_when_back"] = job_row(sessions, job_id).progress["step"]
        proxy.restore()

    during = when_training(sessions, job_id, outage)
    assert run_training_job(job_id, context(cut_off, proxied_settings)) == JobState.SUCCEEDED
    during.join()
    job = job_row(sessions, job_id)
    assert job.attempt == 1 and seen["step_when_back"] < 4 * 30  # the outage came mid-training
    with sessions() as session:
        epochs = session.scalars(select(JobEpoch.epoch).where(JobEpoch.job_id == job_id)).all()
    assert sorted(epochs) == [1, 2, 3, 4]
    recorded = [d["key"] for t, d in event_types(sessions, job_id) if t == "checkpoint"]
    # Every checkpoint (each 2nd step), including those uploaded during the outage, recorded in order.
    steps = [int(key.rsplit("step", 1)[1].removesuffix(".pt")) for key in recorded]
    assert steps == list(range(2, 4 * 30 + 1, 2)) and job.checkpoint_key == recorded[-1]


def test_a_database_gone_for_good_leaves_the_job_to_the_reaper(sessions, proxied, uploaded, store) -> None:
    proxy, cut_off, proxied_settings = proxied
    proxied_settings = proxied_settings.model_copy(update={"end_write_patience_seconds": 0.0})  # one lease
    job_id = submit(sessions, uploaded, epochs=2)
    during = when_training(sessions, job_id, proxy.cut)

    started = time.monotonic()
    assert run_training_job(job_id, context(cut_off, proxied_settings)) is None  # nothing could be written
    during.join()
    assert time.monotonic() - started >= proxied_settings.lease_seconds  # it kept trying for a lease
    assert job_row(sessions, job_id).state == JobState.RUNNING  # as the outage left it
    # The trained model's files stay: for all the worker knows, its success was committed.
    assert list(store.root.glob(f"tenants/{job_row(sessions, job_id).tenant_id}/models/*/model.safetensors"))
    time.sleep(proxied_settings.lease_seconds)
    swept = sweep_jobs(JobSweep(sessions, lambda _: None, store, timedelta(hours=1)), utcnow())
    assert job_id in swept  # the sweep is global
    assert job_row(sessions, job_id).state == JobState.QUEUED


def test_a_finished_attempt_re_queued_during_an_outage_takes_its_job_back(
    sessions, proxied, uploaded, store
) -> None:
    """Issue 16: the database is away longer than a lease while the child finishes, and the sweep
    re-queues the job meanwhile. Once the database is back the attempt claims the job again and
    records its model: nothing is trained twice, and no model is left without a row."""
    proxy, cut_off, proxied_settings = proxied
    job_id = submit(sessions, uploaded, epochs=2, checkpoint_every_steps=10)
    tenant_id = uploaded[0]

    def models() -> set[str]:
        return {p.parent.name for p in store.root.glob(f"tenants/{tenant_id}/models/*/model.safetensors")}

    earlier = models()  # other tests' jobs of the same tenant

    def outage_until_the_sweep_re_queued_it() -> None:
        proxy.cut()
        deadline = time.monotonic() + 120
        while models() == earlier:
            assert time.monotonic() < deadline, "the child never uploaded its model"
            time.sleep(0.1)
        time.sleep(proxied_settings.lease_seconds)
        sweep = JobSweep(sessions, lambda _: None, store, timedelta(hours=1))  # not through the proxy
        assert sweep_jobs(sweep, utcnow()) == [job_id]
        assert job_row(sessions, job_id).state == JobState.QUEUED
        proxy.restore()

    during = when_training(sessions, job_id, outage_until_the_sweep_re_queued_it)
    assert run_training_job(job_id, context(cut_off, proxied_settings)) == JobState.SUCCEEDED
    during.join()
    job = job_row(sessions, job_id)
    assert (job.state, job.attempt) == (JobState.SUCCEEDED, 2)  # the second claim is the take-back
    with sessions() as session:
        model = session.get_one(Model, job.model_id)
        epochs = session.scalars(select(JobEpoch.epoch).where(JobEpoch.job_id == job_id)).all()
    assert sorted(epochs) == [1, 2]  # recorded after the take-back
    assert models() - earlier == {str(model.id)}  # one model, trained once, and the row names it
    states = [d["state"] for t, d in event_types(sessions, job_id) if t == "state"]
    assert states == ["running", "queued", "running", "succeeded"]


def test_a_message_that_finds_the_database_unreachable_is_sent_again(sessions, proxied, uploaded) -> None:
    proxy, cut_off, proxied_settings = proxied
    job_id = submit(sessions, uploaded, epochs=2)
    sent: list[uuid.UUID] = []
    delays: list[float] = []
    proxy.cut()
    try:
        assert run_training_job(job_id, context(cut_off, proxied_settings, sent, delays)) is None
    finally:
        proxy.restore()
    assert sent == [job_id] and delays == [CLAIM_RETRY_S]  # not lost with the acknowledged message
    assert job_row(sessions, job_id).state == JobState.QUEUED
