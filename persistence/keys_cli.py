"""``batchcam keys create|list|revoke``: API keys, administered on the database directly.

Registered with the ``batchcam`` command through the ``batchcam.cli`` entry-point group, so the
library's CLI offers it when the service is installed without ever importing the service.
"""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy.orm import Session, sessionmaker

from persistence.api_keys import create_api_key, list_api_keys, revoke_api_key
from persistence.db import make_engine, make_session_factory, transaction
from persistence.settings import get_settings

app = typer.Typer(help="Create, list and revoke API keys (needs DATABASE_URL).", no_args_is_help=True)


def _sessions() -> sessionmaker[Session]:
    return make_session_factory(make_engine(get_settings().resolved_database_url()))


@app.command()
def create(
    tenant: Annotated[str, typer.Option(help="Tenant the key acts for (created on first use).")],
    name: Annotated[str, typer.Option(help="What the key is for, e.g. the calling service's name.")],
) -> None:
    """Create a key and print it once: only its hash is stored."""
    with transaction(_sessions()) as session:
        created = create_api_key(session, tenant, name)
    typer.echo(created.secret)
    typer.echo(
        f"key {created.prefix} for tenant {created.tenant_name!r}; store it now, it is not shown again",
        err=True,
    )


@app.command("list")
def list_keys(tenant: Annotated[str | None, typer.Option(help="Only this tenant's keys.")] = None) -> None:
    """List keys (prefix, tenant, name, created, revoked); never the secrets."""
    with _sessions()() as session:
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
    with transaction(_sessions()) as session:
        revoked = revoke_api_key(session, key)
    if not revoked:
        typer.echo("error: no active key with that prefix", err=True)
        raise typer.Exit(code=2)
    typer.echo("revoked")
