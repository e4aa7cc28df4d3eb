"""The retry policy against a real local HTTP server: what is retried (connection failures, 429, 503,
409 idempotency_key_in_progress), after how long (Retry-After honoured), with which Idempotency-Key
(the same on every retry of one submission, a new one per submission), and what is never retried."""

from __future__ import annotations

import socket
import time

import pytest
from batchcam_client import (
    Client,
    Conflict,
    InvalidRequest,
    NotFound,
    RateLimited,
    RetryPolicy,
    ServerError,
    ServiceUnavailable,
    TransportError,
)

from client.scripted_server import Answer, problem, scripted_server

REPORT = Answer(200, {"test": {"accuracy": 0.9}})
QUICK = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05)
MODEL = "8a3c2d9e-0000-4000-8000-000000000001"


@pytest.mark.parametrize(("status", "code"), [(503, "service_unavailable"), (429, "rate_limited")])
def test_a_busy_service_is_asked_again_after_its_retry_after(status: int, code: str) -> None:
    with (
        scripted_server(problem(status, code, **{"Retry-After": "1"}), REPORT) as (url, script),
        Client(url, "bc_k_s", retry=QUICK) as client,
    ):
        assert client.models.report(MODEL) == REPORT.body
    first, second = script.seen
    assert second.at - first.at >= 1.0  # the backoff alone would be 10–50 ms


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [(503, "service_unavailable", ServiceUnavailable), (429, "rate_limited", RateLimited)],
)
def test_retries_end_with_the_typed_error(status: int, code: str, error: type[Exception]) -> None:
    with (
        scripted_server(problem(status, code, **{"Retry-After": "0"})) as (url, script),
        Client(url, "bc_k_s", retry=QUICK) as client,
        pytest.raises(error) as raised,
    ):
        client.models.report(MODEL)
    assert len(script.seen) == QUICK.max_attempts
    assert raised.value.code == code and raised.value.status == status  # type: ignore[attr-defined]
    assert raised.value.request_id == f"req-{code}"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (problem(404, "not_found"), NotFound),
        (problem(409, "job_already_finished"), Conflict),
        (problem(500, "internal_error"), ServerError),
        (problem(422, "invalid_config", **{"Retry-After": "0"}), InvalidRequest),
    ],
)
def test_other_errors_are_never_retried(answer: Answer, error: type[Exception]) -> None:
    with (
        scripted_server(answer, REPORT) as (url, script),
        Client(url, "bc_k_s", retry=QUICK) as client,
        pytest.raises(error) as raised,
    ):
        client.models.report(MODEL)
    assert len(script.seen) == 1
    assert str(raised.value).startswith(f"{answer.body['code']}: scripted")


def test_a_submission_in_progress_is_retried_with_the_same_idempotency_key() -> None:
    dataset = {"id": "d1", "name": "n", "builtin": False, "links": {"dataset": "/v1/datasets/d1"}}
    in_progress = problem(409, "idempotency_key_in_progress", **{"Retry-After": "0"})
    with (
        scripted_server(in_progress, in_progress, Answer(201, dataset)) as (url, script),
        Client(url, "bc_k_s", retry=QUICK) as client,
    ):
        assert client.datasets.upload(b"npz", name="n").id == "d1"
        client.datasets.upload(b"npz", name="n")
    keys = [seen.headers.get("Idempotency-Key") for seen in script.seen]
    assert len(keys) == 4 and keys[0] and keys[0] == keys[1] == keys[2] != keys[3]
    assert all(seen.headers["Authorization"] == "Bearer bc_k_s" for seen in script.seen)


def test_reads_carry_no_idempotency_key() -> None:
    with scripted_server(REPORT) as (url, script), Client(url, "bc_k_s") as client:
        client.models.report(MODEL)
    assert "Idempotency-Key" not in script.seen[0].headers


def test_an_unreachable_service_is_a_transport_error_after_the_retries() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, never listening: connections are refused
        started = time.monotonic()
        with (
            Client(f"http://127.0.0.1:{port}", "bc_k_s", retry=QUICK) as client,
            pytest.raises(TransportError, match="ConnectError after 4 attempts"),
        ):
            client.jobs.get(MODEL)
    assert time.monotonic() - started < 5
