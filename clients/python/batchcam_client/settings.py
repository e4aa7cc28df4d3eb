"""Where the service is and how to talk to it; what is not passed comes from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import httpx

from batchcam_client.errors import ConfigurationError
from batchcam_client.retrying import RetryPolicy

URL_VARIABLE = "BATCHCAM_URL"
KEY_VARIABLE = "BATCHCAM_API_KEY"
# Reads are short except event streams, whose heartbeats arrive every 15 s: 60 s of silence is a
# dead connection. Uploads may take long on a slow link, hence the generous write timeout.
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0, write=300.0)


@dataclass(frozen=True)
class ClientSettings:
    url: str
    api_key: str
    timeout: httpx.Timeout = field(default_factory=lambda: DEFAULT_TIMEOUT)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    poll_interval: float = 2.0  # seconds between polls when an event stream is not available

    @classmethod
    def resolve(
        cls,
        url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float | httpx.Timeout | None = None,
        retry: RetryPolicy | None = None,
        poll_interval: float = 2.0,
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
            timeout=DEFAULT_TIMEOUT if timeout is None else httpx.Timeout(timeout),
            retry=retry or RetryPolicy(),
            poll_interval=poll_interval,
        )

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}", "User-Agent": "batchcam-client/0.1.0"}
