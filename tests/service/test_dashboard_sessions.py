"""Dashboard sessions (persistence/dashboard_sessions.py) on a migrated Postgres: what a cookie's token
is worth, and when it stops being worth anything."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session, sessionmaker

from persistence.api_keys import create_api_key, revoke_api_key
from persistence.dashboard_sessions import close_session, find_session, open_session, token_hash
from persistence.db import transaction
from persistence.models import DashboardSession, utcnow
from service.postgres import fresh_database, run_alembic

HOUR = timedelta(hours=1)


@pytest.fixture(scope="module")
def sessions() -> Iterator[sessionmaker[Session]]:
    with fresh_database("batchcam_dashboard_sessions") as url:
        run_alembic(url, upgrade=True, revision="head")
        engine = create_engine(url)
        yield sessionmaker(engine)
        engine.dispose()


def test_a_session_speaks_for_the_keys_tenant_and_stores_only_its_tokens_hash(
    sessions: sessionmaker[Session],
) -> None:
    now = utcnow()
    with transaction(sessions) as db:
        key = create_api_key(db, "acme", "dashboard")
        opened = open_session(db, key.secret, now, HOUR)
    assert opened is not None and opened.expires_at == now + HOUR
    with sessions() as db:
        found = find_session(db, opened.token, now)
        stored = db.scalars(select(DashboardSession).where(DashboardSession.api_key_id == key.id)).one()
    assert found is not None
    assert (found.tenant_id, found.key_id, found.csrf_token) == (key.tenant_id, key.id, opened.csrf_token)
    assert stored.token_hash == token_hash(opened.token) and opened.token not in stored.token_hash
    assert opened.csrf_token != opened.token


def test_a_wrong_key_opens_nothing_and_an_unknown_token_finds_nothing(
    sessions: sessionmaker[Session],
) -> None:
    with transaction(sessions) as db:
        assert open_session(db, "bc_000000000000_wrong", utcnow(), HOUR) is None
        assert open_session(db, "", utcnow(), HOUR) is None
    with sessions() as db:
        assert find_session(db, "no-such-token", utcnow()) is None


def test_a_session_ends_when_it_expires_when_its_key_is_revoked_and_when_it_signs_out(
    sessions: sessionmaker[Session],
) -> None:
    now = utcnow()
    with transaction(sessions) as db:
        key = create_api_key(db, "globex", "dashboard")
        expiring = open_session(db, key.secret, now, HOUR)
        signing_out = open_session(db, key.secret, now, HOUR)
        other_key = create_api_key(db, "globex", "second")
        revoked = open_session(db, other_key.secret, now, HOUR)
    assert expiring and signing_out and revoked
    with sessions() as db:
        assert find_session(db, expiring.token, now + HOUR - timedelta(seconds=1)) is not None
        assert find_session(db, expiring.token, now + HOUR) is None
    with transaction(sessions) as db:
        assert revoke_api_key(db, other_key.prefix)
        close_session(db, signing_out.token, now)
    with sessions() as db:
        assert find_session(db, revoked.token, now) is None
        assert find_session(db, signing_out.token, now) is None
        assert find_session(db, expiring.token, now) is not None  # another session of that key lives on
