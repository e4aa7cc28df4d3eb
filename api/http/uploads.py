"""Receiving a multipart upload without letting it exhaust memory or disk.

The body is capped before anything is spooled: a declared ``Content-Length`` over the cap is
refused unread, and a counter on the ASGI receive channel stops a longer (or chunked) body as soon
as it passes the cap. The file part then lands in a private temporary folder, hashed on the way.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, Headers, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import Message, Receive

from api.http.client_text import storable
from api.http.decimals import decimal_at_most, is_decimal
from api.http.errors import ProblemError

FILE_FIELD = "file"
NAME_FIELD = "name"
MULTIPART_OVERHEAD_BYTES = 64 * 1024  # boundaries, part headers and the small text fields
MAX_FORM_FIELDS = 4
MAX_NAME_LENGTH = 200
COPY_CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True)
class SpooledUpload:
    path: Path
    name: str  # the dataset's name: the form's ``name`` field, else the file name's stem
    size: int
    sha256: str


class BodyTooLargeError(Exception):
    """The request body passed the cap while it was being received."""


def capped_receive(receive: Receive, max_bytes: int) -> Receive:
    received = 0

    async def receive_at_most() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > max_bytes:
                raise BodyTooLargeError
        return message

    return receive_at_most


def too_large(max_file_bytes: int) -> ProblemError:
    return ProblemError(
        413, "upload_too_large", f"the upload is too large; at most {max_file_bytes:,} bytes are accepted"
    )


def check_declared_length(headers: Headers, max_body_bytes: int, max_file_bytes: int) -> None:
    if declares_more_than(headers, max_body_bytes):
        raise too_large(max_file_bytes)


def declares_more_than(headers: Headers, max_bytes: int) -> bool:
    """Whether ``Content-Length`` says the body is over ``max_bytes`` (no header: chunked, and the
    counter on the stream enforces the cap); a length that is not ASCII digits is a 400."""
    declared = headers.get("content-length")
    if declared is None:
        return False
    if not is_decimal(declared):
        raise ProblemError(400, "bad_request", "Content-Length must be a number of bytes, in ASCII digits")
    return decimal_at_most(declared, max_bytes) is None


def check_multipart(headers: Headers) -> None:
    if not headers.get("content-type", "").startswith("multipart/form-data"):
        raise ProblemError(
            415,
            "unsupported_media_type",
            f"send the file as multipart/form-data in a field named {FILE_FIELD!r}",
        )


@asynccontextmanager
async def spooled_upload(request: Request, max_file_bytes: int) -> AsyncIterator[SpooledUpload]:
    """The uploaded file on local disk for the duration of the ``async with`` block."""
    max_body_bytes = max_file_bytes + MULTIPART_OVERHEAD_BYTES
    check_declared_length(request.headers, max_body_bytes, max_file_bytes)
    check_multipart(request.headers)
    form = await read_form(
        Request(request.scope, capped_receive(request.receive, max_body_bytes)), max_file_bytes
    )
    try:
        file = uploaded_file(form)
        with tempfile.TemporaryDirectory(prefix="batchcam-upload-") as folder:
            path = Path(folder) / "upload"
            size, digest = await run_in_threadpool(copy_and_hash, file.file, path)
            if size > max_file_bytes:
                raise too_large(max_file_bytes)
            yield SpooledUpload(path=path, name=dataset_name(form, file), size=size, sha256=digest)
    finally:
        await form.close()


async def read_form(request: Request, max_file_bytes: int) -> FormData:
    try:
        return await request.form(max_files=1, max_fields=MAX_FORM_FIELDS)
    except BodyTooLargeError:
        raise too_large(max_file_bytes) from None
    except HTTPException as error:  # Starlette's answer to a malformed multipart body
        raise ProblemError(
            400, "invalid_multipart", f"the multipart body cannot be read: {error.detail}"
        ) from None


def uploaded_file(form: FormData) -> UploadFile:
    file = form.get(FILE_FIELD)
    if not isinstance(file, UploadFile):
        raise ProblemError(
            422,
            "missing_file",
            f"the form has no file in a field named {FILE_FIELD!r}",
            errors=[{"location": ["body", FILE_FIELD], "message": "Field required", "type": "missing"}],
        )
    return file


def dataset_name(form: FormData, file: UploadFile) -> str:
    given = form.get(NAME_FIELD)
    name = storable(given).strip() if isinstance(given, str) else ""
    if name:
        return name[:MAX_NAME_LENGTH]
    file_name = PurePosixPath(storable(file.filename or "").replace("\\", "/")).name  # never a client path
    return (PurePosixPath(file_name).stem or "dataset")[:MAX_NAME_LENGTH]


def copy_and_hash(source: BinaryIO, target: Path) -> tuple[int, str]:
    source.seek(0)
    digest, size = hashlib.sha256(), 0
    with target.open("wb") as sink:
        while chunk := source.read(COPY_CHUNK_BYTES):
            digest.update(chunk)
            sink.write(chunk)
            size += len(chunk)
    return size, digest.hexdigest()
