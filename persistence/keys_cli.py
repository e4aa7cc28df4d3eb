"""``batchcam keys create|list|revoke``: API keys, administered on the database directly.

Registered with the ``batchcam`` command through the ``batchcam.cli`` entry-point group, so the
library's CLI offers it when the service is installed without ever importing the service.

It works on the API's database, which it never creates: a key written to a database no API reads
would be a silent mistake. Without ``DATABASE_URL`` that is the embedded default's SQLite file in
``BATCHCAM_STATE_DIR``, which must exist (the demo makes one); a missing or unusable database ends
with a one-line ``error:`` naming what to set, exit code 2, like the library's commands.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, NoReturn

import typer
from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from persistence.api_keys import create_api_key, list_api_keys, revoke_api_key
from persistence.db import make_engine, make_session_factory, transaction
from persistence.settings import Settings, get_settings

HELP = (
    "Create, list and revoke API keys in the API's database: DATABASE_URL, or without it the embedded "
    "default's SQLite file in BATCHCAM_STATE_DIR (default .batchcam; `make demo` prints its own). The "
    "database must exist and be migrated (alembic upgrade head); these commands never create one."
)

app = typer.Typer(help=HELP, no_args_is_help=True)


@contextmanager
def _sessions() -> Iterator[sessionmaker[Session]]:
    """Sessions on the configured database; a missing or unusable one is a one-line error."""
    settings = get_settings()
    _require_embedded_database(settings)
    try:
        engine = make_engine(settings.resolved_database_url())
    except ArgumentError:
        _fail("DATABASE_URL is not a database URL; e.g. postgresql+psycopg://user:password@host/db")
    try:
        yield make_session_factory(engine)
    except DBAPIError as error:
        _fail(
            f"cannot use the database {_shown(settings)} ({_first_line(error)}); set DATABASE_URL to the "
            "API's database, reachable and migrated (alembic upgrade head)"
        )
    finally:
        engine.dispose()


def _require_embedded_database(settings: Settings) -> None:
    path = settings.embedded_database_path()
    if settings.database_url or path.exists():
        return
    _fail(
        f"no database: DATABASE_URL is not set and the embedded default's {path} does not exist; set "
        "DATABASE_URL to the API's database, or BATCHCAM_STATE_DIR to the state folder of a service on "
        "the embedded default (make demo prints its own)"
    )


def _shown(settings: Settings) -> str:
    if not settings.database_url:
        return str(settings.embedded_database_path())
    return make_url(settings.database_url).render_as_string(hide_password=True)


def _first_line(error: DBAPIError) -> str:
    lines = str(error.orig).strip().splitlines()
    return lines[0] if lines else type(error.orig).__name__


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


@app.command()
def create(
    tenant: Annotated[str, typer.Option(help="Tenant the key acts for (created on first use).")],
    name: Annotated[str, typer.Option(help="What the key is for, e.g. the calling service's name.")],
) -> None:
    """Create a key and print it once: only its hash is stored."""
    with _sessions() as sessions, transaction(sessions) as session:
        created = create_api_key(session, tenant, name)
    typer.echo(created.secret)
    typer.echo(
        f"key {created.prefix} for tenant {created.tenant_name!r}; store it now, it is not shown again",
        err=True,
    )


@app.command("list")
def list_keys(tenant: Annotated[str | None, typer.Option(help="Only this tenant's keys.")] = None) -> None:
    """List keys (prefix, tenant, name, created, revoked); never the secrets."""
    with _sessions() as sessions, sessions() as session:
        keys = list_api_keys(session, tenant)
    for key in keys:
        revoked = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "active"
        typer.echo(
            f"{key.prefix}  {key.tenant_name:20} {key.name:24} {key.created_at:%Y-%m-%d %H:%M}  {revoked}"
        )


@app.command()
def revoke(
    key: Annotated[str, typer.Argument(help="The key's prefix (from `keys list`) or the whole key.")],
) -> None:
    """Revoke a key: requests carrying it are refused from now on."""
    with _sessions() as sessions, transaction(sessions) as session:
        revoked = revoke_api_key(session, key)
    if not revoked:
        _fail("no active key with that prefix")
    typer.echo("revoked")
