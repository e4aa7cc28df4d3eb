"""Postgres change notifications: the migration's triggers announce an explanation's end and a job's
change; one listener per process wakes exactly the waiters of that row; ``?wait`` is answered by the
notification, not by its poll; a dropped listener connection comes back and waiters re-read."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text, update
from sqlalchemy.orm import Session, sessionmaker

from api.explanations import waiting
from persistence.db import transaction
from persistence.models import Explanation, JobEvent
from persistence.notifications import ChangeListener, Channel, libpq_url, wait_for_change
from persistence.states import JobState
from service.explanation_rows import insert_explanation, insert_model, insert_tenant
from service.postgres import fresh_database, run_alembic

WOKEN_WITHIN_S = 2.0  # a notification arrives in ms; the fallback polls below are set far above this


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with fresh_database("batchcam_notify") as url:
        run_alembic(url, upgrade=True, revision="head")
        yield url


@pytest.fixture(scope="module")
def sessions(database: str) -> Iterator[sessionmaker[Session]]:
    engine = create_engine(database)
    yield sessionmaker(engine, expire_on_commit=False)
    engine.dispose()


async def live(listener: ChangeListener) -> asyncio.Task[None]:
    task = asyncio.create_task(listener.listen())
    deadline = time.monotonic() + 10
    while not listener.live:
        assert time.monotonic() < deadline, "the listener did not connect"
        await asyncio.sleep(0.01)
    return task


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def end_explanation(sessions: sessionmaker[Session], explanation_id: uuid.UUID, state: JobState) -> None:
    with transaction(sessions) as session:
        session.execute(update(Explanation).where(Explanation.id == explanation_id).values(state=state))


def test_sqlite_and_other_urls_have_no_listener_and_postgres_urls_become_libpq_ones() -> None:
    assert libpq_url("sqlite:///x.db") is None
    assert libpq_url("postgresql+psycopg://u:p@h:5/d") == "postgresql://u:p@h:5/d"


def test_an_explanation_s_end_wakes_its_waiters_and_no_others(
    database: str, sessions: sessionmaker[Session]
) -> None:
    tenant = insert_tenant(sessions)
    model = insert_model(sessions, tenant)
    ending, running = (insert_explanation(sessions, tenant, model, state=JobState.QUEUED) for _ in range(2))

    async def scenario() -> None:
        listener = ChangeListener(libpq_url(database))
        task = await live(listener)
        with (
            listener.watch(Channel.EXPLANATION_ENDED, str(ending)) as ended,
            listener.watch(Channel.EXPLANATION_ENDED, str(running)) as other,
        ):
            end_explanation(sessions, running, JobState.RUNNING)  # not an end: no notification
            end_explanation(sessions, ending, JobState.SUCCEEDED)
            started = time.monotonic()
            await wait_for_change(ended, WOKEN_WITHIN_S * 5)
            assert time.monotonic() - started < WOKEN_WITHIN_S
            assert not other.is_set()
        await stop(task)

    asyncio.run(scenario())


def test_a_job_s_new_event_and_row_change_wake_its_stream(
    database: str, sessions: sessionmaker[Session]
) -> None:
    tenant = insert_tenant(sessions)
    model = insert_model(sessions, tenant)
    with sessions() as session:
        job_id = session.execute(text("SELECT job_id FROM models WHERE id = :m"), {"m": model}).scalar_one()

    async def scenario() -> None:
        listener = ChangeListener(libpq_url(database))
        task = await live(listener)
        with listener.watch(Channel.JOB_CHANGED, str(job_id)) as changed:
            with transaction(sessions) as session:
                session.add(JobEvent(job_id=job_id, type="epoch", data={"epoch": 1}))
            await wait_for_change(changed, WOKEN_WITHIN_S * 5)
            assert not changed.is_set()  # cleared for the next wait
            with transaction(sessions) as session:
                session.execute(
                    text("UPDATE jobs SET progress = '{\"step\": 3}' WHERE id = :j"), {"j": job_id}
                )
            started = time.monotonic()
            await wait_for_change(changed, WOKEN_WITHIN_S * 5)
            assert time.monotonic() - started < WOKEN_WITHIN_S
        await stop(task)

    asyncio.run(scenario())


def test_wait_is_answered_by_the_notification_not_its_fallback_poll(
    database: str, sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(waiting, "NOTIFIED_POLL_SECONDS", 60.0)  # a poll would come far too late
    tenant = insert_tenant(sessions)
    model = insert_model(sessions, tenant)
    explanation_id = insert_explanation(sessions, tenant, model, state=JobState.RUNNING)

    async def scenario() -> float:
        listener = ChangeListener(libpq_url(database))
        task = await live(listener)
        loop = asyncio.get_running_loop()
        loop.call_later(0.3, end_explanation, sessions, explanation_id, JobState.SUCCEEDED)
        started = time.monotonic()
        finished = await waiting.wait_until_finished(sessions, listener, explanation_id, 30)
        waited = time.monotonic() - started
        assert finished is not None and finished.state == JobState.SUCCEEDED
        await stop(task)
        return waited

    assert 0.3 <= asyncio.run(scenario()) < 0.3 + WOKEN_WITHIN_S


def test_a_dropped_listener_reconnects_and_wakes_every_waiter_to_read_again(
    database: str, sessions: sessionmaker[Session]
) -> None:
    tenant = insert_tenant(sessions)
    model = insert_model(sessions, tenant)
    explanation_id = insert_explanation(sessions, tenant, model, state=JobState.RUNNING)

    async def scenario() -> None:
        listener = ChangeListener(libpq_url(database))
        task = await live(listener)
        with listener.watch(Channel.EXPLANATION_ENDED, str(explanation_id)) as ended:
            with sessions() as session:  # what a database restart or a network cut does to it
                session.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE query LIKE 'LISTEN%' AND datname = current_database()"
                    )
                )
            await wait_for_change(ended, 10)  # woken by the loss: a notification may have been missed
            deadline = time.monotonic() + 10
            while not listener.live:
                assert time.monotonic() < deadline, "the listener did not come back"
                await asyncio.sleep(0.05)
            end_explanation(sessions, explanation_id, JobState.FAILED)
            started = time.monotonic()
            await wait_for_change(ended, WOKEN_WITHIN_S * 5)
            assert time.monotonic() - started < WOKEN_WITHIN_S
        await stop(task)

    asyncio.run(scenario())
