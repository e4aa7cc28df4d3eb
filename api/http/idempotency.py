"""``Idempotency-Key`` on POST: same key + same body replays the first response; same key + other
body → 422; key still being processed → 409.

The key is claimed by inserting an in-progress row in its own transaction. The work and the
response it produced are then committed together (``record_response`` in the work's transaction),
so a claim without a response means the work never happened: after ``STALE_CLAIM_AFTER`` such a
claim (its request died) may be taken over, and a superseded claimant can never record a second
response (the update is conditional on the claim it holds).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import Header
from fastapi.responses import JSONResponse
from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from api.http.errors import ProblemError
from persistence.db import transaction
from persistence.models import IdempotencyRecord

STALE_CLAIM_AFTER = timedelta(seconds=60)
REPLAYED_HEADER = "Idempotent-Replayed"

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Repeat a POST safely: the same key with the same body replays the first response.",
    ),
]


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass(frozen=True)
class IdempotencyClaim:
    """This request holds the key; ``claimed_at`` tells this claim from a later takeover."""

    tenant_id: uuid.UUID
    key: str
    claimed_at: datetime


def request_fingerprint(operation: str, payload: dict[str, Any]) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{operation}\n{canonical}".encode()).hexdigest()


def claim_key(
    sessions: sessionmaker[Session],
    tenant_id: uuid.UUID,
    key: str,
    operation: str,
    fingerprint: str,
    now: datetime,
) -> IdempotencyClaim | StoredResponse:
    """Claim ``key`` for this request, or return the response to replay; 409/422 problems otherwise."""
    try:
        with transaction(sessions) as session:
            session.add(
                IdempotencyRecord(
                    tenant_id=tenant_id,
                    key=key,
                    method_path=operation,
                    request_hash=fingerprint,
                    created_at=now,
                )
            )
        return IdempotencyClaim(tenant_id, key, now)
    except IntegrityError:
        pass  # the key was used before: decide from the existing record
    with transaction(sessions) as session:
        record = session.get(IdempotencyRecord, (tenant_id, key), with_for_update=True)
        if record is None:  # released between our insert and this read: the client may simply retry
            raise key_in_progress()
        if record.method_path != operation or record.request_hash != fingerprint:
            raise ProblemError(
                422,
                "idempotency_key_reused",
                "this Idempotency-Key was already used with a different request; use a new key",
            )
        if record.response_status is not None:
            return StoredResponse(
                record.response_status, record.response_body or {}, record.response_headers or {}
            )
        if record.created_at > now - STALE_CLAIM_AFTER:
            raise key_in_progress()
        record.created_at = now  # take over a claim whose request died before doing its work
        return IdempotencyClaim(tenant_id, key, now)


def key_in_progress() -> ProblemError:
    return ProblemError(
        409,
        "idempotency_key_in_progress",
        "a request with this Idempotency-Key is still being processed; retry shortly",
        headers={"Retry-After": "1"},
    )


def record_response(session: Session, claim: IdempotencyClaim, response: StoredResponse) -> None:
    """Store the response in the work's own transaction; refuse if the claim was taken over."""
    stored = session.execute(
        update(IdempotencyRecord)
        .where(
            IdempotencyRecord.tenant_id == claim.tenant_id,
            IdempotencyRecord.key == claim.key,
            IdempotencyRecord.created_at == claim.claimed_at,
            IdempotencyRecord.response_status.is_(None),
        )
        .values(
            response_status=response.status, response_body=response.body, response_headers=response.headers
        )
        .returning(IdempotencyRecord.key)
    ).scalar_one_or_none()
    if stored is None:
        raise key_in_progress()  # the transaction rolls back: the work is not done twice


def release_key(sessions: sessionmaker[Session], claim: IdempotencyClaim) -> None:
    """Forget a claim whose request failed, so the client can retry with the same key."""
    with transaction(sessions) as session:
        session.execute(
            delete(IdempotencyRecord).where(
                IdempotencyRecord.tenant_id == claim.tenant_id,
                IdempotencyRecord.key == claim.key,
                IdempotencyRecord.created_at == claim.claimed_at,
                IdempotencyRecord.response_status.is_(None),
            )
        )


@dataclass(frozen=True)
class IdempotentRequest:
    """Who asks, with which key (None: no key, nothing to remember), for what operation and payload."""

    tenant_id: uuid.UUID
    key: str | None
    operation: str
    payload: dict[str, Any]


def answer_once(
    sessions: sessionmaker[Session],
    request: IdempotentRequest,
    now: datetime,
    produce: Callable[[IdempotencyClaim | None], StoredResponse],
) -> tuple[StoredResponse, bool]:
    """The response to ``request`` and whether it is a replay.

    ``produce`` does the work and records its response under the claim it is given (in the work's
    own transaction, ``record_response``); if it raises, the key is released for a retry.
    """
    claim: IdempotencyClaim | None = None
    if request.key is not None:
        fingerprint = request_fingerprint(request.operation, request.payload)
        outcome = claim_key(sessions, request.tenant_id, request.key, request.operation, fingerprint, now)
        if isinstance(outcome, StoredResponse):
            return outcome, True
        claim = outcome
    try:
        return produce(claim), False
    except Exception:
        if claim is not None:
            release_key(sessions, claim)
        raise


def stored_json_response(response: StoredResponse, *, replayed: bool) -> JSONResponse:
    return JSONResponse(
        response.body, status_code=response.status, headers=response.headers | replayed_header(replayed)
    )


def replayed_header(replayed: bool) -> dict[str, str]:
    """Marks an answer given to a repeated request (its effect happened once, the first time)."""
    return {REPLAYED_HEADER: "true"} if replayed else {}
