"""Options every command shares: where the service is, and the key (falling back to the environment)."""

from __future__ import annotations

from typing import Annotated

import typer

from batchcam_client import Client
from batchcam_client.settings import KEY_VARIABLE, URL_VARIABLE

Url = Annotated[str | None, typer.Option("--url", envvar=URL_VARIABLE, help="The service's base URL.")]
ApiKey = Annotated[
    str | None, typer.Option("--api-key", envvar=KEY_VARIABLE, help="API key (bc_…).", show_default=False)
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def connect(url: str | None, api_key: str | None) -> Client:
    return Client(url, api_key)
