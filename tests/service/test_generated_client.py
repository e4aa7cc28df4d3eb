"""A client generated from the running API's OpenAPI document (openapi-python-client, default
settings) has every operation typed and runs the service's main path: upload, submit a job, wait,
read the report, explain dataset images, fetch a heatmap (issue 16). Everything is real: the API as
operators run it (``python -m api.serve``), Postgres, Redis, SeaweedFS and a Celery worker."""

from __future__ import annotations

import importlib
import io
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from service.seaweed import SeaweedServer
from service.service_stack import ServiceStack, service_stack, small_dataset

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
PACKAGE = "batch_cam_client"  # from the document's title, "Batch-CAM"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, seaweedfs: SeaweedServer) -> Iterator[ServiceStack]:
    with service_stack(tmp_path_factory.mktemp("generated-client"), seaweedfs, "client") as running:
        yield running


def generated_client(document_url: str, folder: Path) -> Callable[[str], ModuleType]:
    """Generates the client with default settings; returns an importer of its modules."""
    document = folder / "openapi.json"
    document.write_bytes(httpx.get(document_url, timeout=30).raise_for_status().content)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}  # its ruff hooks
    command = [str(BIN / "openapi-python-client"), "generate", "--path", str(document)]
    command += ["--output-path", str(folder / "client")]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "warning" not in (done.stdout + done.stderr).lower(), done.stdout + done.stderr  # nothing dropped
    sys.path.insert(0, str(folder / "client"))
    return lambda name: importlib.import_module(f"{PACKAGE}.{name}")


def wait_until(read: Callable[[], Any], done: Callable[[Any], bool], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}: {value}")
        time.sleep(1)


def test_a_generated_client_trains_explains_and_fetches_a_heatmap(
    stack: ServiceStack, tmp_path: Path
) -> None:
    module = generated_client(f"{stack.api.base_url}/openapi.json", tmp_path)
    client = module("client").AuthenticatedClient(
        base_url=stack.api.base_url, token=stack.new_api_key("generated-client"), timeout=60
    )
    models, types = module("models"), module("types")

    upload = module("api.datasets.upload_dataset").sync(
        client=client,
        body=models.UploadDatasetBody(
            file=types.File(payload=io.BytesIO(small_dataset()), file_name="s.npz")
        ),
    )
    assert isinstance(upload, models.DatasetResource), upload
    spec = models.JobSubmission(
        dataset=str(upload.id),
        epochs=1,
        batch_size=32,
        cam_method=models.JobSubmissionCamMethod.GRADCAM_PLUS_PLUS,
        bn_recalibration_batches=2,
        faithfulness_images=0,
    )
    submitted = module("api.jobs.submit_job").sync(client=client, body=spec)
    assert isinstance(submitted, models.JobResource), submitted
    assert submitted.spec.cam_method == models.JobSubmissionCamMethod.GRADCAM_PLUS_PLUS

    get_job = module("api.jobs.get_job")
    job = wait_until(lambda: get_job.sync(submitted.id, client=client), lambda j: j.terminal, 600, "the job")
    assert job.state == models.JobState.SUCCEEDED, job
    report = module("api.models.get_report").sync(job.model_id, client=client)
    assert report["test"]["accuracy"] >= 0  # a typed object holding the report's members

    request = models.SubmitExplanationJsonDatasetExplanationRequest(
        dataset=str(upload.id),
        indices=[0, 1],
        method=models.SubmitExplanationJsonDatasetExplanationRequestMethod.GRADCAM_PLUS_PLUS,
    )
    explained = module("api.explanations.submit_explanation").sync(
        job.model_id, client=client, body=request, wait=30
    )
    assert isinstance(explained, models.ExplanationResource), explained
    get_explanation = module("api.explanations.get_explanation")
    explanation = wait_until(
        lambda: get_explanation.sync(explained.id, client=client),
        lambda e: e.terminal,
        300,
        "the explanation",
    )
    assert explanation.state == models.ExplanationState.SUCCEEDED, explanation
    heatmap = module("api.explanations.get_heatmap_png").sync(
        explanation.id, 0, client=client, colormap=models.GetHeatmapPngColormap.VIRIDIS
    )
    assert isinstance(heatmap, types.File) and heatmap.payload.read(8) == b"\x89PNG\r\n\x1a\n"
