"""The lease engine: every row delivered through its table, jobs and explanations (ARCHITECTURE.md §6).

The row, not the broker message, is the unit of delivery. A worker claims a queued row with a lease
(``claim``), renews it while it works (``renew``), and ends the attempt it holds (``end_held``); the
sweep takes back leases that ran out (``reap_expired``); a user's cancel ends a queued row at
once and asks a running one to stop (``request_cancel``). Every transition is one conditional UPDATE,
so two workers, a duplicate message or a sweep racing a slow renewal can never both win, and an
attempt that lost its claim can never overwrite another attempt's end. Every transition sets
``updated_at``; every end clears the lease. Times come from the caller's clock (hosts run NTP); leases
are long (minutes) compared with any skew.

What differs between the tables is passed in: the table, the extra values a kind writes with a
transition (a job's progress, phase and cancel time), and, when leases run out, where the attempt
limit comes from and how the failure reads. ``persistence.jobs.leases`` and
``persistence.explanations.leases`` are the two kinds' vocabularies on top of this.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from typing import Any, Protocol

from sqlalchemy import Row, Update, bindparam, literal, or_, select, update
from sqlalchemy.orm import QueryableAttribute, Session

from persistence.models import Explanation, Job, table_of
from persistence.states import LEASED_STATES, TERMINAL_STATES, FailureReason, JobState

LeasedTable = type[Job] | type[Explanation]


class Holder(Protocol):
    """What identifies the attempt a worker holds: the row, the worker, the attempt's number."""

    @property
    def row_id(self) -> uuid.UUID: ...

    @property
    def owner(self) -> str: ...

    @property
    def attempt(self) -> int: ...


def claim(
    session: Session,
    table: LeasedTable,
    row_id: uuid.UUID,
    owner: str,
    lease_for: timedelta,
    now: datetime,
    *returning: QueryableAttribute[Any],
    **values: Any,
) -> Row[Any] | None:
    """queued → running: a new attempt under a lease for ``lease_for``, also writing ``values``.

    The row's new ``attempt`` then ``returning``; ``None``: running elsewhere, ended, or absent."""
    statement = _claim_statement(table, _keys(returning), tuple(values), many=False)
    return session.execute(statement, _claim_params(owner, lease_for, now, values, row=row_id)).one_or_none()


def claim_many(
    session: Session,
    table: LeasedTable,
    row_ids: Collection[uuid.UUID],
    owner: str,
    lease_for: timedelta,
    now: datetime,
    *returning: QueryableAttribute[Any],
) -> list[Row[Any]]:
    """``claim`` for several rows in one statement: (id, attempt, *returning) of those still queued."""
    if not row_ids:
        return []
    statement = _claim_statement(table, _keys(returning), (), many=True)
    params = _claim_params(owner, lease_for, now, {}, rows=list(row_ids))
    return list(session.execute(statement, params).all())


@cache
def _claim_statement(
    table: LeasedTable, returning: tuple[str, ...], written: tuple[str, ...], many: bool
) -> Update:
    """The claim's UPDATE, built once per shape and bound per call (ARCHITECTURE §7.3: hot path)."""
    columns = table_of(table).c
    chosen = columns.id.in_(bindparam("rows", expanding=True)) if many else columns.id == bindparam("row")
    return (
        update(table_of(table))
        .where(chosen, columns.state == JobState.QUEUED)
        .values(
            state=JobState.RUNNING,
            attempt=columns.attempt + 1,
            lease_owner=bindparam("owner", type_=columns.lease_owner.type),
            lease_expires_at=bindparam("expires", type_=columns.lease_expires_at.type),
            started_at=bindparam("now", type_=columns.started_at.type),
            updated_at=bindparam("now", type_=columns.updated_at.type),
            **{key: bindparam(f"value_{key}", type_=columns[key].type) for key in written},
        )
        .returning(*([columns.id] if many else []), columns.attempt, *(columns[key] for key in returning))
    )


def _claim_params(
    owner: str, lease_for: timedelta, now: datetime, values: Mapping[str, Any], **rows: Any
) -> dict[str, Any]:
    written = {f"value_{key}": value for key, value in values.items()}
    return {"owner": owner, "expires": now + lease_for, "now": now, **written, **rows}


def _keys(columns: tuple[QueryableAttribute[Any], ...]) -> tuple[str, ...]:
    return tuple(column.key for column in columns)


def held(table: LeasedTable, holder: Holder, states: Collection[JobState] = LEASED_STATES) -> Any:
    """The row ``holder`` still holds, in one of ``states``."""
    return (
        (table.id == holder.row_id)
        & (table.lease_owner == holder.owner)
        & (table.attempt == holder.attempt)
        & table.state.in_(states)
    )


def renew(
    session: Session, table: LeasedTable, holder: Holder, lease_for: timedelta, now: datetime, **values: Any
) -> JobState | None:
    """Extend the lease (writing ``values``) if it is still ours; the row's state (``cancelling``: the
    user asked to stop). ``None``: the lease was taken back, or the row ended."""
    state = session.execute(
        update(table)
        .where(held(table, holder))
        .values(lease_expires_at=now + lease_for, updated_at=now, **values)
        .returning(table.state)
    ).scalar_one_or_none()
    return None if state is None else JobState(state)


def renew_many(
    session: Session, table: LeasedTable, holders: Collection[Holder], lease_for: timedelta, now: datetime
) -> dict[uuid.UUID, JobState]:
    """``renew`` for several held rows in one statement: row id → state for those still ours."""
    if not holders:
        return {}
    rows = session.execute(
        update(table)
        .where(or_(*(held(table, holder) for holder in holders)))
        .values(lease_expires_at=now + lease_for, updated_at=now)
        .returning(table.id, table.state)
    ).all()
    return {row_id: JobState(state) for row_id, state in rows}


def update_held(
    session: Session,
    table: LeasedTable,
    holder: Holder,
    states: Collection[JobState] = LEASED_STATES,
    **values: Any,
) -> bool:
    """Write ``values`` to the row if ``holder`` still holds it in one of ``states``. False: not ours."""
    updated = session.execute(
        update(table).where(held(table, holder, states)).values(**values).returning(table.id)
    ).scalar_one_or_none()
    return updated is not None


def holds(session: Session, table: LeasedTable, holder: Holder) -> bool:
    """Whether ``holder`` still holds its row (which stays locked until the transaction ends)."""
    return session.scalar(select(table.id).where(held(table, holder)).with_for_update()) is not None


def end_held(
    session: Session,
    table: LeasedTable,
    holder: Holder,
    from_states: Collection[JobState],
    state: JobState,
    now: datetime,
    **values: Any,
) -> bool:
    """The held row, in one of ``from_states``, moves to ``state`` and its lease ends (a terminal state
    also sets ``finished_at``). False: it is no longer ours, or in another state."""
    if state in TERMINAL_STATES:
        values["finished_at"] = now
    ended = {"state": state, "lease_owner": None, "lease_expires_at": None, "updated_at": now}
    return update_held(session, table, holder, from_states, **ended, **values)


def request_cancel(
    session: Session, table: LeasedTable, row_id: uuid.UUID, now: datetime, **values: Any
) -> JobState | None:
    """Queued → cancelled at once; running → cancelling (its worker confirms); otherwise unchanged.

    The state written (with ``values``), or ``None`` when nothing changed."""
    ended = session.execute(
        update(table)
        .where(table.id == row_id, table.state == JobState.QUEUED)
        .values(state=JobState.CANCELLED, finished_at=now, updated_at=now, **values)
        .returning(table.id)
    ).scalar_one_or_none()
    if ended is not None:
        return JobState.CANCELLED
    moved = session.execute(
        update(table)
        .where(table.id == row_id, table.state == JobState.RUNNING)
        .values(state=JobState.CANCELLING, updated_at=now, **values)
        .returning(table.id)
    ).scalar_one_or_none()
    return None if moved is None else JobState.CANCELLING


@dataclass(frozen=True)
class TakenBack:
    """An attempt whose lease ran out, taken back from its (lost) worker."""

    row_id: uuid.UUID
    tenant_id: uuid.UUID
    attempt: int
    lost_owner: str | None
    state: JobState  # queued (to run again), failed (attempts exhausted) or cancelled (was cancelling)


@dataclass(frozen=True)
class Reaped:
    """What one sweep took back, by the state each row was given."""

    requeued: list[TakenBack]  # send these again (after commit)
    failed: list[TakenBack]  # with ``worker_lost``
    cancelled: list[TakenBack]  # were cancelling when their worker vanished

    def every(self) -> list[TakenBack]:
        return self.requeued + self.failed + self.cancelled


@dataclass(frozen=True)
class ExpiryRules:
    """How a kind's expired leases end. ``max_attempts``: a number, or the row's own column."""

    max_attempts: int | QueryableAttribute[int]
    lost_message: Callable[[int, int], str]  # (attempt, max_attempts) → the failure's message
    requeue_values: Mapping[str, Any] = field(default_factory=dict)  # what a re-queued row also forgets


def reap_expired(session: Session, table: LeasedTable, rules: ExpiryRules, now: datetime) -> Reaped:
    """Rows whose worker stopped renewing: back to ``queued``, or ``failed`` with ``worker_lost`` once
    their attempts are spent; a row that was ``cancelling`` is ``cancelled`` (nothing runs it anymore).

    Each row is written by a conditional UPDATE on what was read, so a row that changed in between (its
    worker finished or renewed, a cancel came) is left for the next sweep. Postgres also locks the rows
    read (a second sweep at once skips them); embedded SQLite cannot, and would otherwise overwrite a
    just-committed end.
    """
    limit = literal(rules.max_attempts) if isinstance(rules.max_attempts, int) else rules.max_attempts
    expired = session.execute(
        select(table.id, table.tenant_id, table.state, table.attempt, table.lease_owner, limit)
        .where(table.state.in_(LEASED_STATES), table.lease_expires_at < now)
        .with_for_update(skip_locked=True)
    ).all()
    reaped = Reaped(requeued=[], failed=[], cancelled=[])
    into = {
        JobState.QUEUED: reaped.requeued,
        JobState.FAILED: reaped.failed,
        JobState.CANCELLED: reaped.cancelled,
    }
    for row_id, tenant_id, state, attempt, lost_owner, max_attempts in expired:
        values = _expiry_values(rules, JobState(state), attempt, max_attempts, now)
        written = session.execute(
            update(table)
            .where(
                table.id == row_id,
                table.state == state,
                table.attempt == attempt,
                table.lease_owner == lost_owner,
                table.lease_expires_at < now,
            )
            .values(**values, lease_owner=None, lease_expires_at=None, updated_at=now)
            .returning(table.id)
        ).scalar_one_or_none()
        if written is not None:
            taken = TakenBack(row_id, tenant_id, attempt, lost_owner, values["state"])
            into[taken.state].append(taken)
    return reaped


def _expiry_values(
    rules: ExpiryRules, state: JobState, attempt: int, max_attempts: int, now: datetime
) -> dict[str, Any]:
    if state == JobState.CANCELLING:
        return {"state": JobState.CANCELLED, "finished_at": now}
    if attempt >= max_attempts:
        return {
            "state": JobState.FAILED,
            "finished_at": now,
            "failure_reason": FailureReason.WORKER_LOST,
            "failure_message": rules.lost_message(attempt, max_attempts),
        }
    return {"state": JobState.QUEUED, **rules.requeue_values}
