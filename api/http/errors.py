"""Every error becomes RFC 9457 ``application/problem+json`` with a stable ``type`` per error kind.

Library errors (:class:`batchcam.errors.BatchCamError`) keep their ``code``: the CLI and the API
report the same problem the same way. Broken infrastructure answers 503 and is logged with the
request id; only the request-context middleware ever answers 500 (for bugs).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.http.methods import OPTIONS, allowed_methods, options_answer
from api.http.problems import PROBLEM_MEDIA_TYPE, FieldError, problem_body, title_for
from api.http.request_context import request_id_of
from batchcam.errors import BatchCamError
from persistence.objects import ObjectStoreUnavailableError

logger = logging.getLogger(__name__)

# Library codes for a file we cannot even parse (400); every other BatchCamError is well-formed but
# unacceptable input (422). Oversize uploads are 413.
UNPARSABLE_INPUT_CODES = frozenset(
    {
        "unsupported_format",
        "invalid_zip",
        "invalid_npz",
        "corrupt_archive",
        "npz_invalid_array",
        "corrupt_image",
        "unsupported_image_format",
    }
)
STATUS_BY_LIBRARY_CODE: Mapping[str, int] = {"upload_too_large": 413, "images_too_large": 413}
CODE_BY_HTTP_STATUS: Mapping[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
}
RETRY_AFTER_UNAVAILABLE_S = "5"
# A lost connection (InterfaceError) or no free pooled connection in time: the database, not the input.
DATABASE_UNAVAILABLE_ERRORS = (OperationalError, InterfaceError, PoolTimeoutError)


class ProblemError(Exception):
    """Raise to answer a problem: ``code`` becomes the ``type`` URI's last segment."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        title: str | None = None,
        headers: Mapping[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.title = title or title_for(code)
        self.headers = dict(headers or {})
        self.extensions = extensions


def problem_response(request: Request, error: ProblemError) -> JSONResponse:
    body = problem_body(
        status=error.status,
        code=error.code,
        detail=error.detail,
        instance=request.url.path,
        request_id=request_id_of(request.scope),
        title=error.title,
        **error.extensions,
    )
    return JSONResponse(body, status_code=error.status, headers=error.headers, media_type=PROBLEM_MEDIA_TYPE)


def status_for_library_code(code: str) -> int:
    if code in UNPARSABLE_INPUT_CODES:
        return 400
    return STATUS_BY_LIBRARY_CODE.get(code, 422)


async def handle_problem(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ProblemError)
    return problem_response(request, error)


async def handle_library_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, BatchCamError)
    status = status_for_library_code(error.code)
    return problem_response(request, ProblemError(status, error.code, error.message))


async def handle_validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    # The offending values are left out on purpose: they may hold secrets a client sent by mistake.
    fields = [
        FieldError(location=list(item.get("loc", ())), message=item.get("msg", ""), type=item.get("type", ""))
        for item in error.errors()
    ]
    summary = "; ".join(f"{'.'.join(map(str, f.location))}: {f.message}" for f in fields)
    return problem_response(
        request,
        ProblemError(
            422,
            "invalid_request",
            f"the request is not valid: {summary}",
            errors=[field.model_dump(mode="json") for field in fields],
        ),
    )


async def handle_http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    headers = dict(error.headers or {})
    if error.status_code == 405:  # the path exists, the method does not: OPTIONS asks which do
        if request.method == OPTIONS:
            return options_answer(request)
        headers["Allow"] = ", ".join(allowed_methods(request))
    code = CODE_BY_HTTP_STATUS.get(error.status_code, f"http_{error.status_code}")
    detail = error.detail if isinstance(error.detail, str) else None
    return problem_response(
        request, ProblemError(error.status_code, code, detail or title_for(code), headers=headers)
    )


async def handle_database_unavailable(request: Request, error: Exception) -> JSONResponse:
    logger.error(
        "database unavailable (request_id=%s): %s", request_id_of(request.scope), type(error).__name__
    )
    return problem_response(request, unavailable("database_unavailable", "the database"))


async def handle_object_store_unavailable(request: Request, error: Exception) -> JSONResponse:
    logger.error("object store unavailable (request_id=%s): %s", request_id_of(request.scope), error)
    return problem_response(request, unavailable("object_store_unavailable", "the object store"))


def unavailable(code: str, part: str) -> ProblemError:
    return ProblemError(
        503,
        code,
        f"{part} cannot be reached right now; retry later",
        headers={"Retry-After": RETRY_AFTER_UNAVAILABLE_S},
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ProblemError, handle_problem)
    app.add_exception_handler(BatchCamError, handle_library_error)
    app.add_exception_handler(RequestValidationError, handle_validation_error)
    app.add_exception_handler(StarletteHTTPException, handle_http_error)
    for database_error in DATABASE_UNAVAILABLE_ERRORS:
        app.add_exception_handler(database_error, handle_database_unavailable)
    app.add_exception_handler(ObjectStoreUnavailableError, handle_object_store_unavailable)
