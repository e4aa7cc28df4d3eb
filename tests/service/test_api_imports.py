"""The API package never imports Celery, kombu or the worker: the composition root (``api.main``) hands
it the senders. Checked in a fresh interpreter, so other tests' imports cannot hide a violation."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

API = Path(__file__).resolve().parents[2] / "api"
FORBIDDEN = ("celery", "kombu", "worker")
COMPOSITION_ROOT = API / "main.py"  # the one place allowed to meet the queue


def test_importing_the_app_loads_no_celery_kombu_or_worker_module() -> None:
    probe = (
        "import sys, api.app\n"
        f"loaded = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})\n"
        "print(' '.join(loaded))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=API.parent, capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.split() == []


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_no_api_module_but_the_composition_root_imports_them() -> None:
    offenders = {
        str(path.relative_to(API.parent)): sorted(imported_roots(path) & set(FORBIDDEN))
        for path in sorted(API.rglob("*.py"))
        if path != COMPOSITION_ROOT
    }
    assert {path: roots for path, roots in offenders.items() if roots} == {}


def test_the_api_process_serves_requests_without_torch_or_matplotlib(tmp_path: Path) -> None:
    """``api.main`` as uvicorn loads it (the embedded default), then a readiness probe, a 404 and a
    422 problem: neither PyTorch nor matplotlib may be loaded, or the process pays ~800 MB for them."""
    probe = (
        "import sys\n"
        "from fastapi.testclient import TestClient\n"
        "import api.main\n"
        "with TestClient(api.main.app) as client:\n"
        "    statuses = [client.get('/readyz').status_code, client.get('/v1/jobs/x').status_code]\n"
        "roots = {m.split('.')[0] for m in sys.modules}\n"
        "heavy = sorted(roots & {'torch', 'matplotlib', 'torchvision', 'timm'})\n"
        "print(statuses, heavy)\n"
    )
    environment = {**os.environ, "BATCHCAM_STATE_DIR": str(tmp_path)}
    for name in ("DATABASE_URL", "BROKER_URL", "OBJECT_STORE_URL"):
        environment.pop(name, None)
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=API.parent,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    statuses, heavy = result.stdout.strip().rsplit("] ", 1)
    assert heavy == "[]", result.stdout
    assert statuses.startswith("[200,"), result.stdout  # the app really served
