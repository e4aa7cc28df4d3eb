"""``batchcam keys create|list|revoke``: the command operators use, run as they run it (a process)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from persistence.api_keys import verify_api_key
from service.postgres import fresh_database, run_alembic

SERVICE_SETTINGS = ("DATABASE_URL", "BATCHCAM_STATE_DIR")
COMMANDS = (
    ("keys", "list"),
    ("keys", "create", "--tenant", "acme", "--name", "billing"),
    ("keys", "revoke", "abc"),
)


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with fresh_database("batchcam_keys") as url:
        run_alembic(url, upgrade=True, revision="head")
        yield url


def batchcam(database: str, *args: str) -> subprocess.CompletedProcess[str]:
    return batchcam_in(None, {"DATABASE_URL": database}, *args)


def batchcam_in(cwd: Path | None, settings: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The command in ``cwd`` with these service settings and none of the caller's."""
    inherited = {name: value for name, value in os.environ.items() if name not in SERVICE_SETTINGS}
    return subprocess.run(
        [sys.executable, "-c", "from batchcam.cli import main; main()", *args],
        capture_output=True,
        text=True,
        env={**inherited, **settings},
        cwd=cwd,
        timeout=120,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *mentions: str) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for mention in mentions:
        assert mention in lines[0], (mention, lines[0])
    return lines[0]


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


@pytest.mark.parametrize("command", COMMANDS, ids=["list", "create", "revoke"])
def test_on_a_fresh_checkout_the_commands_say_in_one_line_what_to_set(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    result = batchcam_in(tmp_path, {}, *command)  # no DATABASE_URL, no BATCHCAM_STATE_DIR: .batchcam
    line = assert_one_line_error(result, "DATABASE_URL", "BATCHCAM_STATE_DIR", str(tmp_path / ".batchcam"))
    assert "does not exist" in line
    assert not (tmp_path / ".batchcam").exists()  # no database no API reads is made on the way


def test_the_commands_work_on_the_embedded_default_of_a_demo(tmp_path: Path) -> None:
    state = tmp_path / "service-demo" / "state"  # as `make demo` leaves it: migrated SQLite
    state.mkdir(parents=True)
    run_alembic(f"sqlite:///{state / 'batchcam.db'}", upgrade=True, revision="head")
    settings = {"BATCHCAM_STATE_DIR": str(state)}
    created = batchcam_in(tmp_path, settings, "keys", "create", "--tenant", "demo", "--name", "me")
    assert created.returncode == 0, created.stderr
    listed = batchcam_in(tmp_path, settings, "keys", "list")
    assert listed.returncode == 0 and "demo" in listed.stdout and "active" in listed.stdout


@pytest.mark.parametrize("unusable", ["unreachable", "not-migrated"])
def test_an_unusable_database_is_one_line_that_hides_the_password(tmp_path: Path, unusable: str) -> None:
    if unusable == "unreachable":
        settings = {"DATABASE_URL": "postgresql+psycopg://batchcam:hunter2@127.0.0.1:1/batchcam"}
        shown = "postgresql+psycopg://batchcam:***@127.0.0.1:1/batchcam"
    else:
        (tmp_path / "batchcam.db").write_bytes(b"")  # an empty SQLite file: no tables
        settings = {"BATCHCAM_STATE_DIR": str(tmp_path)}
        shown = str(tmp_path / "batchcam.db")
    for command in COMMANDS:
        line = assert_one_line_error(batchcam_in(tmp_path, settings, *command), shown, "alembic upgrade head")
        assert "hunter2" not in line
