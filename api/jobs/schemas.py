"""Training jobs at the HTTP boundary: the submission (TrainConfig's fields) and the job resource."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import fields
from datetime import datetime
from typing import TYPE_CHECKING, Any, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.json_schema import JsonDict, JsonValue

from api.http.pages import PageLinks
from batchcam.spec.training import TrainConfig, option_bounds, option_choices
from persistence.states import TERMINAL_STATES, FailureReason, JobState

# TrainConfig fields that belong to the worker's execution environment, never to the client.
EXECUTION_ONLY_FIELDS = frozenset(spec.name for spec in fields(TrainConfig) if not spec.metadata["api"])
TERMINAL_STATE_NAMES = sorted(state.value for state in TERMINAL_STATES)
# Caps of the HTTP boundary on top of TrainConfig's own checks.
FIELD_CONSTRAINTS: dict[str, dict[str, Any]] = {"dataset": {"min_length": 1, "max_length": 200}}


def schema_extension(name: str, values: Iterable[str]) -> JsonDict:
    listed: list[JsonValue] = list(values)
    return {name: listed}


class _SubmissionBase(BaseModel):
    # Strict: an integer field takes JSON integers only (not "5", 5.0 or true), as the schema says.
    model_config = ConfigDict(extra="forbid", strict=True)


def _submission_fields() -> dict[str, Any]:
    """TrainConfig's client-facing fields with its defaults and help texts (batchcam.spec.training).

    Choices are typed ``str`` and documented as an ``enum``, numbers' bounds as ``minimum`` and
    ``maximum``, but TrainConfig checks both, so a wrong value reads exactly as it does on the
    command line.
    """
    hints = get_type_hints(TrainConfig)
    submission: dict[str, Any] = {}
    for spec in fields(TrainConfig):
        if spec.name in EXECUTION_ONLY_FIELDS:
            continue
        choices, bounds = option_choices(spec.name), option_bounds(spec.name)
        extra: JsonDict = schema_extension("enum", choices) if choices is not None else {}
        if bounds is not None:
            extra |= {"minimum": bounds.low, "maximum": bounds.high}
        kind = str if choices is not None else hints[spec.name]
        field = Field(
            spec.default,
            description=spec.metadata["help"],
            json_schema_extra=extra or None,
            **FIELD_CONSTRAINTS.get(spec.name, {}),
        )
        submission[spec.name] = (kind, field)
    return submission


if TYPE_CHECKING:
    JobSubmission = _SubmissionBase
else:
    JobSubmission = create_model(
        "JobSubmission",
        __base__=_SubmissionBase,
        __doc__="A training job's spec: ``batchcam train``'s options, less the worker's execution settings.",
        __module__=__name__,
        **_submission_fields(),
    )


class JobProgress(BaseModel):
    phase: str | None = Field(None, description="train or evaluate, while running.")
    epoch: int | None = Field(None, description="1-based: the epoch being worked on (1 … epochs).")
    epochs: int | None = None
    step: int | None = Field(None, description="Optimisation steps done over the whole run.")
    total_steps: int | None = None
    fraction: float | None = Field(None, description="Share of the run done, 0–1.")
    elapsed_seconds: float | None = None
    eta_seconds: float | None = Field(None, description="Remaining seconds at the pace so far.")
    loss: float | None = None


class JobFailure(BaseModel):
    reason: FailureReason
    message: str | None = None


class JobLinks(BaseModel):
    job: str
    events: str
    metrics: str
    cancel: str
    model: str | None = None


class JobResource(BaseModel):
    id: uuid.UUID
    state: JobState = Field(
        description=(
            "queued → running → succeeded | failed | cancelled, with cancelling between a cancel request "
            f"and the worker's confirmation. Terminal states: {', '.join(TERMINAL_STATE_NAMES)}."
        ),
        json_schema_extra=schema_extension("x-terminal-states", TERMINAL_STATE_NAMES),
    )
    terminal: bool = Field(description=f"True in a terminal state ({', '.join(TERMINAL_STATE_NAMES)}).")
    phase: str | None
    progress: JobProgress
    latest_metrics: dict[str, Any] | None = Field(description="The last finished epoch's metrics.")
    failure: JobFailure | None
    attempt: int = Field(description="Attempts started so far (a lost worker's job is retried).")
    max_attempts: int
    cancel_requested: bool
    model_id: uuid.UUID | None = Field(description="The model a succeeded job produced.")
    spec: JobSubmission
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    links: JobLinks


class JobPage(BaseModel):
    """Newest first."""

    items: list[JobResource]
    next_cursor: str | None
    links: PageLinks


class EpochRecord(BaseModel):
    epoch: int = Field(description="1-based: the number of completed epochs.")
    recorded_at: datetime
    metrics: dict[str, Any]


class JobMetricsHistory(BaseModel):
    job_id: uuid.UUID
    epochs: list[EpochRecord]
