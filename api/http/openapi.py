"""The OpenAPI document: error responses documented as problem+json, and nothing secret in it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api.http.openapi_clients import for_generated_clients
from api.http.problems import PROBLEM_MEDIA_TYPE, Problem

PROBLEM_DESCRIPTIONS: Mapping[int, str] = {
    400: "The request or its file cannot be parsed (problem+json).",
    401: "Missing, invalid or revoked API key (problem+json; `WWW-Authenticate: Bearer`).",
    404: "No such resource for this tenant; another tenant's resources answer 404 too.",
    409: "Conflict with the resource's current state, or an Idempotency-Key still in progress.",
    413: "The request body exceeds the upload limit.",
    415: "The request's content type is not accepted.",
    422: "The request is well-formed but invalid; `errors` lists offending fields where known.",
    503: "A dependency (database, object store, broker) is unavailable; retry after `Retry-After`.",
}

HeaderSpec = dict[str, Any]
LOCATION_HEADER: HeaderSpec = {"description": "Where the resource lives.", "schema": {"type": "string"}}
RETRY_AFTER_HEADER: HeaderSpec = {
    "description": "Seconds to wait before polling the resource.",
    "schema": {"type": "integer"},
}

OCTET_STREAM = "application/octet-stream"
BINARY_SCHEMA: dict[str, Any] = {"type": "string", "format": "binary"}


def binary_content(media_type: str) -> dict[str, Any]:
    """A binary response's ``content``: ``media_type``, and ``application/octet-stream``, which a client
    gets when its ``Accept`` asks for that alone (``api.http.caching.negotiated``); generated clients
    read only the latter as bytes."""
    return {kind: {"schema": dict(BINARY_SCHEMA)} for kind in dict.fromkeys([media_type, OCTET_STREAM])}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries for error statuses; their media type is fixed up in ``problem_json``."""
    return {status: {"model": Problem, "description": PROBLEM_DESCRIPTIONS[status]} for status in statuses}


def problem_json(document: dict[str, Any]) -> dict[str, Any]:
    """Error responses are ``application/problem+json``, not the ``application/json`` FastAPI assumes."""
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                if str(status)[0] in "45" and "application/json" in content:
                    content[PROBLEM_MEDIA_TYPE] = content.pop("application/json")
    return document


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
            )
            app.openapi_schema = for_generated_clients(problem_json(document))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
