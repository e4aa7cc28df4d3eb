"""Dashboard sessions: a browser signs in once with an API key and then holds only a random token.

The token travels in an HttpOnly cookie; the database keeps its SHA-256 (as for API keys), the key it
was made from and a CSRF token that every state-changing request of that browser must echo. A
session ends when it expires, when the browser signs out (the row is deleted) or when its API key
is revoked (checked on every use).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from persistence.api_keys import verify_api_key
from persistence.models import ApiKey, DashboardSession

TOKEN_BYTES = 32


@dataclass(frozen=True)
class OpenedSession:
    """A new session. ``token`` is the only copy of the cookie's value: set it, then drop it."""

    token: str
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True)
class ActiveSession:
    """Who a presented session token speaks for, and the CSRF token its forms must carry."""

    key_id: uuid.UUID
    tenant_id: uuid.UUID
    csrf_token: str


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def open_session(
    session: Session, presented_key: str, now: datetime, lifetime: timedelta
) -> OpenedSession | None:
    """A session for a valid API key; ``None`` for a malformed, unknown or revoked key."""
    verified = verify_api_key(session, presented_key)
    if verified is None:
        return None
    token, csrf_token = secrets.token_urlsafe(TOKEN_BYTES), secrets.token_urlsafe(TOKEN_BYTES)
    expires_at = now + lifetime
    session.add(
        DashboardSession(
            token_hash=token_hash(token),
            api_key_id=verified.key_id,
            csrf_token=csrf_token,
            created_at=now,
            expires_at=expires_at,
        )
    )
    return OpenedSession(token=token, csrf_token=csrf_token, expires_at=expires_at)


def find_session(session: Session, token: str, now: datetime) -> ActiveSession | None:
    """The session a cookie names, if it has not expired and its API key is not revoked."""
    row = session.execute(
        select(DashboardSession.csrf_token, ApiKey.id, ApiKey.tenant_id)
        .join(ApiKey, ApiKey.id == DashboardSession.api_key_id)
        .where(
            DashboardSession.token_hash == token_hash(token),
            DashboardSession.expires_at > now,
            ApiKey.revoked_at.is_(None),
        )
    ).one_or_none()
    if row is None:
        return None
    csrf_token, key_id, tenant_id = row
    return ActiveSession(key_id=key_id, tenant_id=tenant_id, csrf_token=csrf_token)


def close_session(session: Session, token: str, now: datetime) -> None:
    """Sign out: the session is deleted, and every expired one with it (they would never be used)."""
    session.execute(delete(DashboardSession).where(DashboardSession.token_hash == token_hash(token)))
    session.execute(delete(DashboardSession).where(DashboardSession.expires_at <= now))
