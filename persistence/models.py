"""The service's tables. The schema changes only through Alembic migrations (``migrations/``)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# JSONB on Postgres (indexable, compact), plain JSON on SQLite for the embedded default.
Json = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """Timestamps are aware UTC datetimes on every backend.

    Postgres (timestamptz) keeps the zone; SQLite, the embedded default, stores none and hands back
    naive values, which would make every comparison with ``utcnow()`` a TypeError.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None or value.tzinfo is not None:
            return value
        return value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: Json,
        list[Any]: Json,
        datetime: UtcDateTime(),
    }


def table_of(mapped: type[Base]) -> Table:
    """A mapped class's Core table, for statements on the hot path (ARCHITECTURE §7.3)."""
    return cast(Table, mapped.__table__)


class LeasedRow:
    """The columns of a row delivered through a lease (docs/ARCHITECTURE.md §6.3), shared by ``Job``
    and ``Explanation`` so that ``persistence.leases`` moves both the same way. Each table also has an
    index on ``(state, lease_expires_at)`` for the sweep (``lease_index``)."""

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    state: Mapped[str] = mapped_column(String(16), default="queued")  # persistence.states.JobState
    attempt: Mapped[int] = mapped_column(Integer, default=0)  # incremented by every claim
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None]
    failure_reason: Mapped[str | None] = mapped_column(String(64))
    failure_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]  # the latest attempt's claim
    finished_at: Mapped[datetime | None]
    # Every transition sets it; for a queued row it says when a wake-up message was last due.
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


def serial_id() -> Any:
    """An autoincrementing 64-bit key (SQLite autoincrements only an INTEGER key)."""
    return mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)


def lease_index(table: str) -> Index:
    """The sweep's look for expired leases."""
    return Index(f"ix_{table}_state_lease", "state", "lease_expires_at")


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(Base):
    """A bearer key: only its SHA-256 is stored; ``prefix`` (public) finds the row fast."""

    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]


class DashboardSession(Base):
    """A signed-in dashboard browser (docs/ARCHITECTURE.md §12): the cookie holds a random token whose
    SHA-256 is stored here, so a leaked database row cannot be replayed as a cookie; signing out
    deletes the row, and revoking the key ends every session made with it."""

    __tablename__ = "dashboard_sessions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    api_key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))  # sent back in every state-changing form
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]


class Dataset(Base):
    """An uploaded dataset: immutable, content-hashed, validated before this row exists."""

    __tablename__ = "datasets"
    __table_args__ = (UniqueConstraint("tenant_id", "sha256", name="uq_datasets_tenant_sha256"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    format: Mapped[str] = mapped_column(String(16))  # "npz" | "zip"
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    object_key: Mapped[str] = mapped_column(String(512))
    summary: Mapped[dict[str, Any]]  # classes, image size, channels, split sizes
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Job(LeasedRow, Base):
    """A training job. The row, not the broker message, is the unit of delivery (docs/ARCHITECTURE.md §6)."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_tenant_created", "tenant_id", "created_at", "id"),
        lease_index("jobs"),
        # The sweep's look for ended jobs whose checkpoints may be left: only rows naming one.
        Index(
            "ix_jobs_checkpoint_held",
            "state",
            postgresql_where=text("checkpoint_key IS NOT NULL"),
            sqlite_where=text("checkpoint_key IS NOT NULL"),
        ),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    spec: Mapped[dict[str, Any]]
    phase: Mapped[str | None] = mapped_column(String(32))
    progress: Mapped[dict[str, Any]] = mapped_column(default=dict)
    latest_metrics: Mapped[dict[str, Any] | None]
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    cancel_requested_at: Mapped[datetime | None]
    checkpoint_key: Mapped[str | None] = mapped_column(String(512))
    model_id: Mapped[uuid.UUID | None]


class JobEvent(Base):
    """Append-only history of a job: state changes, epochs, checkpoints, failures."""

    __tablename__ = "job_events"
    __table_args__ = (Index("ix_job_events_job_id_id", "job_id", "id"),)

    id: Mapped[int] = serial_id()
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    type: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


class JobEpoch(Base):
    """Per-epoch metrics; keyed by epoch so a resumed attempt overwrites rather than duplicates."""

    __tablename__ = "job_epochs"

    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    epoch: Mapped[int] = mapped_column(Integer, primary_key=True)
    metrics: Mapped[dict[str, Any]]
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class Model(Base):
    """What a succeeded job produced; every artifact lives in the object store under its keys."""

    __tablename__ = "models"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), unique=True)
    spec: Mapped[dict[str, Any]]  # batchcam.models.ModelSpec
    summary: Mapped[dict[str, Any]]  # accuracy, CAM-prototype distances, ...
    artifacts: Mapped[dict[str, Any]]  # artifact name → object key
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Explanation(LeasedRow, Base):
    """An explanation request, delivered through its row with a lease like a job (ARCHITECTURE.md §6)."""

    __tablename__ = "explanations"
    __table_args__ = (
        Index("ix_explanations_tenant_created", "tenant_id", "created_at", "id"),
        lease_index("explanations"),
        # The batch claim's look: queued rows of one model, oldest first (persistence.explanations.batching).
        Index(
            "ix_explanations_queued_model",
            "model_id",
            "created_at",
            postgresql_where=text("state = 'queued'"),
            sqlite_where=text("state = 'queued'"),
        ),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    model_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    request: Mapped[dict[str, Any]]  # method, targets, inputs (object keys or dataset indices)
    results: Mapped[list[Any] | None]  # per image: prediction, probabilities, target, distances, keys, error
    image_count: Mapped[int | None]  # null on rows from before batching: claimed alone
    # A small request's uploaded images and maps (npz bytes) ride in its row instead of the object
    # store (persistence.explanations.objects); deferred, so reading a row does not load them.
    inline_inputs: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    inline_maps: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)


class IdempotencyRecord(Base):
    """The first response to (tenant, Idempotency-Key); ``response_status`` is null while in flight."""

    __tablename__ = "idempotency_records"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    method_path: Mapped[str] = mapped_column(String(300))
    request_hash: Mapped[str] = mapped_column(String(64))
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[dict[str, Any] | None]
    response_headers: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookEndpoint(Base):
    """A tenant's receiver of events (docs/ARCHITECTURE.md §7.5). The secret is kept as given out: it
    signs every delivery. After a rotation the previous one signs too until ``previous_secret_expires_at``."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index("ix_webhook_endpoints_tenant_created", "tenant_id", "created_at", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list[Any]]  # persistence.webhooks.events.EventType values
    description: Mapped[str | None] = mapped_column(String(500))
    secret: Mapped[str] = mapped_column(String(100))
    previous_secret: Mapped[str | None] = mapped_column(String(100))
    previous_secret_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class WebhookDelivery(Base):
    """One event for one endpoint: the outbox row, written in the transaction of the change it tells.

    ``message_id`` is the Standard Webhooks ``webhook-id``: the same on every retry and redelivery, so
    receivers can drop duplicates. A sender holds a short lease while it sends; one that died loses it.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_endpoint_created", "endpoint_id", "created_at", "id"),
        # The sender's look: due pending rows, and delivering rows whose lease ran out.
        Index("ix_webhook_deliveries_status_due", "status", "next_attempt_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    endpoint_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    message_id: Mapped[str] = mapped_column(String(64), unique=True)
    event_type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16), default="pending")  # persistence.webhooks.deliveries
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # this schedule's (redeliver restarts it)
    next_attempt_at: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_response: Mapped[str | None] = mapped_column(Text)  # at most 1 KiB of the receiver's answer
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class WebhookAttempt(Base):
    """One try at sending a delivery: what the receiver answered, or why it could not be reached."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (Index("ix_webhook_attempts_delivery_id", "delivery_id", "id"),)

    id: Mapped[int] = serial_id()
    delivery_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhook_deliveries.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    response: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int] = mapped_column(Integer)
