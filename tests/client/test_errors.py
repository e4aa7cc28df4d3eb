"""Each kind of problem the real service answers arrives as its typed exception, with the problem's
code, status, detail and the request id of the response."""

from __future__ import annotations

import uuid

import pytest
from batchcam_client import (
    BatchCamError,
    Client,
    InvalidRequest,
    JobSpec,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
)
from service.service_stack import ServiceStack

pytestmark = pytest.mark.slow


def test_another_or_a_missing_id_is_not_found(client: Client) -> None:
    with pytest.raises(NotFound) as missing:
        client.jobs.get(uuid.uuid4())
    assert missing.value.status == 404 and missing.value.code == "job_not_found"
    assert missing.value.detail and missing.value.request_id and missing.value.title


def test_a_bad_key_is_unauthorized(stack: ServiceStack) -> None:
    with Client(stack.api.base_url, "bc_nothing_here") as stranger, pytest.raises(Unauthorized) as refused:
        next(stranger.jobs.list())
    assert refused.value.status == 401 and refused.value.code == "unauthorized"


def test_an_invalid_spec_is_the_service_s_422(client: Client) -> None:
    with pytest.raises(InvalidRequest) as invalid:
        client.jobs.submit(lr=5e16)
    assert invalid.value.status == 422 and invalid.value.code == "invalid_config"
    assert "lr must be a number in [1e-08, 10]" in (invalid.value.detail or "")


def test_a_body_over_the_cap_is_payload_too_large(client: Client) -> None:
    with pytest.raises(PayloadTooLarge) as large:
        client.jobs.submit(JobSpec(dataset="x" * (1 << 20)))
    assert large.value.status == 413 and large.value.code == "payload_too_large"
    assert isinstance(large.value, BatchCamError)
