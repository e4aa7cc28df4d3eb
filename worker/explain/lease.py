"""Keeping an explanation's lease while its worker is alive: renewed between phases and batches.

A request of many images can take longer than one lease; renewing it between batches means only a
worker that stopped (killed, hung) loses it. Renewal is a conditional UPDATE on the held claim, so a
worker whose lease was already taken back learns it at its next renewal and stops writing. The
renewal also tells the worker when the user asked to cancel: it then stops and confirms.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from persistence import leases
from persistence.db import transaction
from persistence.explanations.leases import ExplanationClaim, heartbeat_explanation
from persistence.models import Explanation
from persistence.states import JobState

RENEW_FRACTION = 10  # renew once a tenth of the lease has passed: cheap, and far from expiry


class ExplanationLeaseLostError(Exception):
    """The claim was taken back (reaped after a stall, or ended elsewhere): stop and write nothing."""


class ExplanationCancelledError(Exception):
    """The user asked to cancel: stop, and confirm ``cancelled``."""


class LeaseKeeper:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        claim: ExplanationClaim,
        lease_for: timedelta,
        clock: Callable[[], datetime],
    ) -> None:
        self.sessions, self.claim, self.lease_for, self.clock = sessions, claim, lease_for, clock
        self.renewed_at = clock()  # the claim itself set the lease

    def renew(self) -> None:
        """Extend the lease if it is due; ``ExplanationLeaseLostError`` if it is no longer ours,
        ``ExplanationCancelledError`` if a cancel was requested."""
        now = self.clock()
        if now - self.renewed_at < self.lease_for / RENEW_FRACTION:
            return
        with transaction(self.sessions) as session:
            state = heartbeat_explanation(session, self.claim, self.lease_for, now)
        if state is None:
            raise ExplanationLeaseLostError(
                f"explanation {self.claim.explanation_id} attempt {self.claim.attempt}: lease lost"
            )
        self.renewed_at = now
        if state == JobState.CANCELLING:
            raise ExplanationCancelledError(f"explanation {self.claim.explanation_id}: cancel requested")


class BatchLeaseKeeper:
    """The leases of requests explained together, renewed in one statement when due.

    A request whose lease was taken back drops out (it writes nothing); one the user asked to cancel
    is remembered as ``cancelling``, to be confirmed instead of finished."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        claims: list[ExplanationClaim],
        lease_for: timedelta,
        clock: Callable[[], datetime],
    ) -> None:
        self.sessions, self.lease_for, self.clock = sessions, lease_for, clock
        self.states: dict[ExplanationClaim, JobState | None] = dict.fromkeys(claims, JobState.RUNNING)
        self.renewed_at = clock()

    def renew(self) -> None:
        """Renew if due; afterwards ``state`` says what each request became."""
        now = self.clock()
        if now - self.renewed_at < self.lease_for / RENEW_FRACTION:
            return
        held = [claim for claim, state in self.states.items() if state is not None]
        with transaction(self.sessions) as session:
            renewed = leases.renew_many(session, Explanation, held, self.lease_for, now)
        for claim in held:
            self.states[claim] = renewed.get(claim.explanation_id)
        self.renewed_at = now

    def state(self, claim: ExplanationClaim) -> JobState | None:
        """``running``, ``cancelling`` (stop and confirm), or None (lost: write nothing)."""
        return self.states[claim]
