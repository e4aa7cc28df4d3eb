"""``batchcam keys create|list|revoke``: the command operators use, run as they run it (a process)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from persistence.api_keys import verify_api_key
from service.postgres import fresh_database, run_alembic


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with fresh_database("batchcam_keys") as url:
        run_alembic(url, upgrade=True, revision="head")
        yield url


def batchcam(database: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from batchcam.cli import main; main()", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "DATABASE_URL": database},
        timeout=120,
    )


def test_a_created_key_authenticates_lists_without_its_secret_and_stops_once_revoked(database: str) -> None:
    created = batchcam(database, "keys", "create", "--tenant", "acme", "--name", "billing")
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    assert "store it now" in created.stderr and secret not in created.stderr
    sessions = sessionmaker(create_engine(database))
    with sessions() as session:
        verified = verify_api_key(session, secret)
    assert verified is not None

    listed = batchcam(database, "keys", "list", "--tenant", "acme")
    assert listed.returncode == 0 and "billing" in listed.stdout and "active" in listed.stdout
    assert secret not in listed.stdout
    prefix = listed.stdout.split()[0]

    assert batchcam(database, "keys", "revoke", prefix).stdout.strip() == "revoked"
    with sessions() as session:
        assert verify_api_key(session, secret) is None
    assert "revoked" in batchcam(database, "keys", "list").stdout

    unknown = batchcam(database, "keys", "revoke", "nosuchprefix")
    assert unknown.returncode == 2 and "no active key with that prefix" in unknown.stderr
