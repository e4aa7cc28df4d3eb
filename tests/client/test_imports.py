"""The client is light: importing it pulls httpx and pydantic, never the service's or the science's
stack (torch, Celery, SQLAlchemy, FastAPI, the batchcam library), nor numpy or Pillow, which only
the array and image methods import. And it says clearly what is missing when not configured."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from batchcam_client import Client, ConfigurationError

NEVER_IMPORTED = ["torch", "celery", "sqlalchemy", "fastapi", "starlette", "batchcam", "api", "numpy", "PIL"]


def test_importing_the_client_imports_only_httpx_and_pydantic() -> None:
    code = "import json, sys, batchcam_client; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    modules = set(json.loads(done.stdout))
    assert {"httpx", "pydantic", "batchcam_client.sync.client", "batchcam_client.aio.client"} <= modules
    assert not {name for name in modules if name.split(".")[0] in NEVER_IMPORTED}


def test_without_url_or_key_the_error_names_the_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BATCHCAM_URL", raising=False)
    monkeypatch.delenv("BATCHCAM_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="BATCHCAM_URL and BATCHCAM_API_KEY"):
        Client()
    monkeypatch.setenv("BATCHCAM_URL", "http://127.0.0.1:1")
    with pytest.raises(ConfigurationError, match=r"set BATCHCAM_API_KEY$"):
        Client()
    monkeypatch.setenv("BATCHCAM_API_KEY", "bc_x_y")
    Client().close()
