"""Serving immutable artifacts: strong ETags, year-long caching, ``If-None-Match`` → 304.

Artifacts are written once and never change, so a client may keep them for a year without asking
again. The caching is ``private``, not ``public``: every artifact sits behind an API key, and a
shared cache keys on the URL alone, so a ``public`` response could be served to someone without
that key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from fastapi import Request, Response
from fastapi.responses import StreamingResponse

from api.http.errors import ProblemError
from api.http.openapi import OCTET_STREAM
from persistence.objects import ObjectStore

IMMUTABLE_CACHE_CONTROL = "private, max-age=31536000, immutable"
CONTENT_ETAG_HEX_DIGITS = 32


def quoted(etag: str) -> str:
    return f'"{etag}"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """``If-None-Match`` uses the weak comparison (RFC 9110 §13.1.2): ``W/`` prefixes are ignored."""
    if if_none_match is None:
        return False
    candidates = [candidate.strip() for candidate in if_none_match.split(",")]
    return any(candidate == "*" or candidate.removeprefix("W/") == quoted(etag) for candidate in candidates)


def caching_headers(etag: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    return {"ETag": quoted(etag), "Cache-Control": IMMUTABLE_CACHE_CONTROL, "Vary": "Accept", **(extra or {})}


def negotiated(request: Request, media_type: str) -> str:
    """For an image: ``application/octet-stream`` to a client whose ``Accept`` names it and not the
    image's type (nor ``image/*`` or ``*/*``). The document offers both for images
    (``api.http.openapi.binary_content``): generated clients read only the latter as bytes."""
    if not media_type.startswith("image/"):
        return media_type
    accepted = {part.split(";")[0].strip().lower() for part in request.headers.get("accept", "").split(",")}
    covering = {media_type, media_type.split("/")[0] + "/*", "*/*"}
    return OCTET_STREAM if OCTET_STREAM in accepted and not accepted & covering else media_type


def stored_object_response(
    request: Request,
    store: ObjectStore,
    key: str,
    *,
    media_type: str,
    missing: ProblemError,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """The object streamed from the store (or 304); ``missing`` is raised when it is not stored."""
    stored = store.head(key)
    if stored is None:
        raise missing
    response_headers = caching_headers(stored.etag, headers)
    if etag_matches(request.headers.get("if-none-match"), stored.etag):
        return Response(status_code=304, headers=response_headers)
    response_headers["Content-Length"] = str(stored.size)
    return StreamingResponse(
        store.iter_chunks(key), media_type=negotiated(request, media_type), headers=response_headers
    )


def content_response(request: Request, content: bytes, *, media_type: str) -> Response:
    """Bytes made on request (a rendered heatmap), with an ETag from their content hash."""
    etag = hashlib.sha256(content).hexdigest()[:CONTENT_ETAG_HEX_DIGITS]
    headers = caching_headers(etag)
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(content, media_type=negotiated(request, media_type), headers=headers)
