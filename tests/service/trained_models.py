"""A small model really trained by the library, stored the way a succeeded training job leaves it.

Training once per test module takes a few seconds (``simple_cnn`` on 400 procedural images); the
run's files are uploaded under the model's prefix exactly as the training child uploads them, and
the job and model rows are inserted as the supervisor writes them.
"""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from sqlalchemy.orm import Session, sessionmaker

from batchcam.data import make_shapes
from batchcam.data.dataset import DatasetSplits, ImageDataset
from batchcam.pipeline import train_and_report
from batchcam.spec.training import TrainConfig
from persistence.db import transaction
from persistence.models import Job, Model
from persistence.objects import ObjectStore
from persistence.states import JobState
from worker.training.child import model_summary, upload_run

TRAINING_SEED = 3


@dataclass(frozen=True)
class TrainedRun:
    run_dir: Path
    config: TrainConfig
    report: dict[str, Any]
    test_data: ImageDataset


def train_tiny_run(out_dir: Path) -> TrainedRun:
    splits = DatasetSplits("shapes", make_shapes(400, seed=1), make_shapes(30, seed=2))
    config = TrainConfig(dataset="shapes", epochs=2, batch_size=16, mode="baseline", seed=TRAINING_SEED)
    output = train_and_report(config, out_dir, splits=splits)
    assert output.report is not None
    return TrainedRun(out_dir, config, output.report, splits.test)


def store_model(
    sessions: sessionmaker[Session],
    store: ObjectStore,
    tenant_id: uuid.UUID,
    run: TrainedRun,
    *,
    job_state: JobState = JobState.SUCCEEDED,
) -> uuid.UUID:
    """Upload the run's files and insert its job and model rows; returns the model id."""
    model_id = uuid.uuid4()
    artifacts = upload_run(store, tenant_id, model_id, run.run_dir)
    with transaction(sessions) as session:
        job = Job(
            tenant_id=tenant_id,
            spec=run.config.to_dict(),
            state=job_state,
            progress={},
            model_id=model_id if job_state == JobState.SUCCEEDED else None,
        )
        session.add(job)
        session.flush()
        session.add(
            Model(
                id=model_id,
                tenant_id=tenant_id,
                job_id=job.id,
                spec=run.report["model"],
                summary=model_summary(run.report),
                artifacts=artifacts,
            )
        )
    return model_id


def png_of(image: torch.Tensor) -> bytes:
    """A uint8 C×H×W tensor as PNG bytes."""
    pixels = image.permute(1, 2, 0).numpy()
    buffer = io.BytesIO()
    Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def decoded_png(content: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(content)) as image:
        assert image.format == "PNG"
        return np.asarray(image)
