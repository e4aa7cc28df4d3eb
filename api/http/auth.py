"""``Authorization: Bearer <key>`` → the tenant the key belongs to; anything else is a 401 problem."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.context import Context
from api.http.errors import ProblemError
from persistence.api_keys import VerifiedKey, verify_api_key

bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key issued with `batchcam keys create`: `Authorization: Bearer bc_…`.",
)


def authenticated_key(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    context: Context,
) -> VerifiedKey:
    if credentials is None:
        raise unauthorized("this endpoint needs an API key: send 'Authorization: Bearer <key>'", error=None)
    with context.sessions() as session:
        verified = verify_api_key(session, credentials.credentials)
    if verified is None:
        raise unauthorized("the API key is not valid (unknown, malformed or revoked)", error="invalid_token")
    return verified


def unauthorized(detail: str, *, error: str | None) -> ProblemError:
    challenge = 'Bearer realm="batchcam"' + (f', error="{error}"' if error else "")
    return ProblemError(401, "unauthorized", detail, headers={"WWW-Authenticate": challenge})


Caller = Annotated[VerifiedKey, Depends(authenticated_key)]
