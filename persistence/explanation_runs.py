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

from persistence.explanation_states import ExplanationState
from persistence.job_states import FailureReason
from persistence.models import Explanation


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


def _held(claim: ExplanationClaim) -> Any:
    return (
        (Explanation.id == claim.explanation_id)
        & (Explanation.attempt == claim.attempt)
        & (Explanation.lease_owner == claim.owner)
        & (Explanation.state == ExplanationState.RUNNING)
    )


def _end_held(session: Session, claim: ExplanationClaim, **values: Any) -> bool:
    """One conditional UPDATE of the row we hold, clearing the lease. False: not ours anymore."""
    done = session.execute(
        update(Explanation)
        .where(_held(claim))
        .values(lease_owner=None, lease_expires_at=None, **values)
        .returning(Explanation.id)
    ).scalar_one_or_none()
    return done is not None


def heartbeat_explanation(
    session: Session, claim: ExplanationClaim, lease_for: timedelta, now: datetime
) -> bool:
    """Extend the lease if it is still ours. False: it was taken back (stop, write nothing)."""
    kept = session.execute(
        update(Explanation)
        .where(_held(claim))
        .values(lease_expires_at=now + lease_for, updated_at=now)
        .returning(Explanation.id)
    ).scalar_one_or_none()
    return kept is not None


def finish_explanation(
    session: Session, claim: ExplanationClaim, results: list[dict[str, Any]], now: datetime
) -> bool:
    """running → succeeded with one result per item (some may carry an error). False: not ours."""
    return _end_held(
        session, claim, state=ExplanationState.SUCCEEDED, results=results, finished_at=now, updated_at=now
    )


def fail_explanation(
    session: Session, claim: ExplanationClaim, reason: FailureReason, message: str, now: datetime
) -> bool:
    """running → failed with a reason. False: the claim was no longer ours."""
    return _end_held(
        session,
        claim,
        state=ExplanationState.FAILED,
        failure_reason=reason,
        failure_message=message,
        finished_at=now,
        updated_at=now,
    )


def release_explanation(session: Session, claim: ExplanationClaim, now: datetime) -> bool:
    """running → queued after transient trouble, so another attempt may claim it (this one counts)."""
    return _end_held(session, claim, state=ExplanationState.QUEUED, updated_at=now)
