"""Fixtures for the service tests: a real SeaweedFS S3 server and object stores on it or on disk."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from persistence.objects import LocalObjectStore, S3ObjectStore, ensure_bucket
from service.seaweed import SeaweedServer, running_seaweedfs


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    """One SeaweedFS for the whole run (it takes about a second to start), removed afterwards."""
    data_dir = tmp_path_factory.mktemp("seaweedfs")
    with running_seaweedfs(data_dir) as server:
        yield server
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def s3_store(seaweedfs: SeaweedServer) -> S3ObjectStore:
    """A store on a bucket of its own, under a prefix, exactly as production addresses S3."""
    store = S3ObjectStore(
        f"test-{uuid.uuid4().hex[:16]}", prefix="batchcam", connection=seaweedfs.connection()
    )
    ensure_bucket(store)
    return store


@pytest.fixture
def local_store(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "objects")
