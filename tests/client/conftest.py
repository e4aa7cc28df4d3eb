"""The Python client's tests run against the real service (tests/service/service_stack.py): one stack
for the whole session, one tenant, one uploaded dataset and one really trained job that the tests
read, explain and stream again."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from batchcam_client import Client, Dataset, Job, JobEvent, JobSpec, RetryPolicy
from service.conftest import seaweedfs  # noqa: F401  (the session's S3 server, as tests/service use it)
from service.seaweed import SeaweedServer
from service.service_stack import ServiceStack, service_stack, small_dataset

FAST_RETRIES = RetryPolicy(max_attempts=5, base_delay=0.1, max_delay=1.0)
# One epoch of simple_cnn on 300 images: seconds on a CPU (as tests/service/test_generated_client.py).
TINY_TRAINING = {"epochs": 1, "batch_size": 32, "bn_recalibration_batches": 2, "faithfulness_images": 0}


@dataclass(frozen=True)
class TrainedJob:
    job: Job  # as wait() returned it
    submitted: Job
    events: list[JobEvent]  # what wait() saw live


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, seaweedfs: SeaweedServer) -> Iterator[ServiceStack]:  # noqa: F811
    with service_stack(tmp_path_factory.mktemp("client-stack"), seaweedfs, "pyclient") as running:
        yield running


@pytest.fixture(scope="session")
def api_key(stack: ServiceStack) -> str:
    return stack.new_api_key("client-tests")


def connect(stack: ServiceStack, key: str, **options: object) -> Client:
    return Client(stack.api.base_url, key, retry=FAST_RETRIES, poll_interval=0.5, **options)  # type: ignore[arg-type]


@pytest.fixture
def client(stack: ServiceStack, api_key: str) -> Iterator[Client]:
    with connect(stack, api_key) as opened:
        yield opened


@pytest.fixture(scope="session")
def dataset(stack: ServiceStack, api_key: str) -> Dataset:
    with connect(stack, api_key) as session_client:
        return session_client.datasets.upload(small_dataset(), filename="shapes-300.npz", name="shapes-300")


@pytest.fixture(scope="session")
def trained(stack: ServiceStack, api_key: str, dataset: Dataset) -> TrainedJob:
    """Submitted, followed live through its events and waited for, by the blocking client."""
    with connect(stack, api_key) as session_client:
        submitted = session_client.jobs.submit(JobSpec(dataset=dataset.id, **TINY_TRAINING))
        events: list[JobEvent] = []
        job = session_client.jobs.wait(submitted.id, timeout=300, on_event=events.append)
    return TrainedJob(job=job, submitted=submitted, events=events)
