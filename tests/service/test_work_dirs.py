"""A training worker removes the work folders of workers that no longer run, never a live one's."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

from worker.training.work_dirs import new_work_dir, remove_abandoned_work_dirs


def finished_pid() -> int:
    """The pid of a process that has exited (its folders are abandoned)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_folders_of_dead_workers_go_and_live_ones_and_strangers_stay(tmp_path: Path) -> None:
    job = uuid.uuid4()
    dead = tmp_path / f"batchcam-{job}-p{finished_pid()}-abc123"
    (dead / "run").mkdir(parents=True)
    (dead / "run" / "checkpoint.pt").write_bytes(b"x" * 100)
    live = tmp_path / f"batchcam-{job}-p{os.getpid()}-def456"
    live.mkdir()
    unrelated = tmp_path / f"batchcam-model-{job}-xyz"  # another kind of folder: not ours to judge
    unrelated.mkdir()
    assert remove_abandoned_work_dirs(tmp_path) == [dead]
    assert not dead.exists() and live.exists() and unrelated.exists()


def test_a_new_work_folder_names_its_worker() -> None:
    folder = new_work_dir(uuid.uuid4())
    try:
        assert folder.is_dir() and folder.name.startswith("batchcam-") and f"-p{os.getpid()}-" in folder.name
    finally:
        folder.rmdir()
