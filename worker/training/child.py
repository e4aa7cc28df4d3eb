"""The training child process: runs the library's pipeline, reports through a queue.

It is started with the ``spawn`` method by the supervising task, so CUDA is initialised only here,
never in a forked Celery process; DataLoader workers fork from this process and work as usual.
"""

from __future__ import annotations

import logging
import mimetypes
import os
import time
import traceback
import uuid
from collections.abc import Iterator
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import torch

from batchcam.data.registry import load_upload
from batchcam.errors import BatchCamError, DatasetUnavailableError, TrainingDivergedError
from batchcam.pipeline import train_and_report
from batchcam.training import Callback, EpochMetrics, Progress, TrainConfig, TrainingState
from persistence.objects import (
    ObjectStore,
    ObjectStoreError,
    ObjectStoreUnavailableError,
    object_key,
    open_object_store,
)
from persistence.states import FailureReason
from worker.training.messages import (
    CheckpointUploaded,
    ChildMessage,
    EpochFinished,
    ProgressUpdate,
    TrainingFailed,
    TrainingRequest,
    TrainingStopped,
    TrainingSucceeded,
)

log = logging.getLogger(__name__)
PROGRESS_EVERY_SECONDS = 1.0
CHECKPOINT_FILE = "checkpoint.pt"


class Reporter(Callback):
    """Sends progress (throttled), epochs and uploaded checkpoints; stops when asked or orphaned."""

    def __init__(
        self, request: TrainingRequest, store: ObjectStore, queue: Queue[ChildMessage], stop: Event
    ) -> None:
        self.request, self.store, self.queue, self.stop = request, store, queue, stop
        self.parent = os.getppid()
        self.last_sent = 0.0
        self.last_phase = ""

    def on_progress(self, progress: Progress) -> None:
        now = time.monotonic()
        if progress.phase == self.last_phase and now - self.last_sent < PROGRESS_EVERY_SECONDS:
            return
        self.last_sent, self.last_phase = now, progress.phase
        self.queue.put(ProgressUpdate(progress_payload(progress)))

    def on_epoch_end(self, metrics: EpochMetrics, progress: Progress) -> None:
        self.queue.put(EpochFinished(epoch=metrics.epoch, metrics=metrics.to_dict()))
        self.queue.put(ProgressUpdate(progress_payload(progress)))

    def on_checkpoint(self, state: TrainingState) -> None:
        # Write, upload, and only then tell the supervisor, which records it in the database.
        path = self.request.work_dir / CHECKPOINT_FILE
        state.save(path)
        name = f"attempt{self.request.attempt}-step{state.global_step}.pt"
        key = object_key(str(self.request.tenant_id), "checkpoints", str(self.request.job_id), name)
        self.store.put_file(key, path, content_type="application/octet-stream")
        self.queue.put(CheckpointUploaded(key=key, epoch=state.epoch, step=state.global_step))

    def should_stop(self) -> bool:
        # A changed parent means the supervising task died: stop (after a checkpoint) instead of
        # training on unsupervised while the reaper hands the job to another worker.
        return self.stop.is_set() or os.getppid() != self.parent


def progress_payload(progress: Progress) -> dict[str, Any]:
    """The job row's ``progress`` (the API reads it back in ``api.jobs.views.job_progress``)."""
    return {
        "phase": progress.phase,
        "epoch": progress.epoch + 1,
        "epochs": progress.epochs,
        "step": progress.step,
        "total_steps": progress.total_steps,
        "fraction": progress.fraction,
        "elapsed_seconds": progress.elapsed_s,
        "eta_seconds": progress.eta_s,
        "loss": progress.loss,
    }


def run_training_child(request: TrainingRequest, queue: Queue[ChildMessage], stop: Event) -> None:
    """Process entry point: exactly one final message (succeeded, stopped or failed) on the way out."""
    logging.basicConfig(level=logging.INFO)
    try:
        queue.put(_train(request, queue, stop))
    except Exception as error:  # the supervisor must always learn why, whatever happened
        queue.put(classify_failure(error))
    finally:
        queue.close()
        queue.join_thread()


def _train(request: TrainingRequest, queue: Queue[ChildMessage], stop: Event) -> ChildMessage:
    request.work_dir.mkdir(parents=True, exist_ok=True)
    store = open_object_store(request.settings)
    config = TrainConfig.from_dict(request.spec)
    splits = None
    if request.dataset_key is not None:
        local = request.work_dir / "dataset"
        store.download_file(request.dataset_key, local)
        splits = load_upload(local, request.settings.upload_limits(), seed=config.seed, name=config.dataset)
    resume = None
    if request.checkpoint_key is not None:
        local = request.work_dir / "resume.pt"
        store.download_file(request.checkpoint_key, local)
        resume = TrainingState.load(local)
    run_dir = request.work_dir / "run"
    output = train_and_report(
        config, run_dir, splits=splits, callbacks=[Reporter(request, store, queue, stop)], resume=resume
    )
    if output.report is None:
        return TrainingStopped(outcome=output.outcome)
    artifacts = upload_run(store, request.tenant_id, request.model_id, run_dir)
    return TrainingSucceeded(
        model_id=request.model_id,
        spec=output.report["model"],
        summary=model_summary(output.report),
        artifacts=artifacts,
    )


def upload_run(
    store: ObjectStore, tenant_id: uuid.UUID, model_id: uuid.UUID, run_dir: Path
) -> dict[str, str]:
    """Every file of a run directory under the model's prefix ("prototypes/0.png" → "prototypes-0.png")."""
    keys: dict[str, str] = {}
    for path in _files(run_dir):
        name = path.relative_to(run_dir).as_posix().replace("/", "-")
        key = object_key(str(tenant_id), "models", str(model_id), name)
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        store.put_file(key, path, content_type=content_type)
        keys[name] = key
    return keys


def _files(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.name != CHECKPOINT_FILE:
            yield path


def model_summary(report: dict[str, Any]) -> dict[str, Any]:
    """What the ``models`` row keeps of a run's report (the full report stays in the store)."""
    test = report["test"]
    return {
        "accuracy": test["accuracy"],
        "per_class_accuracy": test["per_class_accuracy"],
        "cam_prototype_distance": {m: v["mean"] for m, v in test["cam_prototype_distance"].items()},
        "misclassified_count": test["misclassified_count"],
        "object_energy": test["object_energy"],
        "decoy_energy": test["decoy_energy"],
        "faithfulness": faithfulness_headline(report.get("faithfulness")),
        "dataset": report["dataset"],
        "cam": report["cam"],
    }


def faithfulness_headline(section: dict[str, Any] | None) -> dict[str, Any] | None:
    """The report's faithfulness section in a few numbers: each score with its random-map reference."""
    if section is None or "error" in section:
        return None
    road = section["road"]["combined"]
    return {
        "images": section["subset"]["size"],
        "deletion_auc": section["deletion"]["auc"],
        "insertion_auc": section["insertion"]["auc"],
        "road_combined": {"map": road["map"], "random": road["random"]},
        "fully_randomised_spearman": (section["sanity"]["fully_randomised"] or {}).get("spearman"),
    }


def classify_failure(error: BaseException) -> TrainingFailed:
    """Which failures are worth another attempt: only infrastructure ones (docs/ARCHITECTURE.md §8.2)."""
    if isinstance(error, TrainingDivergedError):
        return TrainingFailed(FailureReason.NAN_LOSS, error.message, retryable=False)
    if isinstance(error, DatasetUnavailableError):
        return TrainingFailed(FailureReason.INFRASTRUCTURE, error.message, retryable=False)
    if isinstance(error, BatchCamError):
        return TrainingFailed(FailureReason.INVALID_INPUT, error.message, retryable=False)
    if isinstance(error, torch.cuda.OutOfMemoryError):
        return TrainingFailed(
            FailureReason.OUT_OF_MEMORY, "the GPU ran out of memory; use a smaller batch size", False
        )
    if isinstance(error, ObjectStoreUnavailableError):
        return TrainingFailed(FailureReason.INFRASTRUCTURE, str(error), retryable=True)
    if isinstance(error, ObjectStoreError):
        return TrainingFailed(FailureReason.INFRASTRUCTURE, str(error), retryable=False)
    log.error("training failed with an internal error:\n%s", "".join(traceback.format_exception(error)))
    return TrainingFailed(
        FailureReason.INTERNAL_ERROR, f"internal error ({type(error).__name__})", retryable=False
    )
