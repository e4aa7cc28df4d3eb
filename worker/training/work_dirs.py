"""A training attempt's local work folder, and removing those that a killed worker left behind.

The supervisor removes its folder when the attempt ends, but a SIGKILLed (or OOM-killed) worker
cannot: its folder, with dataset copies and checkpoints, would stay forever. Each folder's name
carries the pid of the worker that made it (``batchcam-<job>-p<pid>-…``), so a worker starting on
the same host removes the folders of workers that no longer run, and never a live worker's.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path

log = logging.getLogger(__name__)

WORK_DIR = re.compile(r"^batchcam-[0-9a-f-]{36}-p(?P<pid>\d+)-")


def new_work_dir(job_id: uuid.UUID) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"batchcam-{job_id}-p{os.getpid()}-"))


def remove_abandoned_work_dirs(root: Path | None = None) -> list[Path]:
    """Remove the work folders under ``root`` (the temp folder) whose worker process is gone."""
    removed = []
    for folder in Path(root or tempfile.gettempdir()).glob("batchcam-*"):
        match = WORK_DIR.match(folder.name)
        if match is None or not folder.is_dir() or process_runs(int(match["pid"])):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    if removed:
        log.info("removed %d work folder(s) of training workers that no longer run", len(removed))
    return removed


def process_runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it runs
        return True
    return True
