"""Training jobs at the HTTP boundary: the submission (TrainConfig's fields) and the job resource."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import fields
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import JsonDict, JsonValue

from api.http.pages import PageLinks
from batchcam.cam.methods import CAM_METHODS
from batchcam.data.registry import BUILTIN_DATASETS
from batchcam.losses import MODES
from batchcam.metrics import METRICS
from batchcam.models.registry import MODEL_NAMES
from batchcam.prototypes import PROTOTYPE_MASKS
from batchcam.training.config import OPTIMIZERS, TrainConfig
from persistence.states import TERMINAL_STATES, FailureReason, JobState

# TrainConfig fields that belong to the worker's execution environment, never to the client.
EXECUTION_ONLY_FIELDS = frozenset({"device", "num_workers", "initial_weights"})
TRAIN_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(TrainConfig)}
TERMINAL_STATE_NAMES = sorted(state.value for state in TERMINAL_STATES)


def _default(name: str, description: str, choices: Iterable[str] | None = None) -> Any:
    """A field defaulting to TrainConfig's default. Choices are documented, but TrainConfig checks
    them, so a wrong value reads exactly as it does on the command line."""
    extra = schema_extension("enum", choices) if choices is not None else None
    return Field(TRAIN_DEFAULTS[name], description=description, json_schema_extra=extra)


def schema_extension(name: str, values: Iterable[str]) -> JsonDict:
    listed: list[JsonValue] = list(values)
    return {name: listed}


class JobSubmission(BaseModel):
    """A training job's spec: ``batchcam train``'s options, less the worker's execution settings."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(
        TRAIN_DEFAULTS["dataset"],
        min_length=1,
        max_length=200,
        description=f"A built-in dataset ({', '.join(BUILTIN_DATASETS)}) or the id of an upload.",
    )
    model: str = _default("model", "Architecture.", MODEL_NAMES)
    mode: str = _default("mode", "Which explanation loss joins cross-entropy.", MODES)
    metric: str = _default("metric", "Distance between CAMs and prototypes (ssim means 1 − SSIM).", METRICS)
    lambda_prototype: float = _default("lambda_prototype", "Weight of the per-image prototype loss, 0–1000.")
    lambda_batchcam: float = _default("lambda_batchcam", "Weight of the per-batch Batch-CAM loss, 0–1000.")
    prototype_mask: str = _default(
        "prototype_mask",
        "decoy: leave each image's decoy patch out of the class prototypes (decoy-… datasets only).",
        PROTOTYPE_MASKS,
    )
    cam_method: str = _default("cam_method", "CAM method inside the loss.", CAM_METHODS)
    cam_gradients: str = _default(
        "cam_gradients",
        "exact: back-propagate through the CAM's channel weights; constant_weights: treat them as constants.",
        ("exact", "constant_weights"),
    )
    target_layer: str | None = _default(
        "target_layer",
        "CAM layer; null = the model's default. A layer followed by BatchNorm (resnet18's layer3, say) "
        "makes the loss's CAMs mix the batch's images in training, not per-image Grad-CAM: the job is "
        "accepted with a `warning` event that says so.",
    )
    epochs: int = _default("epochs", "Training epochs, 1–1000.")
    batch_size: int = _default("batch_size", "Images per step, 1–8192.")
    optimizer: str = _default("optimizer", "Optimiser.", OPTIMIZERS)
    lr: float = _default("lr", "Learning rate, 1e-8–10.")
    weight_decay: float = _default("weight_decay", "Weight decay, 0–1.")
    seed: int = _default("seed", "Seed for data splits, initial weights and shuffling, 0–2³¹−1.")
    image_size: int | None = _default("image_size", "Resize images to this side, 8–1024; null = as stored.")
    precision: str = _default("precision", "Numeric precision on the worker.", ("auto", "fp32", "bf16"))
    max_runtime_s: float | None = _default("max_runtime_s", "Fail with reason timeout after this long.")
    checkpoint_every_steps: int | None = _default(
        "checkpoint_every_steps", "Extra checkpoints every N steps (one is always written per epoch)."
    )
    bn_recalibration_batches: int = _default(
        "bn_recalibration_batches",
        "Training batches that recompute BatchNorm statistics for each epoch's final weights, 0–100000 "
        "(0: keep the running averages, which can lag weights that move fast).",
    )
    faithfulness_images: int = _default(
        "faithfulness_images",
        "Test images (a fixed, recorded subset) on which the model report measures how faithful the "
        "CAMs are: deletion, insertion, ROAD, localisation, sanity checks; 0–4096, 0 = none.",
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
