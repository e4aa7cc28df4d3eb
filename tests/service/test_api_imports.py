"""The API package never imports Celery, kombu or the worker: the composition root (``api.main``) hands
it the senders. Checked in a fresh interpreter, so other tests' imports cannot hide a violation."""

from __future__ import annotations

import ast
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
