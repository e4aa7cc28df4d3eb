"""Explanations' side of the lease engine (``persistence.leases``): claim, heartbeat, finish, fail, give
back for a retry, cancel.

As for training jobs, the row and not the broker message is the unit of delivery: a duplicate message
or a second worker cannot run an explanation twice, and an attempt that lost its claim can never
overwrite another attempt's end. A claim holds a lease that the worker renews between batches; the
sweep (``persistence.explanations.sweep``) takes back a lease that ran out.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import Update, bindparam, case, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import coalesce

from persistence import leases
from persistence.models import Explanation, WebhookEndpoint, table_of
from persistence.states import LEASED_STATES, FailureReason, JobState
from persistence.webhooks.outbox import explanations_ended

_RUNNING = frozenset({JobState.RUNNING})
_CANCELLING = frozenset({JobState.CANCELLING})


@dataclass(frozen=True)
class ExplanationClaim:
    """A worker's exclusive right to run one attempt of one explanation while its lease lasts."""

    explanation_id: uuid.UUID
    tenant_id: uuid.UUID
    owner: str
    attempt: int  # incremented by every claim: it alone tells this attempt from any other
    created_at: datetime | None = field(default=None, compare=False)  # when the request came (metrics)

    @property
    def row_id(self) -> uuid.UUID:
        return self.explanation_id


def claim_explanation(
    session: Session, explanation_id: uuid.UUID, owner: str, lease_for: timedelta, now: datetime
) -> ExplanationClaim | None:
    """queued → running with a lease. ``None``: it is running elsewhere, already ended, or absent."""
    claimed = leases.claim(session, Explanation, explanation_id, owner, lease_for, now, Explanation.tenant_id)
    if claimed is None:
        return None
    return ExplanationClaim(explanation_id, claimed.tenant_id, owner, claimed.attempt)


def heartbeat_explanation(
    session: Session, claim: ExplanationClaim, lease_for: timedelta, now: datetime
) -> JobState | None:
    """Extend the lease if it is still ours; the row's state (``cancelling``: stop). None: taken back."""
    return leases.renew(session, Explanation, claim, lease_for, now)


def finish_explanation(
    session: Session,
    claim: ExplanationClaim,
    results: list[dict[str, Any]],
    now: datetime,
    inline_maps: bytes | None = None,
) -> JobState | None:
    """running (or cancelling: it finished first) → succeeded with one result per item, some of which
    may carry an error; ``failed`` (``invalid_input``) with those results when not one image could be
    explained, since a caller would otherwise have to look inside a "success" to learn that it has
    nothing. ``inline_maps``: a small request's maps. The state written; None: not ours."""
    return finish_explanations(session, [(claim, results, inline_maps)], now)[claim.explanation_id]


def finish_explanations(
    session: Session,
    finished: list[tuple[ExplanationClaim, list[dict[str, Any]], bytes | None]],
    now: datetime,
) -> dict[uuid.UUID, JobState | None]:
    """``finish_explanation`` for a batch's requests in one UPDATE (a statement per row cost the
    explain worker a quarter of its time under load), their webhooks looked up in one query (in this
    transaction). Each row is written only if its claim still holds it, as ``end_held`` would."""
    planned = {claim.explanation_id: (claim, ending(results, inline)) for claim, results, inline in finished}
    if not planned:
        return {}
    params: dict[str, Any] = {"now": now}
    for position, (claim, values) in enumerate(planned.values()):
        params |= _row_params(position, claim, values)
    ended = session.execute(_finish_statement(len(planned)), params).all()
    ends = dict.fromkeys(planned, None) | {row: planned[row][1].state for row, _ in ended}
    # The UPDATE said which rows' tenants have a webhook endpoint: most batches need no other query.
    explanations_ended(session, [row for row, subscribed in ended if subscribed], now)
    return ends


def _row_params(position: int, claim: ExplanationClaim, values: FinishedValues) -> dict[str, Any]:
    """One row's parameters of ``_finish_statement``: which row (as its claim holds it), and its end."""
    row = {
        "id": claim.explanation_id,
        "owner": claim.owner,
        "attempt": claim.attempt,
        "state": values.state,
        "results": values.results,
        "inline_maps": values.inline_maps,
        "failure_reason": values.failure_reason,
        "failure_message": values.failure_message,
    }
    return {_row_param(name, position): value for name, value in row.items()}


def _row_param(name: str, position: int) -> str:
    return f"row{position}_{name}"  # never like SQLAlchemy's own names ("state_1")


@lru_cache(maxsize=128)  # one per batch size (BatchLimits.max_requests is 64 by default)
def _finish_statement(rows: int) -> Update:
    """The UPDATE that ends ``rows`` held rows, each with its own values (``CASE id WHEN …`` per
    column), built once per size and bound per call (ARCHITECTURE §7.3: hot path). It returns each
    ended row's id and whether its tenant has a webhook endpoint."""
    columns = table_of(Explanation).c

    def per_row(name: str, keep_when_none: bool = False) -> Any:
        """Each row's value; ``keep_when_none``: a row given none keeps the column's value."""
        column = columns[name]
        whens = []
        for position in range(rows):
            value: Any = bindparam(_row_param(name, position), type_=column.type)
            row = bindparam(_row_param("id", position), type_=columns.id.type)
            whens.append((row, coalesce(value, column) if keep_when_none else value))
        return case(*whens, value=columns.id, else_=column)

    held = [
        (columns.id == bindparam(_row_param("id", position)))
        & (columns.lease_owner == bindparam(_row_param("owner", position)))
        & (columns.attempt == bindparam(_row_param("attempt", position)))
        & columns.state.in_(LEASED_STATES)
        for position in range(rows)
    ]
    now = bindparam("now", type_=columns.finished_at.type)
    return (
        update(table_of(Explanation))
        .where(or_(*held))
        .values(
            state=per_row("state"),
            results=per_row("results"),
            inline_maps=per_row("inline_maps"),
            failure_reason=per_row("failure_reason", keep_when_none=True),
            failure_message=per_row("failure_message", keep_when_none=True),
            finished_at=now,
            lease_owner=None,
            lease_expires_at=None,
            updated_at=now,
        )
        .returning(columns.id, columns.tenant_id.in_(select(WebhookEndpoint.tenant_id)))
    )


@dataclass(frozen=True)
class FinishedValues:
    state: JobState
    results: list[dict[str, Any]]
    inline_maps: bytes | None
    failure_reason: FailureReason | None = None
    failure_message: str | None = None


def ending(results: list[dict[str, Any]], inline_maps: bytes | None) -> FinishedValues:
    """Succeeded with the results; failed (``invalid_input``) when not one image was explained."""
    errors = [result["error"] for result in results if "error" in result]
    if results and len(errors) == len(results):
        return FinishedValues(
            JobState.FAILED, results, inline_maps, FailureReason.INVALID_INPUT, nothing_explained(errors)
        )
    return FinishedValues(JobState.SUCCEEDED, results, inline_maps)


def nothing_explained(errors: list[dict[str, str]]) -> str:
    first = errors[0].get("message", "unknown error")
    more = f" (and {len(errors) - 1} more; see each item's error)" if len(errors) > 1 else ""
    return f"none of the {len(errors)} images could be explained: {first}{more}"


def fail_explanation(
    session: Session, claim: ExplanationClaim, reason: FailureReason, message: str, now: datetime
) -> JobState | None:
    """running → failed with a reason; cancelling → cancelled (the user asked it to stop anyway).

    None: the claim was no longer ours."""
    failure = {"failure_reason": reason, "failure_message": message}
    if leases.end_held(session, Explanation, claim, _RUNNING, JobState.FAILED, now, **failure):
        explanations_ended(session, [claim.explanation_id], now)
        return JobState.FAILED
    return JobState.CANCELLED if cancel_explanation(session, claim, now) else None


def release_explanation(session: Session, claim: ExplanationClaim, now: datetime) -> JobState | None:
    """running → queued after transient trouble, so another attempt may claim it (this one counts);
    cancelling → cancelled. None: the claim was no longer ours."""
    if leases.end_held(session, Explanation, claim, _RUNNING, JobState.QUEUED, now):
        return JobState.QUEUED
    return JobState.CANCELLED if cancel_explanation(session, claim, now) else None


def cancel_explanation(session: Session, claim: ExplanationClaim, now: datetime) -> bool:
    """cancelling → cancelled: the worker stopped as asked. False: not ours, or not being cancelled."""
    if not leases.end_held(session, Explanation, claim, _CANCELLING, JobState.CANCELLED, now):
        return False
    explanations_ended(session, [claim.explanation_id], now)
    return True


def request_explanation_cancel(session: Session, explanation: Explanation, now: datetime) -> None:
    """Queued → cancelled at once; running → cancelling (its worker confirms); otherwise unchanged."""
    if leases.request_cancel(session, Explanation, explanation.id, now) == JobState.CANCELLED:
        explanations_ended(session, [explanation.id], now)
