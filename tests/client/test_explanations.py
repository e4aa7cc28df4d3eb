"""Explanations through the client against the real service: by dataset indices and by upload of
numpy arrays, PIL images and files; heatmaps as arrays (the service's ``.npy`` exactly) and as PNGs
that decode; lists; cancelling."""

from __future__ import annotations

import io
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
import redis
from batchcam_client import Client, Conflict, Dataset, DatasetExplanation, RunState
from PIL import Image
from service.service_stack import ServiceStack

from client.conftest import TrainedJob, connect
from worker.explain.wake_gate import KEY_PREFIX, WAKE_TTL_MS

pytestmark = pytest.mark.slow


def test_dataset_images_are_explained_into_heatmap_arrays_and_pngs(
    client: Client, trained: TrainedJob, dataset: Dataset, stack: ServiceStack, api_key: str
) -> None:
    model_id = trained.job.model_id
    assert model_id is not None
    request = DatasetExplanation(dataset=dataset.id, indices=[0, 1, 2], metrics=["deletion"])
    submitted = client.explanations.submit_dataset(model_id, request, wait=30)
    explanation = client.explanations.wait(submitted.id, timeout=120)
    assert explanation.state == RunState.SUCCEEDED and explanation.failed_items == 0, explanation
    assert [item.source.index for item in explanation.items] == [0, 1, 2]
    assert all(item.faithfulness and "deletion" in item.faithfulness for item in explanation.items)

    for item in explanation.items:
        heatmap = client.explanations.heatmap(explanation.id, item.index)
        assert heatmap.shape == (28, 28) and heatmap.min() >= 0 and heatmap.max() <= 1
        stored = httpx.get(
            f"{stack.api.base_url}/v1/explanations/{explanation.id}/heatmaps/{item.index}.npy",
            headers={"Authorization": f"Bearer {api_key}"},
        )
        np.testing.assert_array_equal(heatmap, np.load(io.BytesIO(stored.content)))  # the .npy, exactly
        raw = client.explanations.heatmap_png(explanation.id, item.index, style="raw").image()
        assert raw.size == (28, 28)
        overlay = client.explanations.heatmap_png(explanation.id, item.index, colormap="viridis", scale=2)
        assert overlay.image().size == (56, 56)

    listed = [summary.id for summary in client.explanations.list(model_id=model_id)]
    assert explanation.id in listed
    with pytest.raises(Conflict) as finished:
        client.explanations.cancel(explanation.id)
    assert finished.value.code == "explanation_already_finished"


def test_arrays_images_and_files_are_uploaded_and_explained(
    client: Client, trained: TrainedJob, tmp_path: Path
) -> None:
    model_id = trained.job.model_id
    assert model_id is not None
    rng = np.random.default_rng(0)
    array = rng.integers(0, 255, (28, 28), dtype=np.uint8)
    floats = rng.random((28, 28, 1))  # floats in [0, 1], one channel
    picture = Image.fromarray(array[::-1].copy())
    path = tmp_path / "from-disk.png"
    Image.fromarray(array.T.copy()).save(path)
    submitted = client.explanations.submit(
        model_id, [array, floats, picture, path], targets=[0, None, 1, None]
    )
    explanation = client.explanations.wait(submitted.id, timeout=120)
    assert explanation.state == RunState.SUCCEEDED and explanation.failed_items == 0, explanation
    names = [item.source.filename for item in explanation.items]
    assert names == ["image-0.png", "image-1.png", "image-2.png", "from-disk.png"]
    assert [item.target.index if item.target else None for item in explanation.items][::2] == [0, 1]
    assert client.explanations.heatmap(explanation.id, 3).shape == (28, 28)


def test_an_explanation_can_be_cancelled(client: Client, trained: TrainedJob, dataset: Dataset) -> None:
    model_id = trained.job.model_id
    assert model_id is not None
    submitted = client.explanations.submit_dataset(
        model_id, DatasetExplanation(dataset=dataset.id, indices=list(range(40)))
    )
    try:
        cancelled = client.explanations.cancel(submitted.id)
    except Conflict as already:  # the worker was quicker
        assert already.code == "explanation_already_finished"
        return
    assert cancelled.state in (RunState.CANCELLED, RunState.CANCELLING, RunState.SUCCEEDED)
    assert client.explanations.wait(submitted.id, timeout=60).state in (
        RunState.CANCELLED,
        RunState.SUCCEEDED,
    )


def test_a_burst_of_one_image_requests_is_answered_in_full_and_leaves_no_wake_up_behind(
    stack: ServiceStack, api_key: str, trained: TrainedJob
) -> None:
    """Concurrent callers, one image each, as other services call: each gets its own result within
    its wait, whether its request sent the model's wake-up or found one on its way."""
    model_id = trained.job.model_id
    assert model_id is not None
    arrays = [np.full((28, 28), 10 * i, dtype=np.uint8) for i in range(24)]

    def explain_one(array: np.ndarray) -> tuple[str, bool, str]:
        with connect(stack, api_key) as own:
            explanation = own.explanations.submit(model_id, [array], wait=30)
            explained = [item.predicted is not None for item in explanation.items] == [True]
            return str(explanation.id), explained, explanation.state.value

    with ThreadPoolExecutor(max_workers=len(arrays)) as pool:
        answers = list(pool.map(explain_one, arrays))
    assert [(state, explained) for _, explained, state in answers] == [("succeeded", True)] * len(arrays)
    assert len({explanation_id for explanation_id, _, _ in answers}) == len(arrays)
    broker = redis.Redis.from_url(stack.environment["BROKER_URL"])
    try:  # the worker takes every wake-up (deleting its key) well before the key would expire
        deadline = time.monotonic() + WAKE_TTL_MS / 2000
        while list(broker.scan_iter(f"{KEY_PREFIX}*")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert list(broker.scan_iter(f"{KEY_PREFIX}*")) == []
    finally:
        broker.close()
