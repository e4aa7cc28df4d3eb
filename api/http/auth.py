"""Who is calling: ``Authorization: Bearer <key>``, or a signed-in dashboard's session cookie.

The cookie is the dashboard's (``api.dashboard``): its pages load images, event streams and the
JSON API with it, so they use exactly the routes and rules a client uses. A request that changes
state with a cookie alone must echo the session's CSRF token in ``X-CSRF-Token`` (a header no other
site's form can set); a Bearer request carries no ambient credential, so it needs none. Anything
else is a 401 problem.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from api.context import ApiContext, Context
from api.http.errors import ProblemError
from persistence.api_keys import VerifiedKey, verify_api_key
from persistence.dashboard_sessions import ActiveSession, find_session

SESSION_COOKIE = "batchcam_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key issued with `batchcam keys create`: `Authorization: Bearer bc_…`.",
)


async def authenticated_key(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    context: Context,
) -> VerifiedKey:
    # async: a remembered key (api/http/verified_keys.py) is answered without a trip to the threadpool.
    if credentials is None:
        session = await run_in_threadpool(cookie_session, request, context)
        if session is None:
            raise unauthorized(
                "this endpoint needs an API key: send 'Authorization: Bearer <key>'", error=None
            )
        check_csrf_header(request, session)
        return VerifiedKey(key_id=session.key_id, tenant_id=session.tenant_id)
    presented = credentials.credentials
    verified = context.verified_keys.get(presented)
    if verified is not None:
        return verified
    mark = context.verified_keys.mark()
    verified = await run_in_threadpool(looked_up_key, context, presented)
    if verified is None:
        raise unauthorized("the API key is not valid (unknown, malformed or revoked)", error="invalid_token")
    context.verified_keys.remember(presented, verified, mark)
    return verified


def looked_up_key(context: ApiContext, presented: str) -> VerifiedKey | None:
    with context.sessions() as db:
        return verify_api_key(db, presented)


def cookie_session(request: Request, context: Context) -> ActiveSession | None:
    """The dashboard session the request's cookie names, if it is still valid."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    with context.sessions() as db:
        return find_session(db, token, context.clock())


def check_csrf_header(request: Request, session: ActiveSession) -> None:
    if request.method in SAFE_METHODS:
        return
    presented = request.headers.get(CSRF_HEADER, "")
    if not hmac.compare_digest(presented.encode(), session.csrf_token.encode()):
        raise ProblemError(
            403,
            "csrf_token_invalid",
            f"a request signed in by the dashboard's cookie must send the session's {CSRF_HEADER} header",
        )


def unauthorized(detail: str, *, error: str | None) -> ProblemError:
    challenge = 'Bearer realm="batchcam"' + (f', error="{error}"' if error else "")
    return ProblemError(401, "unauthorized", detail, headers={"WWW-Authenticate": challenge})


Caller = Annotated[VerifiedKey, Depends(authenticated_key)]
