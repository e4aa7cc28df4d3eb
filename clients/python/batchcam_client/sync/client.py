"""The blocking client."""

from __future__ import annotations

from types import TracebackType
from typing import Unpack

import httpx

from batchcam_client.settings import ClientOptions, ClientSettings
from batchcam_client.sync.datasets import Datasets
from batchcam_client.sync.explanations import Explanations
from batchcam_client.sync.jobs import Jobs
from batchcam_client.sync.models import Models
from batchcam_client.sync.transport import Transport


class Client:
    """``Client()`` reads ``BATCHCAM_URL`` and ``BATCHCAM_API_KEY``; use it as a context manager, or
    ``close()`` it, to release its connections."""

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        **options: Unpack[ClientOptions],
    ) -> None:
        settings = ClientSettings.resolve(url, api_key, **options)
        self._transport = Transport(settings, transport)
        self.jobs = Jobs(self._transport)
        self.datasets = Datasets(self._transport)
        self.models = Models(self._transport)
        self.explanations = Explanations(self._transport)

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()
