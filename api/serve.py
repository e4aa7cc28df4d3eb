"""``python -m api.serve [uvicorn options]``: uvicorn serving ``api.main:app`` with the API's limits.

uvicorn's own command line, with other defaults: the h11 parser, which stops buffering a request's
line and headers at ``BATCHCAM_MAX_REQUEST_HEADER_BYTES`` (httptools buffers any size). Every uvicorn
option and ``UVICORN_*`` variable still works and overrides these defaults.
"""

from __future__ import annotations

import sys
from typing import Any

import uvicorn.main

from persistence.settings import Settings, get_settings

APP = "api.main:app"


def server_defaults(settings: Settings) -> dict[str, Any]:
    """uvicorn option defaults (by parameter name) for this deployment."""
    return {"http": "h11", "h11_max_incomplete_event_size": settings.max_request_header_bytes}


def main(arguments: list[str] | None = None) -> None:
    given = sys.argv[1:] if arguments is None else arguments
    uvicorn.main.main(
        args=[APP, *given], prog_name="python -m api.serve", default_map=server_defaults(get_settings())
    )


if __name__ == "__main__":
    main()
