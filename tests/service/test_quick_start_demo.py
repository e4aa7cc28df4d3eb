"""The README's first quick-start command, end to end on the embedded default (SQLite, local folder
store, filesystem broker): the service tour must train, explain and save heatmaps."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

DEMO = Path(__file__).resolve().parents[2] / "scripts" / "service_demo.py"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.slow
def test_the_service_demo_tours_the_embedded_default(tmp_path: Path) -> None:
    command = [sys.executable, str(DEMO), "--exit", "--dir", str(tmp_path), "--port", str(free_port())]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    logs = "".join(path.read_text(errors="replace")[-3000:] for path in sorted(tmp_path.glob("*.log")))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:] + logs
    heatmaps = sorted((tmp_path / "heatmaps").glob("*.png"))
    assert len(heatmaps) == 5  # one test image per shapes class
    for heatmap in heatmaps:
        with Image.open(heatmap) as image:
            assert image.width > 0
    assert "BATCHCAM_API_KEY=bc_" in done.stdout  # what the client and its CLI read
    assert "Dashboard: http://" in done.stdout and "/dashboard/" in done.stdout
    keys_line = next(line.strip() for line in done.stdout.splitlines() if line.strip().endswith(" keys list"))
    environment = {name: value for name, value in os.environ.items() if name != "DATABASE_URL"}
    listed = subprocess.run(
        ["bash", "-c", keys_line], capture_output=True, text=True, env=environment, timeout=120
    )
    assert listed.returncode == 0 and "service-demo" in listed.stdout, listed.stderr
