"""The signed-in browser of a page request, and the CSRF check of the forms it posts."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from starlette.datastructures import FormData

from api.context import Context
from api.http.auth import cookie_session
from persistence.api_keys import VerifiedKey
from persistence.dashboard_sessions import ActiveSession

CSRF_FIELD = "csrf_token"


class SignInRequired(Exception):
    """No valid session: the page answers with a redirect to the sign-in form (``PageRoute``)."""


class CsrfRefused(Exception):
    """A state-changing form without this session's CSRF token: answered 403 (``PageRoute``)."""


@dataclass(frozen=True)
class Viewer:
    """Who is looking at a page: the tenant (as the JSON API's ``Caller``) and the CSRF token."""

    caller: VerifiedKey
    csrf_token: str


def signed_in(request: Request, context: Context) -> Viewer:
    session = cookie_session(request, context)
    if session is None:
        raise SignInRequired
    return viewer_of(session)


def viewer_of(session: ActiveSession) -> Viewer:
    return Viewer(VerifiedKey(key_id=session.key_id, tenant_id=session.tenant_id), session.csrf_token)


@dataclass(frozen=True)
class PostedForm:
    viewer: Viewer
    form: FormData


async def checked_form(request: Request, viewer: Annotated[Viewer, Depends(signed_in)]) -> PostedForm:
    """A form post that carries the session's CSRF token (SameSite=Strict alone would leave older
    browsers and same-site subdomains able to post)."""
    form = await request.form()
    presented = form.get(CSRF_FIELD)
    if not isinstance(presented, str) or not hmac.compare_digest(
        presented.encode(), viewer.csrf_token.encode()
    ):
        raise CsrfRefused
    return PostedForm(viewer, form)


SignedIn = Annotated[Viewer, Depends(signed_in)]
CheckedForm = Annotated[PostedForm, Depends(checked_form)]
