"""Pure pieces of the webhooks: which receivers are allowed, the retry schedule, the settings' lists,
and the outbox and claims on the embedded SQLite default (no row locks: conditions alone)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from persistence.db import make_engine, make_session_factory, transaction
from persistence.models import utcnow
from persistence.settings import Settings
from persistence.states import JobState
from persistence.webhooks.deliveries import AttemptOutcome, claim_due, record_attempt, retry_delay
from persistence.webhooks.destinations import DestinationPolicy, UnsafeDestinationError, check_destination
from service.explanation_rows import insert_tenant
from service.postgres import run_alembic
from service.webhook_support import add_endpoint, deliveries, run_job


def resolving(*addresses: str):  # type: ignore[no-untyped-def]
    return lambda host, port: list(addresses)


@pytest.mark.parametrize(
    ("addresses", "allowed"),
    [
        (["93.184.216.34"], True),
        (["2606:2800:220:1:248:1893:25c8:1946"], True),
        (["93.184.216.34", "10.0.0.7"], False),  # one private answer is enough to refuse
        (["100.64.0.1"], False),  # shared address space (carrier-grade NAT)
        (["fe80::1%eth0"], False),
        (["::ffff:127.0.0.1"], False),
        (["240.0.0.1"], False),
        (["ff02::1"], False),
    ],
)
def test_only_public_addresses_are_allowed(addresses: list[str], allowed: bool) -> None:
    policy = DestinationPolicy()
    if allowed:
        check_destination("https://hooks.example.com/x", policy, resolving(*addresses))
    else:
        with pytest.raises(UnsafeDestinationError, match="not a public address"):
            check_destination("https://hooks.example.com/x", policy, resolving(*addresses))


def test_the_allowlist_takes_networks_and_host_names() -> None:
    policy = DestinationPolicy.of(["10.0.0.0/8", "Internal.Example.com."])
    check_destination("https://a.example.com/x", policy, resolving("10.1.2.3"))
    check_destination("https://internal.example.com/x", policy, resolving("192.168.1.1"))
    with pytest.raises(UnsafeDestinationError):
        check_destination("https://a.example.com/x", policy, resolving("192.168.1.1"))
    with pytest.raises(UnsafeDestinationError, match="https://"):
        check_destination("http://internal.example.com/x", policy, resolving("93.184.216.34"))


def test_the_schedule_and_the_settings_lists() -> None:
    assert [retry_delay([5, 300], attempt) for attempt in (1, 2, 3)] == [5, 300, None]
    settings = Settings(
        BATCHCAM_WEBHOOK_RETRY_SCHEDULE_SECONDS="1, 2.5", BATCHCAM_WEBHOOK_ALLOWED_NETWORKS="10.0.0.0/8,a.b"
    )
    assert settings.webhook_retry_schedule_seconds == [1.0, 2.5]
    assert settings.webhook_allowed_networks == ["10.0.0.0/8", "a.b"]
    assert Settings().webhook_retry_schedule_seconds == [5, 300, 1800, 7200, 18000, 36000, 36000]


def test_the_outbox_and_claims_work_on_the_embedded_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'batchcam.db'}"
    run_alembic(url, upgrade=True, revision="head")
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    tenant = insert_tenant(sessions)
    endpoint, _ = add_endpoint(sessions, tenant, "https://example.invalid/x", ["job.epoch", "job.failed"])
    run_job(sessions, tenant, JobState.FAILED, epochs=2)
    assert [d.event_type for d in deliveries(sessions, endpoint)] == ["job.epoch", "job.epoch", "job.failed"]
    now = utcnow()
    with transaction(sessions) as session:
        first = claim_due(session, "a:1", now, timedelta(seconds=30), 2)
    with transaction(sessions) as session:
        rest = claim_due(session, "b:1", now, timedelta(seconds=30), 10)
    assert len(first) == 2 and len(rest) == 1
    with transaction(sessions) as session:
        assert record_attempt(session, rest[0], AttemptOutcome(204, None, None, 3), now, [1.0]) is None
        assert record_attempt(session, first[0], AttemptOutcome(500, None, None, 3), now, [1.0]) is not None
    statuses = sorted(d.status for d in deliveries(sessions, endpoint))
    assert statuses == ["delivering", "pending", "succeeded"]
    engine.dispose()
