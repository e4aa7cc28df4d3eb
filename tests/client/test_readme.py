"""The README's first example runs as written against the real service, with two substitutions that
keep it fast: the session's small uploaded dataset and one tiny epoch instead of the built-in
``shapes``, and a real image file for ``digit.png``."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from batchcam_client import Dataset
from PIL import Image
from service.service_stack import ServiceStack

from client.conftest import TINY_TRAINING

pytestmark = pytest.mark.slow
README = Path(__file__).resolve().parents[2] / "clients" / "python" / "README.md"


def first_python_block() -> str:
    match = re.search(r"```python\n(.*?)```", README.read_text(), re.DOTALL)
    assert match is not None
    return match.group(1)


def test_the_readme_example_gives_a_heatmap_array(
    stack: ServiceStack, api_key: str, dataset: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = first_python_block()
    assert len([line for line in code.splitlines() if line.strip()]) == 5
    options = ", ".join(f"{name}={value}" for name, value in TINY_TRAINING.items())
    code = code.replace('dataset="shapes", epochs=1', f'dataset="{dataset.id}", {options}')
    image = tmp_path / "digit.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (28, 28), dtype=np.uint8)).save(image)
    code = code.replace('"digit.png"', repr(str(image)))
    monkeypatch.setenv("BATCHCAM_URL", stack.api.base_url)
    monkeypatch.setenv("BATCHCAM_API_KEY", api_key)
    scope: dict[str, object] = {}
    exec(compile(code, str(README), "exec"), scope)
    heatmap = scope["heatmap"]
    assert isinstance(heatmap, np.ndarray) and heatmap.shape == (28, 28)
    scope["client"].close()  # type: ignore[attr-defined]
