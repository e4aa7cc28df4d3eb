"""Where the service is and how to talk to it; what is not passed comes from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, TypedDict, Unpack

import httpx

from batchcam_client.errors import ConfigurationError
from batchcam_client.retrying import RetryPolicy

URL_VARIABLE = "BATCHCAM_URL"
KEY_VARIABLE = "BATCHCAM_API_KEY"
# Reads are short except event streams, whose heartbeats arrive every 15 s: 60 s of silence is a
# dead connection. Uploads may take long on a slow link, hence the generous write timeout.
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0, write=300.0)


class ClientOptions(TypedDict, total=False):
    """What ``Client`` and ``AsyncClient`` take besides the URL and the key."""

    timeout: float | httpx.Timeout | None  # seconds, or httpx's per-phase timeouts
    retry: RetryPolicy | None
    poll_interval: float  # seconds between polls when an event stream is not available


@dataclass(frozen=True)
class ClientSettings:
    url: str
    api_key: str
    timeout: httpx.Timeout = field(default_factory=lambda: DEFAULT_TIMEOUT)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    poll_interval: float = 2.0  # seconds between polls when an event stream is not available

    @classmethod
    def resolve(
        cls, url: str | None = None, api_key: str | None = None, **options: Unpack[ClientOptions]
    ) -> ClientSettings:
        url = url or os.environ.get(URL_VARIABLE)
        api_key = api_key or os.environ.get(KEY_VARIABLE)
        missing = [name for name, value in ((URL_VARIABLE, url), (KEY_VARIABLE, api_key)) if not value]
        if url is None or api_key is None or missing:
            raise ConfigurationError(
                f"pass url= and api_key= or set {' and '.join(missing)}", code="configuration_error"
            )
        return cls(
            url=url.rstrip("/"),
            api_key=api_key,
            timeout=httpx.Timeout(options.get("timeout") or DEFAULT_TIMEOUT),
            retry=options.get("retry") or RetryPolicy(),
            poll_interval=options.get("poll_interval", 2.0),
        )

    def http_options(self) -> dict[str, Any]:
        """What httpx's Client and AsyncClient are built with."""
        headers = {"Authorization": f"Bearer {self.api_key}", "User-Agent": "batchcam-client/0.1.0"}
        return {"base_url": self.url, "headers": headers, "timeout": self.timeout}
