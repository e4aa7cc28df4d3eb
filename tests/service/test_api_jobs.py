"""Training jobs over HTTP: submit (enqueue after commit), validation, idempotency, pagination,
reads, metrics history, cancellation and tenant isolation, on a real Postgres."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from dataclasses import fields
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from api.http.errors import ProblemError
from api.http.idempotency import request_fingerprint
from api.http.json_bodies import MAX_JSON_BODY_BYTES
from api.http.pagination import decode_cursor
from api.jobs.schemas import EXECUTION_ONLY_FIELDS, JobSubmission
from batchcam.spec.training import TrainConfig
from batchcam.training.progress import Progress
from persistence.db import transaction
from persistence.jobs.leases import claim, finish, heartbeat, record_epoch
from persistence.models import IdempotencyRecord, Job, JobEvent
from persistence.states import FailureReason, JobState
from service.api_support import ApiHarness, api_harness, assert_problem, insert_job, send_raw
from worker.training.child import progress_payload

LEASE = timedelta(minutes=5)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiHarness]:
    with api_harness(tmp_path_factory.mktemp("api-jobs")) as harness:
        yield harness


@pytest.fixture
def tenant(api: ApiHarness) -> dict[str, str]:
    return api.new_tenant()


def submit(api: ApiHarness, headers: dict[str, str], **spec: object) -> dict[str, object]:
    response = api.client.post("/v1/jobs", json={"epochs": 2, **spec}, headers=headers)
    assert response.status_code == 202, response.text
    return dict(response.json())


def test_oversize_json_bodies_are_refused_before_the_key_is_checked(api: ApiHarness) -> None:
    padding = " " * (MAX_JSON_BODY_BYTES + 1)  # valid JSON, only too large
    declared = api.client.post(
        "/v1/jobs", content=f'{{"epochs": 2}}{padding}', headers={"Content-Type": "application/json"}
    )
    assert f"{MAX_JSON_BODY_BYTES:,} bytes" in assert_problem(declared, 413, "payload_too_large")["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the counter on the stream must stop it
        yield b'{"epochs": 2'
        for _ in range(MAX_JSON_BODY_BYTES // (64 * 1024) + 1):
            yield b" " * 64 * 1024
        yield b"}"

    headers = {"Content-Type": "application/json", "Authorization": "Bearer x"}
    streamed = api.client.post("/v1/jobs", content=chunks(), headers=headers)
    assert_problem(streamed, 413, "payload_too_large")
    assert api.client.post("/v1/jobs", json={"epochs": 2}).status_code == 401  # a small body reaches auth


@pytest.mark.parametrize(
    ("declared", "status", "code"),
    [
        (b"9" * 5000, 413, "payload_too_large"),  # past int()'s 4,300 digits: still a length, too large
        (b"0" * 5000 + b"13", 202, None),  # the body's true length, with leading zeros
        ("²".encode("latin-1"), 400, "bad_request"),  # str.isdigit() says yes, int() says no
    ],
    ids=["5000-digits", "leading-zeros", "superscript-two"],
)
def test_a_declared_length_is_ascii_digits_of_any_size(
    api: ApiHarness, tenant: dict[str, str], declared: bytes, status: int, code: str | None
) -> None:
    headers = {**tenant, "Content-Type": "application/json", "Content-Length": declared}
    response = send_raw(api, "POST", "/v1/jobs", headers, b'{"epochs": 2}')
    if code is None:
        assert response.status_code == status, response.text
    else:
        assert_problem(response, status, code)


DEEP_JSON = "[" * 2000 + "]" * 2000  # about 4 KB, nested past Python's recursion limit for json.loads


@pytest.mark.parametrize(
    "body",
    ['{"epochs": ' + DEEP_JSON + "}", "[" * 100_000, '{"a": ' * 2000 + "1" + "}" * 2000],
    ids=["nested-array", "unclosed", "nested-object"],
)
def test_a_deeply_nested_json_body_is_a_422_that_says_so(
    api: ApiHarness, tenant: dict[str, str], body: str
) -> None:
    response = api.client.post(
        "/v1/jobs", content=body, headers={**tenant, "Content-Type": "application/json"}
    )
    detail = assert_problem(response, 422, "invalid_request")["detail"]
    assert "JSON nested too deeply" in detail


def test_a_cursor_holding_deeply_nested_json_is_not_one_we_handed_out() -> None:
    for nested in (DEEP_JSON.encode(), b"[" * 100_000):
        with pytest.raises(ProblemError) as raised:
            decode_cursor(base64.urlsafe_b64encode(nested).decode())
        assert raised.value.status == 400 and raised.value.code == "invalid_cursor"


def test_the_submission_mirrors_train_config_less_execution_options() -> None:
    expected = {f.name for f in fields(TrainConfig)} - EXECUTION_ONLY_FIELDS
    assert set(JobSubmission.model_fields) == expected


def test_submit_answers_202_and_enqueues_only_after_commit(api: ApiHarness, tenant: dict[str, str]) -> None:
    response = api.client.post(
        "/v1/jobs", json={"dataset": "decoy-shapes", "epochs": 2, "mode": "both"}, headers=tenant
    )
    assert response.status_code == 202, response.text
    job = response.json()
    assert response.headers["location"] == f"/v1/jobs/{job['id']}" == job["links"]["job"]
    assert int(response.headers["retry-after"]) > 0
    assert job["state"] == "queued" and job["terminal"] is False and job["attempt"] == 0
    assert job["spec"]["dataset"] == "decoy-shapes" and job["spec"]["mode"] == "both"
    assert job["progress"]["fraction"] == 0.0 and job["progress"]["epochs"] == 2
    assert api.enqueued.calls[-1] == uuid.UUID(job["id"])
    assert api.enqueued.committed_when_called[-1], "enqueue_training ran before the job row was committed"
    with api.sessions() as session:
        stored = session.get_one(Job, uuid.UUID(job["id"]))
    assert TrainConfig.from_dict(stored.spec).epochs == 2  # the worker reads the spec back as a TrainConfig
    assert api.client.get(response.headers["location"], headers=tenant).json()["id"] == job["id"]


@pytest.mark.parametrize(
    ("spec", "option"),
    [
        ({"dataset": "decoy-mnist", "prototype_mask": "decoy"}, "prototype_mask"),
        ({"target_layer": "features.2", "cam_batch_statistics": "constant"}, "cam_batch_statistics"),
    ],
)
def test_the_study_options_are_stored_as_submitted(
    api: ApiHarness, tenant: dict[str, str], spec: dict[str, str], option: str
) -> None:
    """Decoy-masked prototypes on a decoy dataset; per-image loss CAMs at a layer before BatchNorm."""
    job = submit(api, tenant, **spec)
    assert job["spec"][option] == spec[option]
    with api.sessions() as session:
        stored = session.get_one(Job, uuid.UUID(str(job["id"])))
    assert getattr(TrainConfig.from_dict(stored.spec), option) == spec[option]
    assert submit(api, tenant)["spec"][option] == getattr(TrainConfig(), option)  # the default otherwise


@pytest.mark.parametrize(
    ("spec", "warned"),
    [
        ({"model": "resnet18", "mode": "batchcam", "target_layer": "layer3"}, True),
        ({"model": "resnet18", "mode": "baseline", "target_layer": "layer3"}, False),  # no CAM loss
        ({"model": "resnet18", "mode": "batchcam", "target_layer": "layer4"}, False),
        # Statistics held constant in the loss's CAMs: they are per-image, nothing to warn about.
        (
            {
                "model": "resnet18",
                "mode": "batchcam",
                "target_layer": "layer3",
                "cam_batch_statistics": "constant",
            },
            False,
        ),
    ],
)
def test_a_cam_loss_through_batchnorm_is_accepted_with_a_warning_event(
    api: ApiHarness, tenant: dict[str, str], spec: dict[str, object], warned: bool
) -> None:
    job = submit(api, tenant, **spec)
    with api.sessions() as session:
        events = session.scalars(select(JobEvent).where(JobEvent.job_id == uuid.UUID(str(job["id"])))).all()
    warnings = [event.data["message"] for event in events if event.type == "warning"]
    assert job["state"] == "queued" and len(warnings) == int(warned)
    if warned:
        assert warnings[0].startswith("CAM layer 'layer3' is followed by BatchNorm (layer4.0.bn1,")


def test_a_failing_broker_still_answers_202_and_leaves_the_job_queued(
    api: ApiHarness, tenant: dict[str, str]
) -> None:
    api.enqueued.fail = True
    try:
        job = submit(api, tenant)
    finally:
        api.enqueued.fail = False
    assert api.client.get(f"/v1/jobs/{job['id']}", headers=tenant).json()["state"] == "queued"


@pytest.mark.parametrize(
    ("spec", "status", "code"),
    [
        ({"model": "vgg16"}, 422, "unknown_model"),
        ({"metric": "l7"}, 422, "unknown_metric"),
        ({"mode": "magic"}, 422, "unknown_mode"),
        ({"dataset": "imagenet"}, 422, "unknown_dataset"),
        ({"dataset": str(uuid.uuid4())}, 422, "unknown_dataset"),
        ({"epochs": 0}, 422, "invalid_config"),
        ({"epochs": 5000}, 422, "invalid_config"),
        ({"lr": -1}, 422, "invalid_config"),
        ({"device": "cuda"}, 422, "invalid_request"),  # execution-only: not the client's to choose
        ({"epochs": 2, "colour": "blue"}, 422, "invalid_request"),
        ({"epochs": "many"}, 422, "invalid_request"),
        ({"target_layer": "layer9"}, 422, "invalid_layer"),  # before queueing: no job fails later
        ({"prototype_mask": "clean"}, 422, "invalid_config"),
        ({"prototype_mask": "decoy"}, 422, "invalid_config"),  # shapes has no decoy patch to mask
        ({"cam_batch_statistics": "frozen"}, 422, "invalid_config"),
    ],
)
def test_invalid_submissions_are_problems_with_a_stable_type(
    api: ApiHarness, tenant: dict[str, str], spec: dict[str, object], status: int, code: str
) -> None:
    calls_before = len(api.enqueued.calls)
    body = assert_problem(api.client.post("/v1/jobs", json=spec, headers=tenant), status, code)
    assert len(api.enqueued.calls) == calls_before
    if code == "invalid_request":
        assert body["errors"] and all(error["location"][0] == "body" for error in body["errors"])
    else:
        assert str(next(iter(spec.values()))) in body["detail"]  # the CLI's message, naming the value


def test_a_nul_byte_in_a_layer_name_is_a_problem_not_a_500(api: ApiHarness, tenant: dict[str, str]) -> None:
    assert_problem(
        api.client.post("/v1/jobs", json={"target_layer": "features\u0000"}, headers=tenant),
        422,
        "invalid_layer",
    )


def test_the_wording_is_the_command_lines(api: ApiHarness, tenant: dict[str, str]) -> None:
    body = api.client.post("/v1/jobs", json={"model": "vgg16"}, headers=tenant).json()
    with pytest.raises(Exception) as raised:
        TrainConfig(model="vgg16")
    assert body["detail"] == str(raised.value)


def test_a_malformed_json_body_is_a_problem(api: ApiHarness, tenant: dict[str, str]) -> None:
    response = api.client.post(
        "/v1/jobs", content=b"{not json", headers={**tenant, "Content-Type": "application/json"}
    )
    assert_problem(response, 422, "invalid_request")


def test_idempotency_replays_refuses_other_bodies_and_reports_in_progress(
    api: ApiHarness, tenant: dict[str, str]
) -> None:
    key = {"Idempotency-Key": f"k-{uuid.uuid4()}"}
    first = api.client.post("/v1/jobs", json={"epochs": 3}, headers={**tenant, **key})
    again = api.client.post("/v1/jobs", json={"epochs": 3}, headers={**tenant, **key})
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json() and again.headers["location"] == first.headers["location"]
    assert again.headers["idempotent-replayed"] == "true"
    assert api.enqueued.calls.count(uuid.UUID(first.json()["id"])) == 1  # replays enqueue nothing
    assert api.client.get("/v1/jobs", headers=tenant).json()["items"].__len__() == 1

    assert_problem(
        api.client.post("/v1/jobs", json={"epochs": 4}, headers={**tenant, **key}),
        422,
        "idempotency_key_reused",
    )

    other_tenant = api.new_tenant()  # keys are per tenant: the same key elsewhere is a fresh request
    assert api.client.post("/v1/jobs", json={"epochs": 4}, headers={**other_tenant, **key}).status_code == 202

    busy = {"Idempotency-Key": f"busy-{uuid.uuid4()}"}
    with transaction(api.sessions) as session:  # a request holding the key, not finished yet
        session.add(
            IdempotencyRecord(
                tenant_id=api.tenant_id(tenant),
                key=busy["Idempotency-Key"],
                method_path="POST /v1/jobs",
                request_hash=_fingerprint({"epochs": 3}),
                created_at=datetime.now(UTC),
            )
        )
    conflict = api.client.post("/v1/jobs", json={"epochs": 3}, headers={**tenant, **busy})
    assert_problem(conflict, 409, "idempotency_key_in_progress")
    assert "retry-after" in conflict.headers


def test_a_claim_whose_request_died_is_taken_over(api: ApiHarness, tenant: dict[str, str]) -> None:
    key = f"stale-{uuid.uuid4()}"
    with transaction(api.sessions) as session:
        session.add(
            IdempotencyRecord(
                tenant_id=api.tenant_id(tenant),
                key=key,
                method_path="POST /v1/jobs",
                request_hash=_fingerprint({"epochs": 3}),
                created_at=datetime.now(UTC) - timedelta(minutes=5),
            )
        )
    response = api.client.post("/v1/jobs", json={"epochs": 3}, headers={**tenant, "Idempotency-Key": key})
    assert response.status_code == 202
    replay = api.client.post("/v1/jobs", json={"epochs": 3}, headers={**tenant, "Idempotency-Key": key})
    assert replay.json()["id"] == response.json()["id"]


def test_a_rejected_request_does_not_burn_its_idempotency_key(
    api: ApiHarness, tenant: dict[str, str]
) -> None:
    key = {"Idempotency-Key": f"k-{uuid.uuid4()}"}
    assert api.client.post("/v1/jobs", json={"model": "nope"}, headers={**tenant, **key}).status_code == 422
    assert api.client.post("/v1/jobs", json={"epochs": 1}, headers={**tenant, **key}).status_code == 202


def _fingerprint(payload: dict[str, object]) -> str:
    return request_fingerprint("POST /v1/jobs", payload)


def test_pagination_walks_every_job_newest_first_with_a_state_filter(api: ApiHarness) -> None:
    headers = api.new_tenant()
    tenant_id = api.tenant_id(headers)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    states = [JobState.QUEUED, JobState.SUCCEEDED, JobState.FAILED] * 4  # 12 jobs
    ids = [
        insert_job(
            api.sessions, tenant_id, state=state, created_at=base + timedelta(seconds=i // 2)
        )  # ties on time
        for i, state in enumerate(states)
    ]
    seen = walk(api, "/v1/jobs?limit=5", headers)
    assert len(seen) == 12 and set(seen) == {str(i) for i in ids}
    with api.sessions() as session:
        expected = [
            str(job.id)
            for job in session.scalars(
                select(Job).where(Job.tenant_id == tenant_id).order_by(Job.created_at.desc(), Job.id.desc())
            )
        ]
    assert seen == expected

    finished = walk(api, "/v1/jobs?limit=3&state=succeeded&state=failed", headers)
    assert len(finished) == 8 and str(ids[0]) not in finished
    only_queued = api.client.get("/v1/jobs?state=queued&limit=100", headers=headers).json()
    assert (
        len(only_queued["items"]) == 4
        and only_queued["next_cursor"] is None
        and only_queued["links"]["next"] is None
    )

    assert_problem(api.client.get("/v1/jobs?cursor=bm9wZQ", headers=headers), 400, "invalid_cursor")
    assert_problem(api.client.get("/v1/jobs?limit=101", headers=headers), 422, "invalid_request")
    assert_problem(api.client.get("/v1/jobs?state=sleeping", headers=headers), 422, "invalid_request")


def walk(api: ApiHarness, url: str, headers: dict[str, str]) -> list[str]:
    seen: list[str] = []
    next_url: str | None = url
    while next_url is not None:
        page = api.client.get(next_url, headers=headers)
        assert page.status_code == 200, page.text
        seen += [item["id"] for item in page.json()["items"]]
        next_url = page.json()["links"]["next"]
    return seen


def test_a_running_job_shows_progress_eta_and_metrics_history(
    api: ApiHarness, tenant: dict[str, str]
) -> None:
    job_id = uuid.UUID(str(submit(api, tenant, epochs=3)["id"]))
    now = datetime.now(UTC)
    with transaction(api.sessions) as session:
        lease = claim(session, job_id, "worker-1", LEASE, now)
    assert lease is not None
    # What a worker reports after 30 of 90 steps in 15 s (its ETA: 30 s more at that pace).
    progress = progress_payload(Progress("train", 1, 3, step=30, total_steps=90, elapsed_s=15.0, loss=0.5))
    with transaction(api.sessions) as session:
        heartbeat(session, lease, LEASE, now, progress)
        record_epoch(session, lease, 1, {"epoch": 1, "test_accuracy": 0.8, "train_loss": 0.6}, now)
    job = api.client.get(f"/v1/jobs/{job_id}", headers=tenant).json()
    assert (job["state"], job["phase"], job["attempt"], job["terminal"]) == ("running", "train", 1, False)
    assert job["progress"]["fraction"] == pytest.approx(1 / 3) and job["progress"]["epoch"] == 2
    assert job["progress"]["elapsed_seconds"] == 15.0 and job["progress"]["eta_seconds"] == pytest.approx(
        30.0
    )
    assert job["latest_metrics"]["test_accuracy"] == 0.8 and job["started_at"] is not None
    history = api.client.get(f"/v1/jobs/{job_id}/metrics", headers=tenant).json()
    assert [(e["epoch"], e["metrics"]["test_accuracy"]) for e in history["epochs"]] == [(1, 0.8)]

    with transaction(api.sessions) as session:
        finish(
            session,
            lease,
            JobState.FAILED,
            now,
            reason=FailureReason.NAN_LOSS,
            message="loss became NaN at step 31",
        )
    failed = api.client.get(f"/v1/jobs/{job_id}", headers=tenant).json()
    assert failed["terminal"] and failed["failure"] == {
        "reason": "nan_loss",
        "message": "loss became NaN at step 31",
    }
    assert failed["progress"]["eta_seconds"] is None and failed["finished_at"] is not None


def test_cancel_a_queued_job_at_once_and_a_running_one_cooperatively(
    api: ApiHarness, tenant: dict[str, str]
) -> None:
    queued = submit(api, tenant)
    response = api.client.post(f"/v1/jobs/{queued['id']}/cancel", headers=tenant)
    assert (
        response.status_code == 202
        and response.json()["state"] == "cancelled"
        and response.json()["terminal"]
    )
    assert api.client.post(f"/v1/jobs/{queued['id']}/cancel", headers=tenant).json()["state"] == "cancelled"

    running_id = uuid.UUID(str(submit(api, tenant)["id"]))
    with transaction(api.sessions) as session:
        lease = claim(session, running_id, "worker-2", LEASE, datetime.now(UTC))
    assert lease is not None
    cancelling = api.client.post(f"/v1/jobs/{running_id}/cancel", headers=tenant).json()
    assert (
        cancelling["state"] == "cancelling" and not cancelling["terminal"] and cancelling["cancel_requested"]
    )
    assert (
        api.client.get(f"/v1/jobs/{running_id}", headers=tenant).json()["state"] == "cancelling"
    )  # not before the worker stops
    with transaction(api.sessions) as session:
        assert finish(session, lease, JobState.CANCELLED, datetime.now(UTC))
    assert api.client.get(f"/v1/jobs/{running_id}", headers=tenant).json()["state"] == "cancelled"

    done_id = insert_job(api.sessions, api.tenant_id(tenant), state=JobState.SUCCEEDED)
    assert_problem(api.client.post(f"/v1/jobs/{done_id}/cancel", headers=tenant), 409, "job_already_finished")


def test_another_tenants_job_is_404_on_every_endpoint(api: ApiHarness, tenant: dict[str, str]) -> None:
    job = submit(api, tenant)
    intruder = api.new_tenant()
    for method, path in [
        ("GET", f"/v1/jobs/{job['id']}"),
        ("GET", f"/v1/jobs/{job['id']}/metrics"),
        ("GET", f"/v1/jobs/{job['id']}/events"),
        ("POST", f"/v1/jobs/{job['id']}/cancel"),
        ("GET", f"/v1/jobs/{uuid.uuid4()}"),
    ]:
        assert_problem(api.client.request(method, path, headers=intruder), 404, "job_not_found")
    assert api.client.get("/v1/jobs", headers=intruder).json()["items"] == []
    assert api.client.get(f"/v1/jobs/{job['id']}", headers=tenant).json()["state"] == "queued"  # untouched
