"""API keys: random bearer secrets, shown once, stored only as a SHA-256 (docs/ARCHITECTURE.md §4.5).

A key reads ``bc_<prefix>_<secret>``. The prefix is public (it finds the row and names the key in
listings); the stored hash covers the whole key, and verification compares hashes in constant time.
Tenants are created on demand by name when their first key is made.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from persistence.models import ApiKey, Tenant, utcnow

KEY_SCHEME = "bc"
PREFIX_BYTES = 6  # 12 hex characters: fits api_keys.prefix (16) and never contains the separator
SECRET_BYTES = 32
# A valid-looking hash to compare against when the prefix is unknown, so a miss costs what a hit costs.
_UNKNOWN_KEY_HASH = hashlib.sha256(b"no such key").hexdigest()


@dataclass(frozen=True)
class CreatedApiKey:
    """A freshly made key. ``secret`` is the only copy of the full key: show it once, then drop it."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    tenant_name: str
    name: str
    prefix: str
    secret: str
    created_at: datetime


@dataclass(frozen=True)
class ApiKeyInfo:
    """A key as listings show it: never the secret, never the hash."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    tenant_name: str
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class VerifiedKey:
    """Who a presented key speaks for."""

    key_id: uuid.UUID
    tenant_id: uuid.UUID


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def parse_prefix(key: str) -> str | None:
    """The prefix of a well-formed ``bc_<prefix>_<secret>`` key, else ``None``."""
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_SCHEME or not parts[1] or not parts[2]:
        return None
    return parts[1]


def get_or_create_tenant(session: Session, name: str) -> Tenant:
    """The tenant called ``name``; created if it does not exist (a racing creator is tolerated)."""
    tenant = session.scalar(select(Tenant).where(Tenant.name == name))
    if tenant is not None:
        return tenant
    try:
        with session.begin_nested():  # a savepoint, so losing the race does not poison the transaction
            tenant = Tenant(name=name)
            session.add(tenant)
        return tenant
    except IntegrityError:
        return session.scalars(select(Tenant).where(Tenant.name == name)).one()


def create_api_key(session: Session, tenant_name: str, key_name: str) -> CreatedApiKey:
    """Make a key for ``tenant_name`` (creating the tenant on first use)."""
    tenant = get_or_create_tenant(session, tenant_name)
    prefix = secrets.token_hex(PREFIX_BYTES)
    secret = f"{KEY_SCHEME}_{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}"
    row = ApiKey(tenant_id=tenant.id, name=key_name, prefix=prefix, secret_hash=hash_key(secret))
    session.add(row)
    session.flush()
    return CreatedApiKey(
        id=row.id,
        tenant_id=tenant.id,
        tenant_name=tenant.name,
        name=row.name,
        prefix=prefix,
        secret=secret,
        created_at=row.created_at,
    )


def verify_api_key(session: Session, presented: str) -> VerifiedKey | None:
    """The tenant behind a presented key; ``None`` for a malformed, unknown or revoked key."""
    prefix = parse_prefix(presented)
    row = None if prefix is None else session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    stored_hash = row.secret_hash if row is not None else _UNKNOWN_KEY_HASH
    matches = hmac.compare_digest(stored_hash, hash_key(presented))
    if row is None or not matches or row.revoked_at is not None:
        return None
    return VerifiedKey(key_id=row.id, tenant_id=row.tenant_id)


def api_key_is_active(session: Session, key_id: uuid.UUID) -> bool:
    """Whether a key verified earlier still exists unrevoked (an open event stream asks again)."""
    revoked_at = session.execute(select(ApiKey.revoked_at).where(ApiKey.id == key_id)).one_or_none()
    return revoked_at is not None and revoked_at[0] is None


def list_api_keys(session: Session, tenant_name: str | None = None) -> list[ApiKeyInfo]:
    """Every key (of one tenant when ``tenant_name`` is given), oldest first."""
    query = select(ApiKey, Tenant.name).join(Tenant, Tenant.id == ApiKey.tenant_id)
    if tenant_name is not None:
        query = query.where(Tenant.name == tenant_name)
    rows = session.execute(query.order_by(ApiKey.created_at, ApiKey.id)).all()
    return [_info(key, name) for key, name in rows]


def revoke_api_key(session: Session, prefix_or_key: str, now: datetime | None = None) -> bool:
    """Revoke a key named by its prefix (or the whole key). False: no such key, or already revoked."""
    prefix = parse_prefix(prefix_or_key) or prefix_or_key
    revoked = session.execute(
        update(ApiKey)
        .where(ApiKey.prefix == prefix, ApiKey.revoked_at.is_(None))
        .values(revoked_at=now or utcnow())
        .returning(ApiKey.id)
    ).scalar_one_or_none()
    return revoked is not None


def _info(key: ApiKey, tenant_name: str) -> ApiKeyInfo:
    return ApiKeyInfo(
        id=key.id,
        tenant_id=key.tenant_id,
        tenant_name=tenant_name,
        name=key.name,
        prefix=key.prefix,
        created_at=key.created_at,
        revoked_at=key.revoked_at,
    )
