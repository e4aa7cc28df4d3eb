"""``GET /v1/jobs/{id}/events``: Server-Sent Events replayed from the table, followed live, resumed
with Last-Event-ID, ended by the terminal state."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from api.context import StreamTimings
from api.http import sse
from batchcam.training.progress import Progress
from persistence.api_keys import revoke_api_key
from persistence.db import transaction
from persistence.jobs.leases import Lease, claim, finish, heartbeat, record_epoch, release_for_retry
from persistence.states import JobState
from service.api_support import ApiHarness, api_harness, assert_problem, send_raw
from worker.training.child import progress_payload

LEASE = timedelta(minutes=5)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiHarness]:
    timings = StreamTimings(poll_seconds=0.05, heartbeat_seconds=0.1, key_recheck_seconds=0.3)
    with api_harness(tmp_path_factory.mktemp("api-events"), stream_timings=timings) as harness:
        yield harness


def parse_stream(text: str) -> tuple[list[dict[str, Any]], int]:
    """The events of an SSE body, and how many heartbeat comments it held."""
    events: list[dict[str, Any]] = []
    heartbeats = 0
    for block in text.split("\n\n"):
        lines = [line for line in block.split("\n") if line]
        if lines and all(line.startswith(":") for line in lines):
            heartbeats += 1
            continue
        fields = dict(line.split(": ", 1) for line in lines if not line.startswith(":"))
        if "data" in fields:
            events.append(
                {
                    "id": int(fields["id"]) if "id" in fields else None,
                    "event": fields["event"],
                    "data": json.loads(fields["data"]),
                }
            )
    return events, heartbeats


def running_job(api: ApiHarness, headers: dict[str, str]) -> tuple[uuid.UUID, Lease]:
    response = api.client.post("/v1/jobs", json={"epochs": 2}, headers=headers)
    job_id = uuid.UUID(response.json()["id"])
    with transaction(api.sessions) as session:
        lease = claim(session, job_id, "worker-sse", LEASE, datetime.now(UTC))
    assert lease is not None
    return job_id, lease


def test_a_finished_job_replays_its_history_and_the_stream_ends(api: ApiHarness) -> None:
    headers = api.new_tenant()
    job_id, lease = running_job(api, headers)
    now = datetime.now(UTC)
    with transaction(api.sessions) as session:
        record_epoch(session, lease, 1, {"epoch": 1, "test_accuracy": 0.7}, now)
        record_epoch(session, lease, 2, {"epoch": 2, "test_accuracy": 0.9}, now)
    with transaction(api.sessions) as session:
        finish(session, lease, JobState.SUCCEEDED, now)

    response = api.client.get(f"/v1/jobs/{job_id}/events", headers=headers)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    events, _ = parse_stream(response.text)
    assert [(e["event"], e["data"].get("state") or e["data"].get("epoch")) for e in events] == [
        ("state", "queued"),
        ("state", "running"),
        ("epoch", 1),
        ("epoch", 2),
        ("state", "succeeded"),
    ]
    assert all(e["data"]["job_id"] == str(job_id) for e in events)
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)

    resumed = api.client.get(
        f"/v1/jobs/{job_id}/events", headers={**headers, "Last-Event-ID": str(events[2]["id"])}
    )
    assert [e["id"] for e in parse_stream(resumed.text)[0]] == [e["id"] for e in events[3:]]
    after_the_end = api.client.get(
        f"/v1/jobs/{job_id}/events", headers={**headers, "Last-Event-ID": str(events[-1]["id"])}
    )
    assert parse_stream(after_the_end.text)[0] == []  # nothing left, and the stream still ends


def test_a_live_stream_follows_new_events_with_heartbeats_until_the_job_ends(api: ApiHarness) -> None:
    headers = api.new_tenant()
    job_id, lease = running_job(api, headers)

    def worker() -> None:
        time.sleep(0.4)  # long enough for heartbeats while nothing happens
        for step in (10, 30):  # a worker's heartbeats, as the training child reports progress
            progress = progress_payload(
                Progress("train", 0, 2, step=step, total_steps=60, elapsed_s=step / 10)
            )
            with transaction(api.sessions) as session:
                heartbeat(session, lease, LEASE, datetime.now(UTC), progress)
            time.sleep(0.2)
        with transaction(api.sessions) as session:
            record_epoch(session, lease, 1, {"epoch": 1}, datetime.now(UTC))
        time.sleep(0.2)
        with transaction(api.sessions) as session:
            finish(session, lease, JobState.CANCELLED, datetime.now(UTC))

    thread = threading.Thread(target=worker)
    thread.start()
    started = time.monotonic()
    with api.client.stream("GET", f"/v1/jobs/{job_id}/events", headers=headers) as response:
        text = "".join(response.iter_text())
    thread.join()
    events, heartbeats = parse_stream(text)
    stored = [e for e in events if e["id"] is not None]
    assert [e["event"] for e in stored] == ["state", "state", "epoch", "state"]
    assert stored[-1]["data"]["state"] == "cancelled" and heartbeats >= 1
    # Progress is streamed live, once per change, without ids (a resumed stream does not replay it).
    progress = [e["data"] for e in events if e["event"] == "progress"]
    assert [(p["step"], p["fraction"], p["eta_seconds"]) for p in progress] == [
        (10, pytest.approx(1 / 6), pytest.approx(5.0)),
        (30, pytest.approx(0.5), pytest.approx(3.0)),
    ]
    assert {e["event"] for e in events if e["id"] is None} == {"progress"}
    assert text.startswith("retry: ")
    assert time.monotonic() - started < 10


def test_a_requeued_job_streams_no_progress_until_its_next_attempt_reports(api: ApiHarness) -> None:
    headers = api.new_tenant()
    job_id, first = running_job(api, headers)

    def report(lease: Lease, step: int) -> None:
        progress = progress_payload(Progress("train", 0, 2, step=step, total_steps=60, elapsed_s=step / 10))
        with transaction(api.sessions) as session:
            heartbeat(session, lease, LEASE, datetime.now(UTC), progress)

    def worker() -> None:
        report(first, 20)
        time.sleep(0.3)
        with transaction(api.sessions) as session:  # a transient failure: back to the queue
            release_for_retry(session, first, datetime.now(UTC), "storage unavailable")
        time.sleep(0.5)  # queued, still holding attempt 1's progress: nothing live to stream
        with transaction(api.sessions) as session:
            second = claim(session, job_id, "worker-sse-2", LEASE, datetime.now(UTC))
        assert second is not None
        time.sleep(0.3)
        report(second, 20)  # resumed where the first stopped: sent again, it is this attempt's news
        time.sleep(0.2)
        report(second, 26)
        time.sleep(0.2)
        with transaction(api.sessions) as session:
            finish(session, second, JobState.CANCELLED, datetime.now(UTC))

    thread = threading.Thread(target=worker)
    thread.start()
    with api.client.stream("GET", f"/v1/jobs/{job_id}/events", headers=headers) as response:
        text = "".join(response.iter_text())
    thread.join()
    events, _ = parse_stream(text)
    states = [e["data"]["state"] for e in events if e["event"] == "state"]
    assert states == ["queued", "running", "queued", "running", "cancelled"]
    progress = [e["data"] for e in events if e["event"] == "progress"]
    assert [(p["step"], p["phase"]) for p in progress] == [(20, "train"), (20, "train"), (26, "train")]
    assert all(p["eta_seconds"] is not None for p in progress)


def test_a_bad_last_event_id_and_unknown_jobs_are_problems(api: ApiHarness) -> None:
    headers = api.new_tenant()
    job_id, _ = running_job(api, headers)
    assert_problem(
        api.client.get(f"/v1/jobs/{job_id}/events", headers={**headers, "Last-Event-ID": "abc"}),
        400,
        "invalid_last_event_id",
    )
    assert_problem(api.client.get(f"/v1/jobs/{uuid.uuid4()}/events", headers=headers), 404, "job_not_found")


def finished_job(api: ApiHarness, headers: dict[str, str]) -> uuid.UUID:
    job_id, lease = running_job(api, headers)
    with transaction(api.sessions) as session:
        finish(session, lease, JobState.SUCCEEDED, datetime.now(UTC))
    return job_id


@pytest.mark.parametrize(
    "value",
    [
        "²".encode("latin-1"),  # str.isdigit() says yes, int() says no
        b"9" * 5000,  # past Python's 4,300-digit limit for int()
        str(2**63).encode(),  # past Postgres bigint: once failed mid-stream, so EventSource retried forever
        str(10**30).encode(),
        b"-1",
        b"1.5",
        b"0x10",
    ],
    ids=["superscript-two", "5000-digits", "2^63", "10^30", "negative", "decimal", "hex"],
)
def test_a_last_event_id_that_is_no_event_id_is_a_400_before_the_stream_starts(
    api: ApiHarness, value: bytes
) -> None:
    headers = api.new_tenant()
    job_id = finished_job(api, headers)
    response = send_raw(api, "GET", f"/v1/jobs/{job_id}/events", {**headers, "Last-Event-ID": value})
    body = assert_problem(response, 400, "invalid_last_event_id")
    assert "0 to 9223372036854775807" in body["detail"] and "ASCII digits" in body["detail"]


@pytest.mark.parametrize(
    ("value", "replays"),
    [("", True), ("0", True), ("007", True), ("0" * 5000 + "1", True), (str(2**63 - 1), False)],
)
def test_every_event_id_up_to_the_bigint_maximum_is_a_resume_point(
    api: ApiHarness, value: str, replays: bool
) -> None:
    headers = api.new_tenant()
    job_id = finished_job(api, headers)
    response = api.client.get(f"/v1/jobs/{job_id}/events", headers={**headers, "Last-Event-ID": value})
    assert response.status_code == 200, response.text
    events, _ = parse_stream(response.text)
    if replays:  # small ids replay the story (or its end); the largest possible id nothing
        assert [e["data"]["state"] for e in events][-1] == "succeeded"
    else:
        assert events == []


def test_an_open_stream_ends_when_its_key_is_revoked(api: ApiHarness) -> None:
    headers = api.new_tenant()
    job_id, _ = running_job(api, headers)  # running: without the re-check the stream would never end
    key = headers["Authorization"].removeprefix("Bearer ")

    def revoke() -> None:
        time.sleep(0.5)
        with transaction(api.sessions) as session:
            assert revoke_api_key(session, key)

    thread = threading.Thread(target=revoke)
    thread.start()
    started = time.monotonic()
    with api.client.stream("GET", f"/v1/jobs/{job_id}/events", headers=headers) as response:
        assert response.status_code == 200
        text = "".join(response.iter_text())
    thread.join()
    assert time.monotonic() - started < 5  # revoked after 0.5 s, re-checked every 0.3 s
    events, _ = parse_stream(text)
    assert events[-1]["event"] == "unauthorized" and events[-1]["id"] is None, events
    assert events[-1]["data"]["code"] == "unauthorized"
    again = api.client.get(f"/v1/jobs/{job_id}/events", headers=headers)
    assert_problem(again, 401, "unauthorized")


@pytest.fixture(scope="module")
def slow_polling_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiHarness]:
    """Polls so slow that only a change notification can bring an event in time."""
    timings = StreamTimings(poll_seconds=30, heartbeat_seconds=60, key_recheck_seconds=60)
    with api_harness(tmp_path_factory.mktemp("api-events-notified"), stream_timings=timings) as harness:
        yield harness


def test_a_live_stream_is_woken_by_change_notifications_not_its_poll(
    slow_polling_api: ApiHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = slow_polling_api
    monkeypatch.setattr(sse, "NOTIFIED_POLL_SECONDS", 30.0)
    changes = api.client.app.state.context.changes  # type: ignore[attr-defined]
    deadline = time.monotonic() + 10
    while not changes.live:
        assert time.monotonic() < deadline, "the API's change listener did not connect"
        time.sleep(0.02)
    headers = api.new_tenant()
    job_id, lease = running_job(api, headers)

    def worker() -> None:
        time.sleep(0.3)
        with transaction(api.sessions) as session:
            record_epoch(session, lease, 1, {"epoch": 1}, datetime.now(UTC))
        time.sleep(0.3)
        with transaction(api.sessions) as session:
            finish(session, lease, JobState.SUCCEEDED, datetime.now(UTC))

    thread = threading.Thread(target=worker)
    thread.start()
    started = time.monotonic()
    with api.client.stream("GET", f"/v1/jobs/{job_id}/events", headers=headers) as response:
        text = "".join(response.iter_text())
    thread.join()
    events, _ = parse_stream(text)
    assert [e["event"] for e in events if e["id"] is not None] == ["state", "state", "epoch", "state"]
    assert time.monotonic() - started < 5  # two 30 s polls would have taken a minute
