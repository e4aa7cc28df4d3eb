"""Errors as typed exceptions: one class per kind of failure a caller branches on, all carrying the
problem's ``code`` (stable, from RFC 9457 ``type``), ``status``, ``title``, ``detail`` and the request id
to quote to the operators."""

from __future__ import annotations

from typing import Any

import httpx

REQUEST_ID_HEADER = "X-Request-ID"


class BatchCamError(Exception):
    """Base of every error this client raises."""

    def __init__(
        self,
        detail: str | None,
        *,
        code: str,
        status: int | None = None,
        title: str | None = None,
        request_id: str | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{code}: {detail or title or 'no detail'}")
        self.code = code
        self.status = status
        self.title = title
        self.detail = detail
        self.request_id = request_id
        self.body = body or {}  # the whole problem, extension members included (e.g. ``errors``)


class ConfigurationError(BatchCamError):
    """The client cannot be built: no URL or no API key given nor in the environment."""


class TransportError(BatchCamError):
    """The service could not be reached, or the connection broke, and retries did not help."""


class WaitTimeout(BatchCamError):
    """``wait()`` ran out of time; the job or explanation is still going on the server."""


class ClientError(BatchCamError):
    """A 4xx: the request is wrong and retrying it unchanged cannot help."""


class InvalidRequest(ClientError):
    """400 or 422: malformed or invalid input (``body["errors"]`` lists offending fields when known)."""


class Unauthorized(ClientError):
    """401: missing, invalid or revoked API key."""


class Forbidden(ClientError):
    """403."""


class NotFound(ClientError):
    """404: no such resource for this tenant (another tenant's ids answer the same)."""


class Conflict(ClientError):
    """409: e.g. ``job_already_finished``, ``explanation_not_finished``."""


class PayloadTooLarge(ClientError):
    """413: the body (JSON spec or upload) is over the service's cap."""


class RateLimited(ClientError):
    """429, after the retries allowed for it."""


class ServerError(BatchCamError):
    """A 5xx: something on the service's side is broken (logged there with the request id)."""


class ServiceUnavailable(ServerError):
    """503, after the retries allowed for it: a dependency of the service is down."""


_BY_STATUS: dict[int, type[BatchCamError]] = {
    400: InvalidRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: InvalidRequest,
    429: RateLimited,
    503: ServiceUnavailable,
}


def error_class(status: int) -> type[BatchCamError]:
    known = _BY_STATUS.get(status)
    if known is not None:
        return known
    return ServerError if status >= 500 else ClientError


def problem_of(response: httpx.Response) -> dict[str, Any]:
    """The problem+json body, or ``{}`` when the body is not a JSON object (a proxy's HTML page)."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def error_from_response(response: httpx.Response) -> BatchCamError:
    problem = problem_of(response)
    fallback_detail = None if problem else response.text[:200] or None
    return error_class(response.status_code)(
        problem.get("detail") or fallback_detail,
        code=str(problem.get("code") or f"http_{response.status_code}"),
        status=response.status_code,
        title=problem.get("title") or response.reason_phrase,
        request_id=response.headers.get(REQUEST_ID_HEADER) or problem.get("request_id"),
        body=problem,
    )
