"""The one settings object of the service, read from the environment.

Defaults run on a laptop with nothing but Python (SQLite, a local folder as object store, a broker
that needs no server). Pointing ``DATABASE_URL``, ``BROKER_URL`` and ``OBJECT_STORE_URL`` (plus
``S3_ENDPOINT_URL`` for MinIO) at real services makes the same code the production deployment.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BeforeValidator, Field, SecretStr
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

if TYPE_CHECKING:
    from batchcam.spec.limits import UploadLimits

DEFAULT_STATE_DIR = Path(".batchcam")
DEFAULT_EXPLAIN_LEASE_SECONDS = 120.0
TrainChildStart = Literal["forkserver", "spawn"]  # worker.training.child_start


def _listed(value: Any) -> Any:
    """A list from the environment: JSON (``["a", "b"]``) or comma-separated (``a,b``)."""
    if not isinstance(value, str):
        return value
    if value.strip().startswith("["):
        return json.loads(value)
    return [item.strip() for item in value.split(",") if item.strip()]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    state_dir: Path = Field(
        DEFAULT_STATE_DIR, alias="BATCHCAM_STATE_DIR", description="Embedded default's files."
    )
    # URLs may hold passwords: never in a repr (a logged settings object, or a dataclass holding one).
    database_url: str = Field(
        "", alias="DATABASE_URL", repr=False, description="SQLAlchemy URL; empty = SQLite in state_dir."
    )
    broker_url: str = Field(
        "", alias="BROKER_URL", repr=False, description="Celery broker; empty = a folder in state_dir."
    )
    object_store_url: str = Field(
        "",
        alias="OBJECT_STORE_URL",
        description="s3://bucket[/prefix] or file:///path; empty = state_dir/objects.",
    )
    s3_endpoint_url: str | None = Field(
        None, alias="S3_ENDPOINT_URL", description="MinIO/SeaweedFS endpoint."
    )
    s3_region: str = Field("us-east-1", alias="S3_REGION")
    s3_access_key_id: SecretStr | None = Field(None, alias="S3_ACCESS_KEY_ID")
    s3_secret_access_key: SecretStr | None = Field(None, alias="S3_SECRET_ACCESS_KEY")

    lease_seconds: float = Field(
        60.0, alias="BATCHCAM_LEASE_SECONDS", description="A worker's hold on a job."
    )
    heartbeat_seconds: float = Field(10.0, alias="BATCHCAM_HEARTBEAT_SECONDS")
    end_write_patience_seconds: float = Field(
        600.0,
        alias="BATCHCAM_END_WRITE_PATIENCE_SECONDS",
        ge=0,
        description="How long a finished training attempt keeps trying to record its end through a "
        "database outage (at least a lease); its model is not trained again if the database is back by then.",
    )
    max_attempts: int = Field(
        3, alias="BATCHCAM_MAX_ATTEMPTS", description="Lost workers before worker_lost."
    )
    retry_delay_seconds: float = Field(
        10.0,
        alias="BATCHCAM_RETRY_DELAY_SECONDS",
        ge=0,
        description="Wait before a job's second attempt after a transient failure; doubles per attempt.",
    )
    explain_lease_seconds: float = Field(
        DEFAULT_EXPLAIN_LEASE_SECONDS,
        alias="BATCHCAM_EXPLAIN_LEASE_SECONDS",
        description="A worker's hold on an explanation; renewed between batches.",
    )
    train_child_start: TrainChildStart = Field(
        "forkserver",
        alias="BATCHCAM_TRAIN_CHILD_START",
        description="How a job's training process starts: forked from a server that imported torch "
        "once (fast), or a fresh interpreter per job.",
    )
    explain_batch_max_images: int = Field(
        256,
        alias="BATCHCAM_EXPLAIN_BATCH_MAX_IMAGES",
        ge=1,
        description="Images one explain batch may take from queued requests of a model (dynamic batching); "
        "a larger request runs alone.",
    )
    explain_batch_max_requests: int = Field(
        64,
        alias="BATCHCAM_EXPLAIN_BATCH_MAX_REQUESTS",
        ge=1,
        description="Requests one explain batch may take; 1 turns batching off.",
    )
    explain_torch_threads: int = Field(
        1,
        alias="BATCHCAM_EXPLAIN_TORCH_THREADS",
        ge=1,
        description="torch's intra-op threads for an explain worker's batches under 128 images (larger "
        "ones keep torch's choice). One by default: between small batches the worker waits on the "
        "database and the store, and idle OpenMP threads spin on a core the API and Postgres need "
        "(docs/BENCHMARKS.md, issue 20); run more worker processes to use more cores.",
    )
    max_waiting_requests: int = Field(
        200,
        alias="BATCHCAM_MAX_WAITING_REQUESTS",
        ge=0,
        description="Explain submissions one API process holds open with ?wait; more answer 202 at once.",
    )
    max_request_headers: int = Field(
        100,
        alias="BATCHCAM_MAX_REQUEST_HEADERS",
        ge=1,
        description="Header fields one request may carry; more answer 431 before the key is checked.",
    )
    max_request_header_bytes: int = Field(
        65536,
        alias="BATCHCAM_MAX_REQUEST_HEADER_BYTES",
        ge=1024,
        description="Bytes of request line and headers the server buffers (h11) and the API accepts (431).",
    )
    stream_key_recheck_seconds: float = Field(
        5.0,
        alias="BATCHCAM_STREAM_KEY_RECHECK_SECONDS",
        gt=0,
        description="How often an open event stream checks that its API key is still valid.",
    )
    key_cache_seconds: float = Field(
        2.0,
        alias="BATCHCAM_KEY_CACHE_SECONDS",
        ge=0,
        description=(
            "How long an API process remembers a verified API key (0: never). Only while change "
            "notifications are live: a revocation is heard and forgotten within milliseconds."
        ),
    )
    reaper_interval_seconds: float = Field(30.0, alias="BATCHCAM_REAPER_INTERVAL_SECONDS")
    requeue_stale_after_seconds: float = Field(
        300.0, alias="BATCHCAM_REQUEUE_STALE_AFTER_SECONDS", description="Re-send queued jobs nobody claimed."
    )
    worker_metrics_port: int | None = Field(
        None,
        alias="BATCHCAM_WORKER_METRICS_PORT",
        ge=1,
        le=65535,
        description="Serve a worker's Prometheus metrics on this port; unset = not served.",
    )
    worker_metrics_address: str = Field(
        "0.0.0.0", alias="BATCHCAM_WORKER_METRICS_ADDRESS", description="Where that port listens."
    )

    # Webhooks (docs/ARCHITECTURE.md §7.5): how receivers are reached, and which ones may be.
    webhook_connect_timeout_seconds: float = Field(
        3.0, alias="BATCHCAM_WEBHOOK_CONNECT_TIMEOUT_SECONDS", gt=0, description="Reaching a receiver."
    )
    webhook_read_timeout_seconds: float = Field(
        10.0, alias="BATCHCAM_WEBHOOK_READ_TIMEOUT_SECONDS", gt=0, description="A receiver's answer."
    )
    webhook_retry_schedule_seconds: Annotated[list[float], NoDecode, BeforeValidator(_listed)] = Field(
        [5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0],
        alias="BATCHCAM_WEBHOOK_RETRY_SCHEDULE_SECONDS",
        min_length=1,
        description="The wait before each retry (comma-separated); once spent, a delivery is failed.",
    )
    webhook_allowed_networks: Annotated[list[str], NoDecode, BeforeValidator(_listed)] = Field(
        [],
        alias="BATCHCAM_WEBHOOK_ALLOWED_NETWORKS",
        description="CIDRs or host names a receiver may be at although private, loopback or reserved.",
    )
    webhook_allow_http: bool = Field(
        False, alias="BATCHCAM_WEBHOOK_ALLOW_HTTP", description="Accept http:// receivers (not only https)."
    )
    webhook_max_response_bytes: int = Field(
        1024,
        alias="BATCHCAM_WEBHOOK_MAX_RESPONSE_BYTES",
        ge=0,
        le=1024,
        description="How much of a receiver's answer is kept with an attempt.",
    )
    webhook_sweep_interval_seconds: float = Field(
        10.0, alias="BATCHCAM_WEBHOOK_SWEEP_INTERVAL_SECONDS", gt=0, description="Beat's look for due ones."
    )
    webhook_secret_grace_seconds: float = Field(
        86400.0,
        alias="BATCHCAM_WEBHOOK_SECRET_GRACE_SECONDS",
        ge=0,
        description="After a rotation, deliveries are signed with the old secret too for this long.",
    )

    # The API validates uploads with these, and workers load them again with the same: set both alike.
    # Unset: the library's default (batchcam.spec.limits.UploadLimits).
    max_upload_bytes: int | None = Field(
        None, alias="BATCHCAM_MAX_UPLOAD_BYTES", gt=0, description="One upload (200 MiB)."
    )
    max_upload_images: int | None = Field(
        None, alias="BATCHCAM_MAX_UPLOAD_IMAGES", gt=0, description="One dataset (200,000)."
    )
    max_upload_total_pixels: int | None = Field(
        None,
        alias="BATCHCAM_MAX_UPLOAD_TOTAL_PIXELS",
        gt=0,
        description="Height × width summed over one dataset's images: bounds its decoded memory (256 Mi).",
    )
    max_upload_uncompressed_bytes: int | None = Field(
        None,
        alias="BATCHCAM_MAX_UPLOAD_UNCOMPRESSED_BYTES",
        gt=0,
        description="What a zip or .npz upload declares it expands to (1 GiB).",
    )

    def upload_limits(self) -> UploadLimits:
        """The library's upload caps, with the sizes this deployment sets."""
        from batchcam.spec.limits import UploadLimits  # here: reading settings must not load torch

        chosen = {
            "max_bytes": self.max_upload_bytes,
            "max_images": self.max_upload_images,
            "max_total_pixels": self.max_upload_total_pixels,
            "max_uncompressed_bytes": self.max_upload_uncompressed_bytes,
        }
        return UploadLimits(**{name: value for name, value in chosen.items() if value is not None})

    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.embedded_database_path()}"

    def embedded_database_path(self) -> Path:
        """The embedded default's SQLite file (used when ``DATABASE_URL`` is not set)."""
        return (self.state_dir / "batchcam.db").resolve()

    def resolved_broker_url(self) -> str:
        """Redis (or any Celery broker) when set; otherwise kombu's filesystem transport."""
        return self.broker_url or "filesystem://"

    def broker_folder(self) -> Path:
        return (self.state_dir / "broker").resolve()

    def resolved_object_store_url(self) -> str:
        return self.object_store_url or (self.state_dir / "objects").resolve().as_uri()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings (read once; tests build their own ``Settings`` instead)."""
    return Settings()
