"""The asyncio client does what the blocking one does, on the same service: upload with progress,
submit, follow the events, wait, read the model, explain, fetch a heatmap, list across pages."""

from __future__ import annotations

import asyncio

import pytest
from batchcam_client import AsyncClient, DatasetExplanation, JobSpec, JobState, NotFound, RunState
from service.service_stack import ServiceStack, small_dataset

from client.conftest import FAST_RETRIES, TINY_TRAINING

pytestmark = pytest.mark.slow


def test_the_async_client_trains_explains_and_fetches_a_heatmap(stack: ServiceStack) -> None:
    asyncio.run(full_path(stack, stack.new_api_key("client-async")))


async def full_path(stack: ServiceStack, key: str) -> None:
    async with AsyncClient(stack.api.base_url, key, retry=FAST_RETRIES, poll_interval=0.5) as client:
        sent: list[int] = []
        upload = small_dataset()
        dataset = await client.datasets.upload(upload, progress=lambda done, total: sent.append(done))
        assert sent[-1] == len(upload) and (await client.datasets.get(dataset.id)).id == dataset.id

        submitted = await client.jobs.submit(JobSpec(dataset=dataset.id, **TINY_TRAINING))  # type: ignore[arg-type]
        kinds = [event.type async for event in client.jobs.events(submitted.id, timeout=300)]
        assert "epoch" in kinds and kinds[-1] == "state"
        job = await client.jobs.wait(submitted.id, timeout=60)
        assert job.state == JobState.SUCCEEDED and job.model_id is not None
        assert [listed.id async for listed in client.jobs.list(page_size=1)] == [job.id]

        model = await client.models.get(job.model_id)
        assert (await client.models.report(model.id))["test"]["accuracy"] >= 0
        request = DatasetExplanation(dataset=dataset.id, indices=[4])
        explained = await client.explanations.submit_dataset(model.id, request, wait=30)
        explanation = await client.explanations.wait(explained.id, timeout=120)
        assert explanation.state == RunState.SUCCEEDED
        heatmap = await client.explanations.heatmap(explanation.id, 0)
        assert heatmap.shape == (28, 28)
        assert (await client.explanations.heatmap_png(explanation.id, 0)).image().size == (28, 28)
        with pytest.raises(NotFound):
            await client.models.get(submitted.id)  # a job's id is no model's
