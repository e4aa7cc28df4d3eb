"""The API as operators run it: ``python -m api.serve`` (uvicorn with the API's limits) in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from service.seaweed import free_port


@dataclass(frozen=True)
class ServedApi:
    base_url: str
    port: int
    log: Path


@contextmanager
def served_api(env: dict[str, str], log: Path, timeout: float = 120.0) -> Iterator[ServedApi]:
    """Serve until the block ends; ``env`` is added to this process's environment."""
    port = free_port()
    command = [sys.executable, "-m", "api.serve", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as handle:
        process = subprocess.Popen(
            command, env={**os.environ, **env}, stdout=handle, stderr=subprocess.STDOUT
        )
    served = ServedApi(f"http://127.0.0.1:{port}", port, log)
    try:
        wait_healthy(served, process, timeout)
        yield served
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_healthy(served: ServedApi, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"the API exited with {process.returncode}:\n{served.log.read_text()[-3000:]}"
            )
        try:
            if httpx.get(f"{served.base_url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(
        f"the API did not answer /healthz in {timeout:.0f} s:\n{served.log.read_text()[-3000:]}"
    )
