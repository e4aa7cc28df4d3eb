"""``GET /v1/explanations``: cursor pages newest first (each row exactly once, also while rows are being
added), state and model filters kept in ``links.next``, summaries without per-image results, tenant
isolation, problems for values it does not accept, and paging on the embedded SQLite default too.
Rows are written directly, in chosen states
and at chosen times (``test_api_explanations`` lists explanations that really ran)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select
from sqlalchemy.orm import sessionmaker

from api.app import create_app
from api.explanations.schemas import ExplanationResource, ExplanationSummary
from persistence.api_keys import create_api_key
from persistence.db import transaction
from persistence.models import Explanation
from persistence.objects import LocalObjectStore
from persistence.settings import Settings
from persistence.states import FailureReason, JobState
from service.api_support import ApiHarness, api_harness, assert_problem, insert_job
from service.explanation_rows import insert_explanation, insert_model
from service.postgres import run_alembic

BASE = datetime(2026, 1, 1, tzinfo=UTC)
STATES = [
    JobState.QUEUED,
    JobState.RUNNING,
    JobState.SUCCEEDED,
    JobState.FAILED,
]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiHarness]:
    with api_harness(tmp_path_factory.mktemp("api-explanation-list")) as harness:
        yield harness


def walk(api: ApiHarness, url: str, headers: dict[str, str]) -> list[str]:
    """Every id on every page, following links.next to the end."""
    seen: list[str] = []
    next_url: str | None = url
    while next_url is not None:
        page = api.client.get(next_url, headers=headers)
        assert page.status_code == 200, page.text
        body = page.json()
        seen += [item["id"] for item in body["items"]]
        next_url = body["links"]["next"]
        assert (next_url is None) == (body["next_cursor"] is None)
    return seen


def newest_first(api: ApiHarness, tenant_id: uuid.UUID, *conditions: Any) -> list[str]:
    with api.sessions() as session:
        rows = session.scalars(
            select(Explanation.id)
            .where(Explanation.tenant_id == tenant_id, *conditions)
            .order_by(Explanation.created_at.desc(), Explanation.id.desc())
        )
        return [str(row) for row in rows]


def populate(api: ApiHarness, tenant_id: uuid.UUID, count: int = 12) -> tuple[uuid.UUID, uuid.UUID]:
    """``count`` explanations over two models, cycling through the states; pairs share a created_at."""
    models = insert_model(api.sessions, tenant_id), insert_model(api.sessions, tenant_id)
    for i in range(count):
        insert_explanation(
            api.sessions,
            tenant_id,
            models[i % 3 == 0],  # a third of them by the second model
            state=STATES[i % len(STATES)],
            created_at=BASE + timedelta(seconds=i // 2),  # ties on time: the id breaks them
        )
    return models


def test_pages_walk_every_explanation_once_newest_first(api: ApiHarness) -> None:
    headers = api.new_tenant()
    tenant_id = api.tenant_id(headers)
    populate(api, tenant_id)
    expected = newest_first(api, tenant_id)
    assert len(expected) == 12
    assert walk(api, "/v1/explanations?limit=5", headers) == expected
    assert walk(api, "/v1/explanations?limit=1", headers) == expected
    everything = api.client.get("/v1/explanations?limit=100", headers=headers).json()
    assert [item["id"] for item in everything["items"]] == expected and everything["links"]["next"] is None


def test_rows_added_while_paging_neither_repeat_nor_shift_the_walk(api: ApiHarness) -> None:
    headers = api.new_tenant()
    tenant_id = api.tenant_id(headers)
    model_id, _ = populate(api, tenant_id, count=6)
    expected = newest_first(api, tenant_id)
    first = api.client.get("/v1/explanations?limit=2", headers=headers).json()
    newer = insert_explanation(api.sessions, tenant_id, model_id, created_at=BASE + timedelta(days=1))
    rest = walk(api, first["links"]["next"], headers)
    assert [item["id"] for item in first["items"]] + rest == expected
    assert str(newer) not in rest and walk(api, "/v1/explanations", headers)[0] == str(newer)


def test_state_and_model_filters_narrow_the_list_and_survive_paging(api: ApiHarness) -> None:
    headers = api.new_tenant()
    tenant_id = api.tenant_id(headers)
    first_model, second_model = populate(api, tenant_id)

    ended = walk(api, "/v1/explanations?limit=2&state=succeeded&state=failed", headers)
    assert ended == newest_first(api, tenant_id, Explanation.state.in_(["succeeded", "failed"]))
    assert len(ended) == 6
    page = api.client.get("/v1/explanations?limit=2&state=succeeded&state=failed", headers=headers).json()
    assert "state=succeeded&state=failed" in page["links"]["next"]
    assert {item["state"] for item in page["items"]} <= {"succeeded", "failed"}

    by_second = walk(api, f"/v1/explanations?limit=2&model_id={second_model}", headers)
    assert by_second == newest_first(api, tenant_id, Explanation.model_id == second_model)
    assert len(by_second) == 4
    queued_by_first = walk(api, f"/v1/explanations?limit=1&model_id={first_model}&state=queued", headers)
    assert queued_by_first == newest_first(
        api, tenant_id, Explanation.model_id == first_model, Explanation.state == "queued"
    )
    assert len(queued_by_first) == 2


def test_summaries_are_the_resource_without_per_image_results(api: ApiHarness) -> None:
    headers = api.new_tenant()
    tenant_id = api.tenant_id(headers)
    model_id = insert_model(api.sessions, tenant_id)
    finished_at = BASE + timedelta(seconds=3)
    failed = insert_explanation(
        api.sessions,
        tenant_id,
        model_id,
        count=3,
        method="layercam",
        state=JobState.FAILED,
        attempt=2,
        failure_reason=FailureReason.INFRASTRUCTURE,
        failure_message="object store at s3://x not reachable",
        results=[{"index": 0, "error": {"code": "x", "message": "never listed"}}],
        created_at=BASE,
        finished_at=finished_at,
    )
    queued = insert_explanation(api.sessions, tenant_id, model_id, created_at=BASE + timedelta(seconds=1))
    items = api.client.get("/v1/explanations", headers=headers).json()["items"]
    summary_fields = set(ExplanationResource.model_fields) - {"items", "failed_items"}
    assert set(ExplanationSummary.model_fields) == summary_fields
    assert all(set(item) == summary_fields for item in items)
    assert [item["id"] for item in items] == [str(queued), str(failed)]
    assert items[1] == {
        "id": str(failed),
        "model_id": str(model_id),
        "state": "failed",
        "terminal": True,
        "method": "layercam",
        "count": 3,
        "metrics": [],  # a row written before metrics existed lists none
        "failure": {"reason": "infrastructure", "message": "object store at s3://x not reachable"},
        "attempt": 2,
        "created_at": "2026-01-01T00:00:00Z",
        "finished_at": "2026-01-01T00:00:03Z",
        "links": {"explanation": f"/v1/explanations/{failed}", "model": f"/v1/models/{model_id}"},
    }
    assert items[0]["state"] == "queued" and items[0]["terminal"] is False
    assert items[0]["failure"] is None and items[0]["finished_at"] is None and items[0]["count"] == 2


def test_another_tenants_explanations_never_appear(api: ApiHarness) -> None:
    headers, stranger = api.new_tenant(), api.new_tenant()
    tenant_id, stranger_id = api.tenant_id(headers), api.tenant_id(stranger)
    populate(api, tenant_id, count=5)
    mine = newest_first(api, tenant_id)
    stranger_model = insert_model(api.sessions, stranger_id)
    # Created amid this tenant's rows, so pages would straddle them if the tenant condition leaked.
    at = [BASE + timedelta(seconds=s) for s in (0, 1, 2)]
    theirs = [str(insert_explanation(api.sessions, stranger_id, stranger_model, created_at=t)) for t in at]
    assert walk(api, "/v1/explanations?limit=2", headers) == mine
    assert walk(api, "/v1/explanations?limit=2", stranger) == newest_first(api, stranger_id)
    assert set(walk(api, "/v1/explanations", stranger)) == set(theirs)
    # Naming the other tenant's model filters down to nothing rather than telling that it exists.
    assert walk(api, f"/v1/explanations?model_id={stranger_model}", headers) == []
    assert walk(api, f"/v1/explanations?model_id={uuid.uuid4()}", headers) == []
    assert_problem(api.client.get("/v1/explanations"), 401, "unauthorized")


@pytest.mark.parametrize(
    ("query", "status", "code", "says"),
    [
        ("cursor=bm9wZQ", 400, "invalid_cursor", "links.next"),
        ("cursor=%21%21", 400, "invalid_cursor", "links.next"),
        (
            "state=paused",
            422,
            "invalid_request",
            "'running', 'cancelling', 'succeeded', 'failed' or 'cancelled'",
        ),
        ("state=queued&state=sleeping", 422, "invalid_request", "'succeeded'"),
        ("model_id=resnet", 422, "invalid_request", "UUID"),
        ("limit=0", 422, "invalid_request", "limit"),
        ("limit=101", 422, "invalid_request", "100"),
    ],
)
def test_values_it_does_not_accept_are_problems_that_say_what_is(
    api: ApiHarness, query: str, status: int, code: str, says: str
) -> None:
    headers = api.new_tenant()
    body = assert_problem(api.client.get(f"/v1/explanations?{query}", headers=headers), status, code)
    assert says in body["detail"], body["detail"]


def test_pages_also_walk_on_the_embedded_sqlite_default(tmp_path: Path) -> None:
    """SQLite hands back naive datetimes; the cursors made of them must still be accepted."""
    url = f"sqlite:///{tmp_path / 'embedded.db'}"
    run_alembic(url, upgrade=True, revision="head")
    engine = create_engine(url)
    sessions = sessionmaker(engine, expire_on_commit=False)
    with transaction(sessions) as session:
        key = create_api_key(session, "embedded", "tests")
    tenant_id, headers = key.tenant_id, {"Authorization": f"Bearer {key.secret}"}
    model_id = insert_model(sessions, tenant_id)
    for i in range(5):
        insert_explanation(sessions, tenant_id, model_id, created_at=BASE + timedelta(seconds=i // 2))
        insert_job(sessions, tenant_id, created_at=BASE + timedelta(seconds=i // 2))
    settings = Settings(DATABASE_URL=url, BATCHCAM_STATE_DIR=tmp_path / "state")
    app = create_app(settings, enqueue_training=lambda _: None, object_store=LocalObjectStore(tmp_path / "o"))
    try:
        with TestClient(app) as client:
            for path, expected in (("/v1/explanations", 5), ("/v1/jobs", 6)):  # the model's job too
                seen: list[str] = []
                next_url: str | None = f"{path}?limit=2"
                while next_url is not None:
                    page = client.get(next_url, headers=headers)
                    assert page.status_code == 200, page.text
                    seen += [item["id"] for item in page.json()["items"]]
                    assert all(
                        item["created_at"].endswith("Z") or item["created_at"].endswith("+00:00")
                        for item in page.json()["items"]
                    ), "timestamps say they are UTC"
                    next_url = page.json()["links"]["next"]
                assert len(seen) == len(set(seen)) == expected, path
    finally:
        engine.dispose()
