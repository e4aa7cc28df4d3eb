"""Shared test setup: no test reads or writes the user's real cache."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True, scope="session")
def isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    cache = tmp_path_factory.mktemp("batchcam-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BATCHCAM_CACHE_DIR", str(cache))
        yield cache
