"""An upload becomes a dataset: validated by the library (in a child process), deduplicated by
content, stored, recorded.

Order matters for "no orphans": validate first (nothing stored yet), store the object, then commit
the row; if the commit fails the object is deleted again. Same tenant + same bytes answers the
dataset that already exists.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from api.context import ApiContext
from api.datasets.inspection import inspect_upload
from api.http.uploads import SpooledUpload
from persistence.db import transaction
from persistence.models import Dataset
from persistence.objects import ObjectStore, object_key

logger = logging.getLogger(__name__)

CONTENT_TYPES = {"npz": "application/octet-stream", "zip": "application/zip"}


@dataclass(frozen=True)
class Registration:
    dataset: Dataset
    created: bool  # False: the same content was uploaded before, and that dataset is answered


def register_dataset(context: ApiContext, tenant_id: uuid.UUID, upload: SpooledUpload) -> Registration:
    existing = find_by_content(context.sessions, tenant_id, upload.sha256)
    if existing is not None:
        return Registration(existing, created=False)
    inspection = inspect_upload(upload.path, context.upload_limits, upload.name)  # DataValidationError → 4xx
    data_format = inspection.format
    dataset_id = uuid.uuid4()
    key = object_key(str(tenant_id), "datasets", str(dataset_id), f"data.{data_format}")
    context.object_store.put_file(key, upload.path, content_type=CONTENT_TYPES[data_format])
    row = Dataset(
        id=dataset_id,
        tenant_id=tenant_id,
        name=upload.name,
        format=data_format,
        sha256=upload.sha256,
        size_bytes=upload.size,
        object_key=key,
        summary=inspection.summary,
    )
    try:
        with transaction(context.sessions) as session:
            session.add(row)
    except IntegrityError:
        delete_orphan(context.object_store, key)
        winner = find_by_content(context.sessions, tenant_id, upload.sha256)
        if winner is None:
            raise
        return Registration(winner, created=False)  # a concurrent identical upload committed first
    except BaseException:
        delete_orphan(context.object_store, key)
        raise
    return Registration(row, created=True)


def find_by_content(sessions: sessionmaker[Session], tenant_id: uuid.UUID, sha256: str) -> Dataset | None:
    with sessions() as session:
        return session.scalar(select(Dataset).where(Dataset.tenant_id == tenant_id, Dataset.sha256 == sha256))


def delete_orphan(store: ObjectStore, key: str) -> None:
    try:
        store.delete(key)
    except Exception:
        logger.exception("could not delete the orphaned object %s; remove it by hand", key)
