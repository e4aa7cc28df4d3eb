"""Delivering explanations through their rows: claim, finish, fail, give back for a retry.

As for training jobs (``job_leases``), the row and not the broker message is the unit of delivery:
every transition is one conditional UPDATE, so a duplicate message or a second worker cannot run an
explanation twice, and an attempt that lost its claim can never overwrite another attempt's end.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from persistence.explanation_states import ExplanationState
from persistence.job_states import FailureReason
from persistence.models import Explanation


@dataclass(frozen=True)
class ExplanationClaim:
    """A worker's exclusive right to run one attempt of one explanation."""

    explanation_id: uuid.UUID
    attempt: int


def claim_explanation(session: Session, explanation_id: uuid.UUID) -> ExplanationClaim | None:
    """queued → running. ``None``: it is running elsewhere, already ended, or does not exist."""
    attempt = session.execute(
        update(Explanation)
        .where(Explanation.id == explanation_id, Explanation.state == ExplanationState.QUEUED)
        .values(state=ExplanationState.RUNNING, attempt=Explanation.attempt + 1)
        .returning(Explanation.attempt)
    ).scalar_one_or_none()
    return None if attempt is None else ExplanationClaim(explanation_id, attempt)


def _held(claim: ExplanationClaim) -> Any:
    return (
        (Explanation.id == claim.explanation_id)
        & (Explanation.attempt == claim.attempt)
        & (Explanation.state == ExplanationState.RUNNING)
    )


def finish_explanation(
    session: Session, claim: ExplanationClaim, results: list[dict[str, Any]], now: datetime
) -> bool:
    """running → succeeded with one result per item (some may carry an error). False: not ours."""
    done = session.execute(
        update(Explanation)
        .where(_held(claim))
        .values(state=ExplanationState.SUCCEEDED, results=results, finished_at=now)
        .returning(Explanation.id)
    ).scalar_one_or_none()
    return done is not None


def fail_explanation(
    session: Session, claim: ExplanationClaim, reason: FailureReason, message: str, now: datetime
) -> bool:
    """running → failed with a reason. False: the claim was no longer ours."""
    done = session.execute(
        update(Explanation)
        .where(_held(claim))
        .values(
            state=ExplanationState.FAILED, failure_reason=reason, failure_message=message, finished_at=now
        )
        .returning(Explanation.id)
    ).scalar_one_or_none()
    return done is not None


def release_explanation(session: Session, claim: ExplanationClaim) -> bool:
    """running → queued after transient trouble, so another attempt may claim it (this one counts)."""
    done = session.execute(
        update(Explanation)
        .where(_held(claim))
        .values(state=ExplanationState.QUEUED)
        .returning(Explanation.id)
    ).scalar_one_or_none()
    return done is not None
