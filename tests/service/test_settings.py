"""The settings object: read from the environment, and never a password in its repr."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from pydantic import ValidationError

from batchcam.spec.limits import DEFAULT_UPLOAD_LIMITS
from persistence.settings import Settings
from worker.training.messages import TrainingRequest

DATABASE = "postgresql+psycopg://svc:hunter2@db:5432/batchcam"
BROKER = "redis://:hunter2@redis:6379/0"


def test_passwords_stay_out_of_reprs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DATABASE_URL", DATABASE)
    monkeypatch.setenv("BROKER_URL", BROKER)
    monkeypatch.setenv("S3_SECRET_ACCESS_KEY", "hunter2")
    settings = Settings()
    assert settings.resolved_database_url() == DATABASE and settings.resolved_broker_url() == BROKER
    assert settings.s3_secret_access_key is not None
    assert settings.s3_secret_access_key.get_secret_value() == "hunter2"
    request = TrainingRequest(  # a dataclass that carries the settings to the training process
        job_id=uuid.uuid4(),
        tenant_id=uuid.uuid4(),
        attempt=1,
        spec={},
        dataset_key=None,
        checkpoint_key=None,
        model_id=uuid.uuid4(),
        settings=settings,
        work_dir=tmp_path,
    )
    for shown in (repr(settings), str(settings), repr(request)):
        assert "hunter2" not in shown


def test_upload_caps_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().upload_limits() == DEFAULT_UPLOAD_LIMITS
    monkeypatch.setenv("BATCHCAM_MAX_UPLOAD_BYTES", str(2 * 1024**3))
    monkeypatch.setenv("BATCHCAM_MAX_UPLOAD_UNCOMPRESSED_BYTES", str(8 * 1024**3))
    limits = Settings().upload_limits()
    assert limits.max_bytes == 2 * 1024**3 and limits.max_uncompressed_bytes == 8 * 1024**3
    assert limits.max_images == DEFAULT_UPLOAD_LIMITS.max_images  # the others keep their defaults
    monkeypatch.setenv("BATCHCAM_MAX_UPLOAD_IMAGES", "0")
    with pytest.raises(ValidationError, match="BATCHCAM_MAX_UPLOAD_IMAGES"):
        Settings()


def test_reading_settings_does_not_load_torch() -> None:
    """Migrations, the keys CLI and beat read settings; torch would cost them seconds each."""
    probe = "import sys, persistence.settings as s; s.Settings(); print('torch' in sys.modules)"
    repo = Path(__file__).parents[2]
    loaded = subprocess.run([sys.executable, "-c", probe], cwd=repo, capture_output=True, text=True)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "False"
