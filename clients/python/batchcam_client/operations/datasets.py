"""Datasets: ``/v1/datasets``."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import TypedDict, Unpack

from batchcam_client.calls import Call, FilePart
from batchcam_client.operations.common import Id, page_params, parsed, segment
from batchcam_client.progress import ProgressCallback, ReportingReader
from batchcam_client.resources.base import Page
from batchcam_client.resources.datasets import Dataset


class UploadOptions(TypedDict, total=False):
    name: str | None  # default: the file name
    filename: str | None  # for bytes: .npz or .zip (default data.npz)
    progress: ProgressCallback | None  # called with (bytes sent, total) as the file is read out


def upload(source: str | Path | bytes, **options: Unpack[UploadOptions]) -> Call[Dataset]:
    """A ``.npz`` or class-folder ``.zip``, from a path (streamed) or bytes (``filename`` then says
    which format, default ``data.npz``)."""
    payload: bytes | Path = source if isinstance(source, bytes) else Path(source)
    if isinstance(payload, Path) and not payload.is_file():
        raise FileNotFoundError(f"no such file: {payload}")
    filename = options.get("filename") or (payload.name if isinstance(payload, Path) else "data.npz")
    progress, name = options.get("progress"), options.get("name")

    def files() -> Sequence[FilePart]:
        handle = io.BytesIO(payload) if isinstance(payload, bytes) else payload.open("rb")
        total = len(payload) if isinstance(payload, bytes) else payload.stat().st_size
        return [("file", (filename, ReportingReader(handle, total, progress), "application/octet-stream"))]

    form = {"name": name} if name else None
    return Call("POST", "/v1/datasets", parsed(Dataset), files=files, form=form, submits=True)


def get(dataset_id: Id) -> Call[Dataset]:
    return Call("GET", f"/v1/datasets/{segment(dataset_id)}", parsed(Dataset))


def page(limit: int = 50) -> Call[Page[Dataset]]:
    return Call("GET", "/v1/datasets", parsed(Page[Dataset]), params=page_params(limit))
