"""Sign in with an API key (the key becomes a session cookie, never stored by the browser) and out.

The sign-in form has no session yet to hold a CSRF token, so it uses a double-submit cookie: a random
value set with the form and echoed in it (a forged sign-in could otherwise sign a victim into the
attacker's tenant).
"""

from __future__ import annotations

import hmac
import secrets
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from api.context import Context
from api.dashboard.page_route import PageRoute, error_page
from api.dashboard.rendering import DASHBOARD_PATH, render
from api.dashboard.session import CSRF_FIELD, CheckedForm
from api.http.auth import SESSION_COOKIE, cookie_session
from persistence.dashboard_sessions import close_session, open_session
from persistence.db import transaction

SESSION_LIFETIME = timedelta(hours=12)
SIGN_IN_COOKIE = "batchcam_sign_in"  # the sign-in form's double-submit CSRF value
HOME = f"{DASHBOARD_PATH}/jobs"

router = APIRouter(prefix=DASHBOARD_PATH, route_class=PageRoute, include_in_schema=False)


@router.get("")
@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse(HOME, status_code=303)


@router.get("/sign-in")
def sign_in_form(
    request: Request, context: Context, next_page: Annotated[str, Query(alias="next")] = HOME
) -> Response:
    if cookie_session(request, context) is not None:
        return RedirectResponse(safe_next(next_page), status_code=303)
    return sign_in_page(request, next_page, error=None, status_code=200)


@router.post("/sign-in")
def sign_in(
    request: Request,
    context: Context,
    api_key: Annotated[str, Form(max_length=500)] = "",
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD, max_length=200)] = "",
    next_page: Annotated[str, Form(alias="next", max_length=2000)] = HOME,
) -> Response:
    expected = request.cookies.get(SIGN_IN_COOKIE, "")
    if not expected or not hmac.compare_digest(csrf_token.encode(), expected.encode()):
        return error_page(
            request,
            403,
            "This sign-in form is stale or was not sent by this dashboard: open the sign-in page again.",
        )
    with transaction(context.sessions) as db:
        opened = open_session(db, api_key.strip(), context.clock(), SESSION_LIFETIME)
    if opened is None:
        return sign_in_page(
            request,
            next_page,
            error="That API key is not valid (unknown, malformed or revoked).",
            status_code=401,
        )
    response = RedirectResponse(safe_next(next_page), status_code=303)
    set_cookie(request, response, SESSION_COOKIE, opened.token, max_age=int(SESSION_LIFETIME.total_seconds()))
    response.delete_cookie(SIGN_IN_COOKIE, path=f"{DASHBOARD_PATH}/sign-in")
    return response


@router.post("/sign-out")
async def sign_out(request: Request, context: Context, _: CheckedForm) -> Response:
    token = request.cookies.get(SESSION_COOKIE, "")

    def close() -> None:
        with transaction(context.sessions) as db:
            close_session(db, token, context.clock())

    await run_in_threadpool(close)
    response = RedirectResponse(f"{DASHBOARD_PATH}/sign-in?signed_out=1", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def sign_in_page(request: Request, next_page: str, *, error: str | None, status_code: int) -> Response:
    token = secrets.token_urlsafe(32)
    response = render(
        request,
        "sign_in.html",
        None,
        {
            "sign_in_token": token,
            "next": safe_next(next_page),
            "error": error,
            "signed_out": request.query_params.get("signed_out") == "1",
        },
        status_code=status_code,
    )
    set_cookie(request, response, SIGN_IN_COOKIE, token, max_age=3600, path=f"{DASHBOARD_PATH}/sign-in")
    return response


def set_cookie(
    request: Request, response: Response, name: str, value: str, *, max_age: int, path: str = "/"
) -> None:
    """HttpOnly (no script reads it), SameSite=Strict (no other site's request carries it), and Secure
    whenever the page came over HTTPS (plain HTTP is for a local demo)."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=path,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def safe_next(target: str) -> str:
    """Where to go after signing in: a dashboard path of this site, never another site."""
    if target.startswith(f"{DASHBOARD_PATH}/") and not target.startswith("//") and "\\" not in target:
        return target
    return HOME
