"""Delivering explanations through their rows: claim, heartbeat, finish, fail, give back for a retry.

As for training jobs (``job_leases``), the row and not the broker message is the unit of delivery:
every transition is one conditional UPDATE, so a duplicate message or a second worker cannot run an
explanation twice, and an attempt that lost its claim can never overwrite another attempt's end.
A claim holds a lease that the worker renews between batches; the sweep (``explanation_sweep``)
takes back a lease that ran out. Every transition ends or moves the lease and sets ``updated_at``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from persistence.explanation_states import LEASED_EXPLANATION_STATES, ExplanationState
from persistence.job_states import FailureReason
from persistence.models import Explanation

_RUNNING = frozenset({ExplanationState.RUNNING})
_CANCELLING = frozenset({ExplanationState.CANCELLING})


@dataclass(frozen=True)
class ExplanationClaim:
    """A worker's exclusive right to run one attempt of one explanation while its lease lasts."""

    explanation_id: uuid.UUID
    tenant_id: uuid.UUID
    owner: str
    attempt: int  # incremented by every claim: it alone tells this attempt from any other


def claim_explanation(
    session: Session, explanation_id: uuid.UUID, owner: str, lease_for: timedelta, now: datetime
) -> ExplanationClaim | None:
    """queued → running with a lease. ``None``: it is running elsewhere, already ended, or absent."""
    claimed = session.execute(
        update(Explanation)
        .where(Explanation.id == explanation_id, Explanation.state == ExplanationState.QUEUED)
        .values(
            state=ExplanationState.RUNNING,
            attempt=Explanation.attempt + 1,
            lease_owner=owner,
            lease_expires_at=now + lease_for,
            started_at=now,
            updated_at=now,
        )
        .returning(Explanation.attempt, Explanation.tenant_id)
    ).one_or_none()
    if claimed is None:
        return None
    return ExplanationClaim(explanation_id, claimed.tenant_id, owner, claimed.attempt)


def _held(claim: ExplanationClaim, states: frozenset[ExplanationState] = LEASED_EXPLANATION_STATES) -> Any:
    return (
        (Explanation.id == claim.explanation_id)
        & (Explanation.attempt == claim.attempt)
        & (Explanation.lease_owner == claim.owner)
        & Explanation.state.in_(states)
    )


def _end_held(
    session: Session, claim: ExplanationClaim, states: frozenset[ExplanationState], **values: Any
) -> bool:
    """One conditional UPDATE of the row we hold in one of ``states``, clearing the lease.

    False: not ours anymore (or in another state)."""
    done = session.execute(
        update(Explanation)
        .where(_held(claim, states))
        .values(lease_owner=None, lease_expires_at=None, **values)
        .returning(Explanation.id)
    ).scalar_one_or_none()
    return done is not None


def heartbeat_explanation(
    session: Session, claim: ExplanationClaim, lease_for: timedelta, now: datetime
) -> ExplanationState | None:
    """Extend the lease if it is still ours; the row's state (``cancelling``: stop). None: taken back."""
    state = session.execute(
        update(Explanation)
        .where(_held(claim))
        .values(lease_expires_at=now + lease_for, updated_at=now)
        .returning(Explanation.state)
    ).scalar_one_or_none()
    return None if state is None else ExplanationState(state)


def finish_explanation(
    session: Session, claim: ExplanationClaim, results: list[dict[str, Any]], now: datetime
) -> bool:
    """running (or cancelling: it finished first) → succeeded with one result per item (some may
    carry an error). False: not ours."""
    return _end_held(
        session,
        claim,
        LEASED_EXPLANATION_STATES,
        state=ExplanationState.SUCCEEDED,
        results=results,
        finished_at=now,
        updated_at=now,
    )


def fail_explanation(
    session: Session, claim: ExplanationClaim, reason: FailureReason, message: str, now: datetime
) -> ExplanationState | None:
    """running → failed with a reason; cancelling → cancelled (the user asked it to stop anyway).

    None: the claim was no longer ours."""
    values = {"failure_reason": reason, "failure_message": message, "finished_at": now, "updated_at": now}
    if _end_held(session, claim, _RUNNING, state=ExplanationState.FAILED, **values):
        return ExplanationState.FAILED
    return ExplanationState.CANCELLED if cancel_explanation(session, claim, now) else None


def release_explanation(session: Session, claim: ExplanationClaim, now: datetime) -> ExplanationState | None:
    """running → queued after transient trouble, so another attempt may claim it (this one counts);
    cancelling → cancelled. None: the claim was no longer ours."""
    if _end_held(session, claim, _RUNNING, state=ExplanationState.QUEUED, updated_at=now):
        return ExplanationState.QUEUED
    return ExplanationState.CANCELLED if cancel_explanation(session, claim, now) else None


def cancel_explanation(session: Session, claim: ExplanationClaim, now: datetime) -> bool:
    """cancelling → cancelled: the worker stopped as asked. False: not ours, or not being cancelled."""
    return _end_held(
        session,
        claim,
        _CANCELLING,
        state=ExplanationState.CANCELLED,
        finished_at=now,
        updated_at=now,
    )


def request_explanation_cancel(session: Session, explanation: Explanation, now: datetime) -> None:
    """Queued → cancelled at once; running → cancelling (its worker confirms); otherwise unchanged."""
    session.execute(
        update(Explanation)
        .where(Explanation.id == explanation.id, Explanation.state == ExplanationState.QUEUED)
        .values(state=ExplanationState.CANCELLED, finished_at=now, updated_at=now)
    )
    session.execute(
        update(Explanation)
        .where(Explanation.id == explanation.id, Explanation.state == ExplanationState.RUNNING)
        .values(state=ExplanationState.CANCELLING, updated_at=now)
    )
