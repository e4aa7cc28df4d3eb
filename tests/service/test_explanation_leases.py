"""Explanation delivery through rows, against a real Postgres and real object stores: claims with a
lease, heartbeats, the sweep (expired leases, lost messages), and the removal of abandoned shards.

The runner tests run a really trained model; a store wrapper stands between the runner and the real
store only to move the test clock (and run the sweep) at the moment a shard is written.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
import torch
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from persistence.db import transaction
from persistence.explanations.leases import (
    ExplanationClaim,
    claim_explanation,
    fail_explanation,
    finish_explanation,
    heartbeat_explanation,
    release_explanation,
    request_explanation_cancel,
)
from persistence.explanations.objects import (
    NPZ_CONTENT_TYPE,
    attempt_prefix,
    images_npz,
    inputs_key,
    maps_key,
)
from persistence.explanations.sweep import stale_queued_explanations
from persistence.models import Explanation, Job, Model
from persistence.objects import (
    LocalObjectStore,
    ObjectStore,
    ObjectStoreError,
    ObjectStoreUnavailableError,
    StoredObject,
)
from persistence.states import FailureReason, JobState
from service.explanation_rows import insert_tenant
from service.postgres import fresh_database, run_alembic
from service.trained_models import TrainedRun, store_model, train_tiny_run
from worker.explain.cache import ExplainerCache, load_explainer
from worker.explain.runner import ExplainContext, ExplainOutcome, run_explanation
from worker.reaper import ExplanationSweep, sweep_explanations

LEASE = timedelta(seconds=120)
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
STALE_AFTER = timedelta(minutes=5)
SHARD = np.zeros((1, 2, 2), dtype=np.float32).tobytes()


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    with fresh_database("batchcam_explain_leases") as url:
        run_alembic(url, upgrade=True, revision="head")
        engine = create_engine(url)
        yield engine
        engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    with engine.begin() as connection:
        connection.execute(text("TRUNCATE tenants CASCADE"))  # jobs, models, explanations with it
    return sessionmaker(engine, expire_on_commit=False)


@pytest.fixture(params=["local_store", "s3_store"])
def store(request: pytest.FixtureRequest) -> ObjectStore:
    return request.getfixturevalue(request.param)


@dataclass
class CommittedEnqueue:
    """The sweep's explain enqueuer; looks at the row through its own connection, so a message sent
    before the commit would see the row still ``running``."""

    engine: Engine
    calls: list[uuid.UUID] = field(default_factory=list)
    states_seen: list[str | None] = field(default_factory=list)

    def __call__(self, explanation_id: uuid.UUID) -> None:
        with self.engine.connect() as connection:
            state = connection.scalar(select(Explanation.state).where(Explanation.id == explanation_id))
        self.calls.append(explanation_id)
        self.states_seen.append(state)


@pytest.fixture
def enqueue(engine: Engine) -> CommittedEnqueue:
    return CommittedEnqueue(engine)


def bare_model(sessions: sessionmaker[Session], tenant_id: uuid.UUID) -> uuid.UUID:
    """A model row without artifacts: enough for the tests that never run the explainer."""
    with transaction(sessions) as session:
        job = Job(tenant_id=tenant_id, spec={}, state=JobState.SUCCEEDED, progress={})
        session.add(job)
        session.flush()
        model = Model(tenant_id=tenant_id, job_id=job.id, spec={}, summary={}, artifacts={})
        session.add(model)
        session.flush()
        return model.id


def new_explanation(
    sessions: sessionmaker[Session],
    tenant_id: uuid.UUID | None = None,
    model_id: uuid.UUID | None = None,
    request: dict[str, Any] | None = None,
) -> uuid.UUID:
    tenant_id = tenant_id or insert_tenant(sessions)
    model_id = model_id or bare_model(sessions, tenant_id)
    with transaction(sessions) as session:
        explanation = Explanation(
            tenant_id=tenant_id,
            model_id=model_id,
            state=JobState.QUEUED,
            request=request or {"method": "gradcam"},
            attempt=0,
            created_at=T0,
            updated_at=T0,
        )
        session.add(explanation)
        session.flush()
        return explanation.id


def load(sessions: sessionmaker[Session], explanation_id: uuid.UUID) -> Explanation:
    with sessions() as session:
        return session.get_one(Explanation, explanation_id)


def claim(
    sessions: sessionmaker[Session], explanation_id: uuid.UUID, owner: str, now: datetime
) -> ExplanationClaim | None:
    with transaction(sessions) as session:
        return claim_explanation(session, explanation_id, owner, LEASE, now)


def sweeper(
    sessions: sessionmaker[Session],
    enqueue: Callable[[uuid.UUID], None],
    store: ObjectStore,
    max_attempts: int = 3,
) -> ExplanationSweep:
    return ExplanationSweep(sessions, enqueue, store, STALE_AFTER, max_attempts)


# --- claims and heartbeats ----------------------------------------------------------------------


def test_a_claim_takes_a_lease_and_a_duplicate_claim_finds_it_held(sessions) -> None:
    explanation_id = new_explanation(sessions)
    held = claim(sessions, explanation_id, "worker-a", T0)
    assert held is not None and held.attempt == 1 and held.owner == "worker-a"
    assert claim(sessions, explanation_id, "worker-b", T0) is None  # a duplicate delivery
    row = load(sessions, explanation_id)
    assert (row.state, row.attempt, row.lease_owner) == (JobState.RUNNING, 1, "worker-a")
    assert row.lease_expires_at == T0 + LEASE and row.started_at == T0 and row.updated_at == T0
    assert held.tenant_id == row.tenant_id


def test_concurrent_claims_have_exactly_one_winner(sessions) -> None:
    explanation_id = new_explanation(sessions)
    barrier = threading.Barrier(6)
    winners: list[str] = []

    def contend(owner: str) -> None:
        barrier.wait()
        if claim(sessions, explanation_id, owner, T0) is not None:
            winners.append(owner)

    threads = [threading.Thread(target=contend, args=(f"w{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1 and load(sessions, explanation_id).lease_owner == winners[0]


def test_only_the_holder_extends_the_lease(sessions) -> None:
    explanation_id = new_explanation(sessions)
    held = claim(sessions, explanation_id, "w", T0)
    assert held is not None
    later = T0 + timedelta(seconds=50)
    impostors = [
        ExplanationClaim(explanation_id, held.tenant_id, "someone-else", held.attempt),
        ExplanationClaim(explanation_id, held.tenant_id, "w", held.attempt - 1),  # an older attempt
    ]
    for impostor in impostors:
        with transaction(sessions) as session:
            assert not heartbeat_explanation(session, impostor, LEASE, later)
    assert load(sessions, explanation_id).lease_expires_at == T0 + LEASE
    with transaction(sessions) as session:
        assert heartbeat_explanation(session, held, LEASE, later)
    assert load(sessions, explanation_id).lease_expires_at == later + LEASE


@pytest.mark.parametrize("ending", ["finish", "fail", "release"])
def test_every_end_of_an_attempt_clears_its_lease(sessions, ending: str) -> None:
    explanation_id = new_explanation(sessions)
    held = claim(sessions, explanation_id, "w", T0)
    assert held is not None
    end = T0 + timedelta(seconds=5)
    with transaction(sessions) as session:
        if ending == "finish":
            assert finish_explanation(session, held, [], end)
        elif ending == "fail":
            assert fail_explanation(session, held, FailureReason.INVALID_INPUT, "bad", end)
        else:
            assert release_explanation(session, held, end)
    row = load(sessions, explanation_id)
    expected = {"finish": "succeeded", "fail": "failed", "release": "queued"}[ending]
    assert (row.state, row.lease_owner, row.lease_expires_at, row.updated_at) == (expected, None, None, end)
    with transaction(sessions) as session:  # ended once: the same claim cannot end it again
        assert not heartbeat_explanation(session, held, LEASE, end)
        assert not finish_explanation(session, held, [], end)


# --- the sweep ----------------------------------------------------------------------------------


def test_a_live_lease_is_untouched_by_the_sweep(sessions, enqueue, local_store) -> None:
    explanation_id = new_explanation(sessions)
    claim(sessions, explanation_id, "w", T0)
    just_before = T0 + LEASE - timedelta(seconds=1)
    assert sweep_explanations(sweeper(sessions, enqueue, local_store), just_before) == []
    row = load(sessions, explanation_id)
    assert (row.state, row.lease_owner, row.lease_expires_at) == ("running", "w", T0 + LEASE)
    assert enqueue.calls == []


def test_an_expired_lease_is_requeued_then_fails_with_worker_lost(sessions, enqueue, local_store) -> None:
    explanation_id = new_explanation(sessions)
    sweep = sweeper(sessions, enqueue, local_store, max_attempts=2)
    now = T0
    for attempt in (1, 2):
        held = claim(sessions, explanation_id, f"w{attempt}", now)
        assert held is not None and held.attempt == attempt
        now = now + LEASE + timedelta(seconds=1)  # the worker died: nobody renews
        sent = sweep_explanations(sweep, now)
        with transaction(sessions) as session:  # the lost worker wakes up: nothing is its anymore
            assert not heartbeat_explanation(session, held, LEASE, now)
            assert not finish_explanation(session, held, [], now)
        if attempt == 1:
            assert sent == [explanation_id] and load(sessions, explanation_id).state == "queued"
    assert sent == []  # failed, not sent again
    assert enqueue.calls == [explanation_id] and enqueue.states_seen == ["queued"]  # sent after commit
    row = load(sessions, explanation_id)
    assert (row.state, row.failure_reason, row.attempt) == ("failed", FailureReason.WORKER_LOST, 2)
    assert row.lease_owner is None and row.finished_at == now
    assert row.failure_message == "the explain worker stopped responding (attempt 2 of 2)"


def test_a_running_row_without_an_owner_is_taken_back(sessions, enqueue, local_store) -> None:
    """What migration 0002 left of explanations running before leases existed: an expired lease and
    no owner. The sweep's conditional write must match the missing owner too."""
    explanation_id = new_explanation(sessions)
    with transaction(sessions) as session:
        row = session.get_one(Explanation, explanation_id)
        row.state, row.attempt, row.lease_owner, row.lease_expires_at = "running", 1, None, T0
    assert sweep_explanations(sweeper(sessions, enqueue, local_store), T0 + timedelta(seconds=1)) == [
        explanation_id
    ]
    assert load(sessions, explanation_id).state == "queued"


def test_a_stale_queued_explanation_is_sent_again_at_growing_intervals(
    sessions, enqueue, local_store
) -> None:
    lost = new_explanation(sessions)  # its message never arrived
    sweep = sweeper(sessions, enqueue, local_store)
    assert sweep_explanations(sweep, T0 + STALE_AFTER - timedelta(seconds=1)) == []  # not stale yet
    first = T0 + STALE_AFTER
    assert sweep_explanations(sweep, first) == [lost]
    assert sweep_explanations(sweep, first + STALE_AFTER - timedelta(seconds=1)) == []  # just re-sent
    second = first + STALE_AFTER
    assert sweep_explanations(sweep, second) == [lost]
    # Waited 2 periods, so the next send is 2 periods later, not 1 (the spacing grows with the wait).
    assert sweep_explanations(sweep, second + STALE_AFTER) == []
    assert sweep_explanations(sweep, second + 2 * STALE_AFTER) == [lost]
    assert enqueue.states_seen == ["queued"] * 3 and load(sessions, lost).state == "queued"


def test_a_released_explanation_waits_a_full_period_before_being_sent_again(sessions) -> None:
    explanation_id = new_explanation(sessions)
    held = claim(sessions, explanation_id, "w", T0 + timedelta(hours=1))
    assert held is not None
    released_at = T0 + timedelta(hours=1, seconds=3)
    with transaction(sessions) as session:
        assert release_explanation(session, held, released_at)
    with transaction(sessions) as session:
        assert stale_queued_explanations(session, released_at, timedelta(seconds=1)) == []


def write_shard(store: ObjectStore, tenant_id: uuid.UUID, explanation_id: uuid.UUID, attempt: int) -> str:
    key = maps_key(tenant_id, explanation_id, attempt, 0)
    store.put(key, SHARD, content_type=NPZ_CONTENT_TYPE)
    return key


def test_the_sweep_removes_the_shards_of_the_attempts_it_takes_back(sessions, enqueue, store) -> None:
    tenant_id = insert_tenant(sessions)
    doomed, alive = new_explanation(sessions, tenant_id), new_explanation(sessions, tenant_id)
    inputs = inputs_key(tenant_id, doomed)
    store.put(inputs, b"inputs", content_type=NPZ_CONTENT_TYPE)
    claim(sessions, doomed, "dead", T0)
    first = write_shard(store, tenant_id, doomed, 1)
    claim(sessions, alive, "alive", T0 + 10 * LEASE)  # claimed later: its lease runs throughout
    alive_shard = write_shard(store, tenant_id, alive, 1)
    sweep = sweeper(sessions, enqueue, store, max_attempts=2)

    assert sweep_explanations(sweep, T0 + LEASE + timedelta(seconds=1)) == [doomed]
    assert store.head(first) is None  # the abandoned attempt's shards went
    assert store.head(inputs) is not None and store.head(alive_shard) is not None  # nothing else did

    claim(sessions, doomed, "dead-again", T0 + LEASE + timedelta(seconds=2))
    second = write_shard(store, tenant_id, doomed, 2)
    assert sweep_explanations(sweep, T0 + 3 * LEASE) == []  # attempts exhausted: failed, not sent
    assert load(sessions, doomed).state == "failed" and store.head(second) is None
    assert store.head(inputs) is not None and store.head(alive_shard) is not None
    assert load(sessions, alive).state == "running"


def test_a_store_that_cannot_delete_does_not_stop_the_sweep(sessions, enqueue, local_store) -> None:
    explanation_id = new_explanation(sessions)
    claim(sessions, explanation_id, "dead", T0)

    class Undeletable(LocalObjectStore):
        def delete_prefix(self, prefix: str) -> int:
            raise ObjectStoreUnavailableError("test: the store is down")

    broken = Undeletable(local_store.root)
    assert sweep_explanations(sweeper(sessions, enqueue, broken), T0 + 2 * LEASE) == [explanation_id]
    assert load(sessions, explanation_id).state == "queued"


def test_a_broker_failure_in_the_sweep_still_removes_the_taken_back_shards(sessions, local_store) -> None:
    tenant_id = insert_tenant(sessions)
    explanation_id = new_explanation(sessions, tenant_id)
    claim(sessions, explanation_id, "dead", T0)
    shard = write_shard(local_store, tenant_id, explanation_id, 1)

    def broker_down(_: uuid.UUID) -> None:
        raise ConnectionError("test: broker down")

    assert sweep_explanations(sweeper(sessions, broker_down, local_store), T0 + 2 * LEASE) == []  # none sent
    assert local_store.head(shard) is None
    row = load(sessions, explanation_id)  # committed first: the next stale sweep sends it again
    assert (row.state, row.updated_at) == ("queued", T0 + 2 * LEASE)


# --- the runner: renewing between batches, stopping when the lease was lost, cleaning up ----------


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> TrainedRun:
    return train_tiny_run(tmp_path_factory.mktemp("trained") / "run")


@dataclass
class SteppedClock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now


class ShardHook:
    """A real store whose map writes first call ``before(n)`` (n counts the shards, from 1)."""

    def __init__(self, inner: ObjectStore, before: Callable[[int], None]) -> None:
        self.inner, self.before, self.shards = inner, before, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def put(self, key: str, data: bytes, *, content_type: str) -> StoredObject:
        self.shards += 1
        self.before(self.shards)
        return self.inner.put(key, data, content_type=content_type)


@dataclass(frozen=True)
class Submitted:
    tenant_id: uuid.UUID
    explanation_id: uuid.UUID
    inputs: str


def submit(sessions: sessionmaker[Session], store: ObjectStore, run: TrainedRun, count: int) -> Submitted:
    """An uploaded-images explanation, stored as the API stores one."""
    tenant_id = insert_tenant(sessions)
    model_id = store_model(sessions, store, tenant_id, run)
    explanation_id = uuid.uuid4()
    key = inputs_key(tenant_id, explanation_id)
    images = [run.test_data.images[i].numpy() for i in range(count)]
    store.put(key, images_npz(images), content_type=NPZ_CONTENT_TYPE)
    request = {
        "method": "gradcam",
        "targets": None,
        "count": count,
        "inputs": {"kind": "upload", "key": key, "names": [f"{i}.png" for i in range(count)]},
    }
    with transaction(sessions) as session:
        session.add(
            Explanation(
                id=explanation_id, tenant_id=tenant_id, model_id=model_id, state="queued", request=request
            )
        )
    return Submitted(tenant_id, explanation_id, key)


def runner(
    sessions: sessionmaker[Session], store: ObjectStore, real: ObjectStore, clock: SteppedClock
) -> ExplainContext:
    explainers = ExplainerCache(lambda stored: load_explainer(real, stored, torch.device("cpu")))
    return ExplainContext(
        sessions=sessions,
        store=store,
        explainers=explainers,
        batch_size=1,
        clock=clock,
        owner="w",
        lease_for=LEASE,
    )


def attempt_objects(store: LocalObjectStore, submitted: Submitted, attempt: int) -> list[str]:
    folder = store.root / attempt_prefix(submitted.tenant_id, submitted.explanation_id, attempt)
    return sorted(path.name for path in folder.glob("*")) if folder.exists() else []


def test_a_long_request_keeps_its_lease_across_batches(sessions, enqueue, local_store, run) -> None:
    submitted = submit(sessions, local_store, run, count=4)
    clock = SteppedClock()
    sweep = sweeper(sessions, enqueue, local_store)

    def half_a_lease_per_batch(_: int) -> None:  # 4 batches take twice the lease in all
        clock.now += LEASE / 2
        sweep_explanations(sweep, clock.now)

    hooked = ShardHook(local_store, half_a_lease_per_batch)
    outcome = run_explanation(submitted.explanation_id, runner(sessions, hooked, local_store, clock))
    assert outcome == ExplainOutcome.SUCCEEDED and enqueue.calls == []
    row = load(sessions, submitted.explanation_id)
    assert row.state == "succeeded" and row.attempt == 1 and row.lease_owner is None
    assert row.results is not None and all("/attempt-1/" in item["maps_key"] for item in row.results)
    assert attempt_objects(local_store, submitted, 1) == [f"maps-{shard}.npz" for shard in range(4)]


def test_a_worker_that_lost_its_lease_stops_and_removes_its_shards(
    sessions, enqueue, local_store, run
) -> None:
    submitted = submit(sessions, local_store, run, count=3)
    clock = SteppedClock()
    sweep = sweeper(sessions, enqueue, local_store)

    def stall_before_the_second_shard(shard: int) -> None:
        if shard == 2:  # the worker hung past its lease: the sweep takes the explanation back
            clock.now += 2 * LEASE
            assert sweep_explanations(sweep, clock.now) == [submitted.explanation_id]

    hooked = ShardHook(local_store, stall_before_the_second_shard)
    outcome = run_explanation(submitted.explanation_id, runner(sessions, hooked, local_store, clock))
    assert outcome == ExplainOutcome.NOT_CLAIMED and hooked.shards == 2  # stopped at the next renewal
    assert attempt_objects(local_store, submitted, 1) == []  # the sweep's and the late write's removed
    row = load(sessions, submitted.explanation_id)
    assert (row.state, row.attempt, row.lease_owner) == ("queued", 1, None)

    again = run_explanation(submitted.explanation_id, runner(sessions, local_store, local_store, clock))
    assert again == ExplainOutcome.SUCCEEDED
    row = load(sessions, submitted.explanation_id)
    assert row.attempt == 2 and all("/attempt-2/" in item["maps_key"] for item in row.results or [])
    assert local_store.head(submitted.inputs) is not None


@pytest.mark.parametrize(
    ("error", "outcome", "state"),
    [
        (ObjectStoreUnavailableError("test: store unreachable"), ExplainOutcome.RETRY, "queued"),
        (ObjectStoreError("test: store refused the write"), ExplainOutcome.FAILED, "failed"),
    ],
)
def test_an_attempt_that_ends_without_success_removes_its_shards(
    sessions, local_store, run, error: Exception, outcome: ExplainOutcome, state: str
) -> None:
    submitted = submit(sessions, local_store, run, count=3)

    def break_on_the_second_shard(shard: int) -> None:
        if shard == 2:
            raise error

    hooked = ShardHook(local_store, break_on_the_second_shard)
    assert (
        run_explanation(submitted.explanation_id, runner(sessions, hooked, local_store, SteppedClock()))
        == outcome
    )
    assert attempt_objects(local_store, submitted, 1) == []
    row = load(sessions, submitted.explanation_id)
    assert (row.state, row.lease_owner, row.lease_expires_at) == (state, None, None)
    assert local_store.head(submitted.inputs) is not None


# --- cancellation -------------------------------------------------------------------------------


def test_cancelling_a_queued_explanation_ends_it_at_once(sessions) -> None:
    explanation_id = new_explanation(sessions)
    for _ in range(2):  # idempotent
        with transaction(sessions) as session:
            request_explanation_cancel(session, load(sessions, explanation_id), T0)
    row = load(sessions, explanation_id)
    assert (row.state, row.finished_at) == ("cancelled", T0)
    assert claim(sessions, explanation_id, "late-worker", T0) is None  # a cancelled request never runs


def test_a_worker_vanishing_while_cancelling_is_confirmed_cancelled_by_the_sweep(
    sessions, enqueue, local_store
) -> None:
    explanation_id = new_explanation(sessions)
    held = claim(sessions, explanation_id, "w", T0)
    assert held is not None
    with transaction(sessions) as session:
        request_explanation_cancel(session, load(sessions, explanation_id), T0)
        assert heartbeat_explanation(session, held, LEASE, T0) == "cancelling"  # the worker is told
    assert sweep_explanations(sweeper(sessions, enqueue, local_store), T0 + 2 * LEASE) == []  # not re-sent
    row = load(sessions, explanation_id)
    assert (row.state, row.lease_owner) == ("cancelled", None) and enqueue.calls == []


@pytest.mark.parametrize("ending", ["fail", "release"])
def test_an_attempt_failing_while_cancelling_ends_cancelled(sessions, ending: str) -> None:
    explanation_id = new_explanation(sessions)
    held = claim(sessions, explanation_id, "w", T0)
    assert held is not None
    with transaction(sessions) as session:
        request_explanation_cancel(session, load(sessions, explanation_id), T0)
    with transaction(sessions) as session:
        if ending == "fail":
            ended = fail_explanation(session, held, FailureReason.INFRASTRUCTURE, "store down", T0)
        else:
            ended = release_explanation(session, held, T0)
    assert ended == "cancelled" and load(sessions, explanation_id).state == "cancelled"


def test_a_running_explanation_stops_between_batches_and_removes_its_shards(
    sessions, local_store, run
) -> None:
    submitted = submit(sessions, local_store, run, count=4)
    clock = SteppedClock()

    def cancel_after_the_first_shard(shard: int) -> None:
        if shard == 2:
            with transaction(sessions) as session:
                request_explanation_cancel(session, load(sessions, submitted.explanation_id), clock.now)
            clock.now += LEASE / 2  # the next renewal is due: the worker learns of the request

    hooked = ShardHook(local_store, cancel_after_the_first_shard)
    outcome = run_explanation(submitted.explanation_id, runner(sessions, hooked, local_store, clock))
    assert outcome == ExplainOutcome.CANCELLED and hooked.shards == 2  # no batch after the request
    row = load(sessions, submitted.explanation_id)
    assert (row.state, row.lease_owner, row.results) == ("cancelled", None, None)
    assert attempt_objects(local_store, submitted, 1) == []


def test_a_message_that_finds_the_database_unreachable_is_retried_not_raised(local_store, run) -> None:
    """Messages are acknowledged on receipt: raising would lose this one, and the row would wait for
    the stale re-send (minutes). RETRY makes the task send it again a few seconds later."""
    unreachable = create_engine(
        "postgresql+psycopg://postgres@127.0.0.1:1/none", connect_args={"connect_timeout": 2}
    )
    try:
        context = runner(sessionmaker(unreachable), local_store, local_store, SteppedClock())
        assert run_explanation(uuid.uuid4(), context) == ExplainOutcome.RETRY
    finally:
        unreachable.dispose()
