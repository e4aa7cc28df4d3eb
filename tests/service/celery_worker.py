"""Real Celery workers as subprocesses (each in its own process group, so a test can SIGKILL the
whole worker: main process, pool child and training child together)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

CELERY = Path(sys.executable).parent / "celery"


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    log: Path

    def kill(self) -> None:
        """SIGKILL the worker's whole process group: nothing of it survives to clean up."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def start_worker(
    env: dict[str, str], log: Path, name: str, *, with_beat: bool = False, queues: str = "train,maintenance"
) -> WorkerProcess:
    """``celery -A worker.tasks worker -Q train,maintenance`` (``-B`` adds the reaper's beat)."""
    command = [str(CELERY), "-A", "worker.tasks", "worker", "-Q", queues]
    command += ["--hostname", f"{name}@%h", "--loglevel", "INFO", "--without-gossip", "--without-mingle"]
    if with_beat:
        command += ["-B", "--schedule", str(log.parent / f"{name}-beat-schedule")]
    handle = log.open("wb")
    process = subprocess.Popen(
        command, env={**os.environ, **env}, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
    )
    return WorkerProcess(process=process, log=log)


def wait_for(condition, timeout: float, what: str, worker: WorkerProcess | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            details = f"\n--- worker log ---\n{worker.tail()}" if worker else ""
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{details}")
        time.sleep(0.25)
