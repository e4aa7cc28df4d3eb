"""The outbox and the sender against real Postgres and a real local receiver: what ends produces
exactly the subscribed events, signed so the reference verifier accepts them; a rolled-back change
produces none; a receiver that is down gets the event later with the same webhook-id; a sender that
died loses nothing; receivers that are not allowed, redirects and long answers are handled."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import create_engine, delete, func, select
from sqlalchemy.orm import Session, sessionmaker
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from persistence.db import transaction
from persistence.explanations.leases import (
    claim_explanation,
    fail_explanation,
    finish_explanation,
    finish_explanations,
    request_explanation_cancel,
)
from persistence.explanations.sweep import reap_expired_explanations
from persistence.models import Explanation, WebhookAttempt, WebhookDelivery, WebhookEndpoint, utcnow
from persistence.states import FailureReason, JobState
from persistence.webhooks.deliveries import claim_due, record_attempt, redeliver
from persistence.webhooks.destinations import DestinationPolicy
from persistence.webhooks.secrets import rotate
from persistence.webhooks.wakeup import wake_sender_after_commit
from service.explanation_rows import insert_explanation, insert_model, insert_tenant
from service.postgres import fresh_database, run_alembic
from service.webhook_receiver import webhook_receiver
from service.webhook_support import WakeRecorder, add_endpoint, deliveries, run_job, sender
from worker.webhooks.sender import AttemptOutcome, SenderContext, deliver_due, send

JOB_EVENTS = ["job.succeeded", "job.failed", "job.cancelled", "job.epoch"]


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with fresh_database("batchcam_webhooks") as url:
        run_alembic(url, upgrade=True, revision="head")
        yield url


@pytest.fixture
def woken() -> WakeRecorder:
    return WakeRecorder()


@pytest.fixture
def sessions(database: str, woken: WakeRecorder) -> Iterator[sessionmaker[Session]]:
    engine = create_engine(database)
    with engine.begin() as connection:  # one database for the module: each test sees only its deliveries
        connection.execute(delete(WebhookEndpoint))
    factory = sessionmaker(engine, expire_on_commit=False)
    wake_sender_after_commit(factory, woken)
    yield factory
    engine.dispose()


def verified(secret: str, received) -> dict:  # type: ignore[no-untyped-def]
    """The body as the spec's reference verifier accepts it (it raises on a bad signature)."""
    payload: dict = Webhook(secret).verify(received.body, received.headers)
    return payload


def attempts_observed(result: str) -> float:
    """The worker metric's count of attempts with this result (this process's registry)."""
    return REGISTRY.get_sample_value("batchcam_webhook_attempt_seconds_count", {"result": result}) or 0.0


def test_a_job_that_ends_sends_exactly_the_subscribed_events_signed(
    sessions: sessionmaker[Session], woken: WakeRecorder
) -> None:
    tenant = insert_tenant(sessions)
    with webhook_receiver() as receiver:
        ends_only, secret = add_endpoint(sessions, tenant, receiver.url, ["job.succeeded", "job.failed"])
        everything, other_secret = add_endpoint(sessions, tenant, receiver.url + "/all", JOB_EVENTS)
        add_endpoint(sessions, tenant, receiver.url + "/explanations", ["explanation.succeeded"])
        job_id = run_job(sessions, tenant, JobState.SUCCEEDED, epochs=2)
        assert woken.delays and set(woken.delays) == {0.0}  # woken after each commit that wrote some
        assert deliver_due(sender(sessions)) == 4
        requests = receiver.wait_for(4)
    by_path = {path: [r for r in requests if r.path == path] for path in {r.path for r in requests}}
    assert sorted(by_path) == ["/hook", "/hook/all"]  # nothing for the explanation-only endpoint
    (ended,) = by_path["/hook"]
    payload = verified(secret, ended)
    assert payload["type"] == "job.succeeded" and payload["timestamp"].endswith("Z")
    model_id = payload["data"]["model_id"]
    assert payload["data"] == {"id": str(job_id), "state": "succeeded", "model_id": model_id, "failure": None}
    types = [verified(other_secret, r)["type"] for r in by_path["/hook/all"]]
    assert sorted(types) == ["job.epoch", "job.epoch", "job.succeeded"]
    epochs = [verified(other_secret, r)["data"] for r in by_path["/hook/all"]]
    assert {"id": str(job_id), "state": "running", "epoch": 2, "metrics": {"loss": 0.5}} in epochs
    assert {ended.headers["webhook-id"] for ended in requests} == {
        d.message_id for e in (ends_only, everything) for d in deliveries(sessions, e)
    }
    assert all(d.status == "succeeded" and d.attempts == 1 for d in deliveries(sessions, ends_only))
    with pytest.raises(WebhookVerificationError):  # another endpoint's secret does not verify it
        Webhook(other_secret).verify(ended.body, ended.headers)


def test_a_failed_job_names_its_failure(sessions: sessionmaker[Session]) -> None:
    tenant = insert_tenant(sessions)
    endpoint, _ = add_endpoint(sessions, tenant, "https://example.invalid/hook", ["job.failed"])
    job_id = run_job(sessions, tenant, JobState.FAILED)
    (delivery,) = deliveries(sessions, endpoint)
    assert delivery.event_type == "job.failed" and delivery.message_id.startswith("msg_")
    assert delivery.payload["data"] == {
        "id": str(job_id),
        "state": "failed",
        "model_id": None,
        "failure": {"reason": "nan_loss", "message": "diverged"},
    }


def test_a_change_that_rolls_back_sends_nothing(sessions: sessionmaker[Session], woken: WakeRecorder) -> None:
    tenant = insert_tenant(sessions)
    endpoint, _ = add_endpoint(sessions, tenant, "https://example.invalid/hook", ["explanation.cancelled"])
    explanation = insert_explanation(sessions, tenant, insert_model(sessions, tenant), state="queued")
    woken.delays.clear()
    with pytest.raises(RuntimeError), transaction(sessions) as session:
        request_explanation_cancel(session, session.get_one(Explanation, explanation), utcnow())
        assert session.scalar(select(func.count()).select_from(WebhookDelivery)) is not None
        raise RuntimeError("the request failed after the cancel")
    assert deliveries(sessions, endpoint) == [] and woken.delays == []
    with transaction(sessions) as session:  # the same change committed does send
        request_explanation_cancel(session, session.get_one(Explanation, explanation), utcnow())
    assert [d.event_type for d in deliveries(sessions, endpoint)] == ["explanation.cancelled"]
    assert woken.delays == [0.0]


def test_every_way_an_explanation_ends_is_an_event(sessions: sessionmaker[Session]) -> None:
    tenant = insert_tenant(sessions)
    events = ["explanation.succeeded", "explanation.failed", "explanation.cancelled"]
    endpoint, _ = add_endpoint(sessions, tenant, "https://example.invalid/hook", events)
    model = insert_model(sessions, tenant)
    ids = [insert_explanation(sessions, tenant, model, state="queued") for _ in range(3)]
    now = utcnow()
    with transaction(sessions) as session:
        claims = [claim_explanation(session, i, "w:1", timedelta(seconds=60), now) for i in ids]
    with transaction(sessions) as session:
        finish_explanation(session, claims[0], [{"predicted": 1}], now)  # type: ignore[arg-type]
        fail_explanation(session, claims[1], FailureReason.INVALID_INPUT, "unreadable", now)  # type: ignore[arg-type]
    with transaction(sessions) as session:  # the third's worker vanished with its attempts spent
        reap_expired_explanations(session, now + timedelta(seconds=61), max_attempts=1)
    sent = {d.payload["data"]["id"]: d.payload for d in deliveries(sessions, endpoint)}
    assert sent[str(ids[0])]["type"] == "explanation.succeeded"
    assert sent[str(ids[0])]["data"]["model_id"] == str(model)
    assert sent[str(ids[1])]["data"]["failure"] == {"reason": "invalid_input", "message": "unreadable"}
    assert sent[str(ids[2])]["data"]["failure"]["reason"] == "worker_lost"
    assert len(sent) == 3


def test_a_batch_finished_together_sends_one_event_per_row_it_ended(sessions: sessionmaker[Session]) -> None:
    tenant = insert_tenant(sessions)
    endpoint, _ = add_endpoint(sessions, tenant, "https://example.invalid/hook", ["explanation.succeeded"])
    model = insert_model(sessions, tenant)
    ids = [insert_explanation(sessions, tenant, model, state="queued") for _ in range(3)]
    now = utcnow()
    with transaction(sessions) as session:
        claims = [claim_explanation(session, i, "w:1", timedelta(seconds=60), now) for i in ids]
    lost = replace(claims[2], attempt=claims[2].attempt + 1)  # a claim the sweep has taken back
    batch = [(claim, [{"predicted": 1}], None) for claim in [*claims[:2], lost]]
    with transaction(sessions) as session:
        ends = finish_explanations(session, batch, now)  # type: ignore[arg-type]
    assert list(ends.values()) == [JobState.SUCCEEDED, JobState.SUCCEEDED, None]
    sent = sorted(d.payload["data"]["id"] for d in deliveries(sessions, endpoint))
    assert sent == sorted(str(i) for i in ids[:2])


def test_deliveries_never_cross_tenants(sessions: sessionmaker[Session]) -> None:
    mine, theirs = insert_tenant(sessions), insert_tenant(sessions)
    my_endpoint, _ = add_endpoint(sessions, mine, "https://example.invalid/a", JOB_EVENTS)
    their_endpoint, _ = add_endpoint(sessions, theirs, "https://example.invalid/b", JOB_EVENTS)
    run_job(sessions, mine, JobState.CANCELLED, epochs=0)
    assert [d.event_type for d in deliveries(sessions, my_endpoint)] == ["job.cancelled"]
    assert deliveries(sessions, their_endpoint) == []
    assert {d.tenant_id for d in deliveries(sessions, my_endpoint)} == {mine}


def test_a_receiver_that_is_down_gets_the_event_later_with_the_same_webhook_id(
    sessions: sessionmaker[Session],
) -> None:
    tenant = insert_tenant(sessions)
    with webhook_receiver() as receiver:
        receiver.statuses = [503]
        port = receiver.port
        before = {result: attempts_observed(result) for result in ("succeeded", "status", "error")}
        endpoint, secret = add_endpoint(sessions, tenant, receiver.url, ["job.cancelled"])
        run_job(sessions, tenant, JobState.CANCELLED, epochs=0)
        woken = WakeRecorder()
        assert deliver_due(sender(sessions, wake=woken)) == 1  # answered 503
        assert woken.delays and 0 < woken.delays[0] <= 0.2  # it comes back before the next sweep
    (delivery,) = deliveries(sessions, endpoint)
    assert (delivery.status, delivery.last_status_code, delivery.attempts) == ("pending", 503, 1)
    time.sleep(0.25)
    assert deliver_due(sender(sessions)) == 1  # now nothing listens: connection refused
    (delivery,) = deliveries(sessions, endpoint)
    assert delivery.status == "pending" and "ConnectError" in (delivery.last_error or "")
    with webhook_receiver(port) as receiver:  # back up, on the same address
        assert deliver_due(sender(sessions)) == 0  # not due yet (0.2 s after the second attempt)
        time.sleep(0.25)
        assert deliver_due(sender(sessions)) == 1
        (received,) = receiver.wait_for(1)
    assert received.headers["webhook-id"] == delivery.message_id
    assert verified(secret, received)["type"] == "job.cancelled"
    (delivery,) = deliveries(sessions, endpoint)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("succeeded", 3, 200)
    after = {result: attempts_observed(result) for result in before}
    assert after == {result: count + 1 for result, count in before.items()}  # one of each


def test_a_spent_schedule_fails_and_a_redelivery_sends_the_same_webhook_id(
    sessions: sessionmaker[Session],
) -> None:
    tenant = insert_tenant(sessions)
    with webhook_receiver() as receiver:
        receiver.statuses = [500, 500, 500]
        endpoint, secret = add_endpoint(sessions, tenant, receiver.url, ["job.cancelled"])
        run_job(sessions, tenant, JobState.CANCELLED, epochs=0)
        context = sender(sessions, schedule=[0.0, 0.0])  # three attempts in all
        assert deliver_due(context) == 3
        (delivery,) = deliveries(sessions, endpoint)
        assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("failed", 3, None)
        with transaction(sessions) as session:
            assert redeliver(session, delivery.id, utcnow())
        assert deliver_due(context) == 1
        requests = receiver.wait_for(4)
    assert {r.headers["webhook-id"] for r in requests} == {delivery.message_id}
    assert all(verified(secret, r)["type"] == "job.cancelled" for r in requests)
    (delivery,) = deliveries(sessions, endpoint)
    assert (delivery.status, delivery.attempts) == ("succeeded", 1)
    with sessions() as session:
        codes = session.scalars(
            select(WebhookAttempt.status_code).where(WebhookAttempt.delivery_id == delivery.id)
        ).all()
    assert list(codes) == [500, 500, 500, 200]


def test_a_delivery_whose_sender_died_is_sent_by_another_and_the_dead_one_cannot_record(
    sessions: sessionmaker[Session],
) -> None:
    tenant = insert_tenant(sessions)
    with webhook_receiver() as receiver:
        endpoint, _ = add_endpoint(sessions, tenant, receiver.url, ["job.cancelled"])
        run_job(sessions, tenant, JobState.CANCELLED, epochs=0)
        now = utcnow()
        with transaction(sessions) as session:  # a sender claims it, then dies without a word
            (lost,) = claim_due(session, "dead:1", now, timedelta(seconds=1), 10)
        assert deliver_due(sender(sessions)) == 0  # its lease still runs
        later = now + timedelta(seconds=2)
        assert deliver_due(sender(sessions, clock=lambda: later)) == 1
        (received,) = receiver.wait_for(1)
        with transaction(sessions) as session:  # the dead sender's late word changes nothing
            late = AttemptOutcome(500, None, None, 1)
            assert record_attempt(session, lost, late, later, [1.0]) is None
    (delivery,) = deliveries(sessions, endpoint)
    assert received.headers["webhook-id"] == delivery.message_id
    assert (delivery.status, delivery.attempts) == ("succeeded", 2)  # the lost attempt counted


def test_two_senders_never_claim_the_same_delivery(sessions: sessionmaker[Session]) -> None:
    tenant = insert_tenant(sessions)
    endpoint, _ = add_endpoint(sessions, tenant, "https://example.invalid/hook", JOB_EVENTS)
    run_job(sessions, tenant, JobState.SUCCEEDED, epochs=3)
    now = utcnow()
    with transaction(sessions) as first, transaction(sessions) as second:
        taken = claim_due(first, "a:1", now, timedelta(seconds=30), 2)
        first.flush()
        other = claim_due(second, "b:1", now, timedelta(seconds=30), 10)  # skips the locked rows
    assert len(taken) == 2 and len(other) == 2
    assert not {d.id for d in taken} & {d.id for d in other}
    assert len(deliveries(sessions, endpoint)) == 4


def test_receivers_that_are_not_allowed_redirects_and_long_answers(sessions: sessionmaker[Session]) -> None:
    tenant = insert_tenant(sessions)
    with webhook_receiver() as receiver:
        endpoint, _ = add_endpoint(sessions, tenant, receiver.url, ["job.cancelled"])
        run_job(sessions, tenant, JobState.CANCELLED, epochs=0)
        (delivery,) = deliveries(sessions, endpoint)
        strict = sender(sessions, policy=DestinationPolicy(allow_http=True))  # no allowlist: loopback refused
        assert deliver_due(strict) == 1 and receiver.requests == []
        (delivery,) = deliveries(sessions, endpoint)
        assert "not a public address" in (delivery.last_error or "")
        assert delivery.last_status_code is None

        receiver.redirect_to = "http://169.254.169.254/latest/meta-data"
        outcome = _send_again(sender(sessions), delivery.id)
        assert outcome.status_code == 302 and not outcome.succeeded
        assert "redirects are not followed" in (outcome.error or "")
        assert len(receiver.requests) == 1  # the redirect was not followed

        receiver.redirect_to, receiver.answer_body = None, b"x" * 100_000
        outcome = _send_again(sender(sessions, max_response_bytes=1024), delivery.id)
        assert outcome.succeeded and outcome.response == "x" * 1024


def _send_again(context: SenderContext, delivery_id: uuid.UUID) -> AttemptOutcome:
    """Redeliver, claim, send and record one delivery; what the send found."""
    with transaction(context.sessions) as session:
        assert redeliver(session, delivery_id, utcnow())
        (claimed,) = claim_due(session, "probe:1", utcnow(), timedelta(seconds=30), 1)
    outcome = send(context, claimed)
    with transaction(context.sessions) as session:
        record_attempt(session, claimed, outcome, utcnow(), [1.0])
    return outcome


def test_after_a_rotation_both_secrets_verify_until_the_grace_period_ends(
    sessions: sessionmaker[Session],
) -> None:
    tenant = insert_tenant(sessions)
    with webhook_receiver() as receiver:
        endpoint, old_secret = add_endpoint(sessions, tenant, receiver.url, ["job.cancelled"])
        now = utcnow()
        with transaction(sessions) as session:
            new_secret = rotate(session.get_one(WebhookEndpoint, endpoint), now, now + timedelta(hours=1))
        run_job(sessions, tenant, JobState.CANCELLED, epochs=0)
        deliver_due(sender(sessions))
        (received,) = receiver.wait_for(1)
        assert len(received.headers["webhook-signature"].split(" ")) == 2
        assert verified(old_secret, received) == verified(new_secret, received)
        with transaction(sessions) as session:  # the grace period ends
            session.get_one(WebhookEndpoint, endpoint).previous_secret_expires_at = utcnow()
        run_job(sessions, tenant, JobState.CANCELLED, epochs=0)
        deliver_due(sender(sessions))
        _, after_grace = receiver.wait_for(2)
    assert len(after_grace.headers["webhook-signature"].split(" ")) == 1
    verified(new_secret, after_grace)
    with pytest.raises(WebhookVerificationError):
        verified(old_secret, after_grace)
    assert json.loads(after_grace.body)["type"] == "job.cancelled"


def test_a_sender_that_leaves_a_backlog_wakes_the_next_at_once(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("worker.webhooks.sender.MAX_ROUNDS", 1)
    tenant = insert_tenant(sessions)
    endpoint, _ = add_endpoint(sessions, tenant, "https://example.invalid/hook", JOB_EVENTS)
    run_job(sessions, tenant, JobState.SUCCEEDED, epochs=16)  # 17 deliveries: one more than a round
    woken = WakeRecorder()
    assert deliver_due(sender(sessions, wake=woken, schedule=[60.0])) == 16
    assert woken.delays == [0.0]
    assert deliver_due(sender(sessions, wake=woken, schedule=[60.0])) == 1
    assert woken.delays == [0.0]  # the next retry is a minute away: the sweep's
    assert all(d.attempts == 1 for d in deliveries(sessions, endpoint))


def test_a_delivery_whose_senders_keep_dying_fails_once_its_attempts_are_spent(
    sessions: sessionmaker[Session],
) -> None:
    tenant = insert_tenant(sessions)
    endpoint, _ = add_endpoint(sessions, tenant, "https://example.invalid/hook", ["job.cancelled"])
    run_job(sessions, tenant, JobState.CANCELLED, epochs=0)
    now = utcnow()
    for attempt in range(2):  # two senders claim it and die
        at = now + timedelta(seconds=2 * attempt)
        with transaction(sessions) as session:
            assert len(claim_due(session, f"dead:{attempt}", at, timedelta(seconds=1), 10, 2)) == 1
    with transaction(sessions) as session:
        assert claim_due(session, "next:1", now + timedelta(seconds=4), timedelta(seconds=1), 10, 2) == []
    (delivery,) = deliveries(sessions, endpoint)
    assert (delivery.status, delivery.attempts, delivery.lease_owner) == ("failed", 2, None)
    assert "stopped responding" in (delivery.last_error or "")
