"""Verified API keys remembered by an API process: a remembered key skips its query; revoking or
deleting a key notifies every API process, which refuses it long before the cache would expire;
nothing is remembered while notifications are down, or across a forget that raced the lookup."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import delete, event
from sqlalchemy.orm import Session, sessionmaker

from api.http.verified_keys import VerifiedKeys
from persistence.api_keys import VerifiedKey, create_api_key, revoke_api_key
from persistence.db import transaction
from persistence.models import ApiKey
from persistence.notifications import ChangeListener, Channel, libpq_url
from service.api_support import ApiHarness, api_harness, assert_problem, refused_within

NOTIFIED_WITHIN_S = 2.0  # far below the cache's expiry in these tests (10 min)
KEY = VerifiedKey(key_id=uuid.uuid4(), tenant_id=uuid.uuid4())


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiHarness]:
    options = {"BATCHCAM_KEY_CACHE_SECONDS": 600}
    with api_harness(tmp_path_factory.mktemp("verified-keys"), settings_options=options) as harness:
        yield harness


def new_key(sessions: sessionmaker[Session]) -> tuple[str, str]:
    with transaction(sessions) as session:
        key = create_api_key(session, f"tenant-{uuid.uuid4().hex[:8]}", "cached")
    return key.secret, key.prefix


def key_queries(api: ApiHarness) -> list[str]:
    """Statements on ``api_keys`` the app sends from now on (appended as they run)."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "FROM api_keys" in statement:
            seen.append(statement)

    event.listen(api.client.app.state.context.engine, "before_cursor_execute", record)
    return seen


def test_a_verified_key_is_looked_up_once_then_remembered(api: ApiHarness) -> None:
    secret, _ = new_key(api.sessions)
    headers = {"Authorization": f"Bearer {secret}"}
    queries = key_queries(api)
    for _ in range(5):
        assert api.client.get("/v1/jobs", headers=headers).status_code == 200
    assert len(queries) == 1
    unknown = {"Authorization": "Bearer bc_000000000000_nope"}
    for _ in range(2):
        assert_problem(api.client.get("/v1/jobs", headers=unknown), 401, "unauthorized")
    assert len(queries) == 3  # unknown keys are never remembered


def test_revoking_a_remembered_key_refuses_it_when_the_notification_arrives(api: ApiHarness) -> None:
    secret, prefix = new_key(api.sessions)
    headers = {"Authorization": f"Bearer {secret}"}
    assert api.client.get("/v1/jobs", headers=headers).status_code == 200
    assert api.client.app.state.context.verified_keys.get(secret) is not None
    with transaction(api.sessions) as session:
        assert revoke_api_key(session, prefix)
    assert_problem(refused_within(api, headers, NOTIFIED_WITHIN_S), 401, "unauthorized")  # not 10 min


def test_deleting_a_remembered_key_refuses_it_when_the_notification_arrives(api: ApiHarness) -> None:
    secret, prefix = new_key(api.sessions)
    headers = {"Authorization": f"Bearer {secret}"}
    assert api.client.get("/v1/jobs", headers=headers).status_code == 200
    with transaction(api.sessions) as session:
        session.execute(delete(ApiKey).where(ApiKey.prefix == prefix))
    assert_problem(refused_within(api, headers, NOTIFIED_WITHIN_S), 401, "unauthorized")


def test_the_trigger_notifies_revocation_and_deletion_only(api: ApiHarness) -> None:
    database_url = api.client.app.state.context.settings.resolved_database_url()
    revoked_id, deleted_id, renamed_id = (new_key_id(api.sessions) for _ in range(3))

    async def heard() -> list[str | None]:
        listener, payloads = ChangeListener(libpq_url(database_url)), []
        listener.subscribe(Channel.KEY_REVOKED, payloads.append)
        task = asyncio.create_task(listener.listen())
        connect_by = time.monotonic() + 10
        while not listener.live:
            assert time.monotonic() < connect_by, "the listener did not connect"
            await asyncio.sleep(0.01)
        with transaction(api.sessions) as session:
            session.get_one(ApiKey, renamed_id).name = "renamed"  # not a revocation: no notification
            session.get_one(ApiKey, revoked_id).revoked_at = api.client.app.state.context.clock()
        with transaction(api.sessions) as session:
            session.delete(session.get_one(ApiKey, deleted_id))
        deadline = time.monotonic() + NOTIFIED_WITHIN_S
        while len(payloads) < 3 and time.monotonic() < deadline:  # None (connected) + two ids
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)  # a notification for the rename would arrive by now
        task.cancel()
        return payloads

    assert asyncio.run(heard()) == [None, str(revoked_id), str(deleted_id)]


def new_key_id(sessions: sessionmaker[Session]) -> uuid.UUID:
    with transaction(sessions) as session:
        return create_api_key(session, f"tenant-{uuid.uuid4().hex[:8]}", "trigger").id


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def cache(live: bool = True, seconds: float = 10.0) -> tuple[VerifiedKeys, Clock, list[bool]]:
    clock, state = Clock(), [live]
    return VerifiedKeys(seconds, is_live=lambda: state[0], timer=clock), clock, state


def test_remembered_keys_expire_and_are_forgotten_by_id_or_all_at_once() -> None:
    keys, clock, _ = cache()
    other = VerifiedKey(key_id=uuid.uuid4(), tenant_id=KEY.tenant_id)
    keys.remember("bc_a_1", KEY, keys.mark())
    keys.remember("bc_b_2", other, keys.mark())
    assert keys.get("bc_a_1") == KEY and keys.get("bc_b_2") == other and keys.get("bc_c_3") is None
    keys.forget(str(KEY.key_id))
    assert keys.get("bc_a_1") is None and keys.get("bc_b_2") == other
    keys.forget(None)  # the listener reconnected: anything may have been revoked meanwhile
    assert keys.get("bc_b_2") is None
    keys.remember("bc_b_2", other, keys.mark())
    clock.now = 10.5
    assert keys.get("bc_b_2") is None


def test_nothing_is_remembered_while_notifications_are_down_or_when_disabled() -> None:
    keys, _, live = cache(live=False)
    keys.remember("bc_a_1", KEY, keys.mark())
    assert keys.get("bc_a_1") is None
    live[0] = True
    assert keys.get("bc_a_1") is None
    keys.remember("bc_a_1", KEY, keys.mark())
    live[0] = False  # remembered, but not trusted while a revocation could go unheard
    assert keys.get("bc_a_1") is None
    disabled, _, _ = cache(seconds=0)
    disabled.remember("bc_a_1", KEY, disabled.mark())
    assert disabled.get("bc_a_1") is None


def test_a_lookup_that_raced_a_forget_is_not_remembered() -> None:
    keys, _, _ = cache()
    mark = keys.mark()  # the database said "valid" ...
    keys.forget(str(uuid.uuid4()))  # ... but a revocation was heard before the answer was kept
    keys.remember("bc_a_1", KEY, mark)
    assert keys.get("bc_a_1") is None


def test_the_cache_holds_only_digests_of_keys() -> None:
    keys, _, _ = cache()
    keys.remember("bc_a_secret", KEY, keys.mark())
    assert all("secret" not in digest for digest in keys._keys)
