"""API keys (hashed at rest, shown once, revocable) and how the HTTP API treats them; problem+json
for every error, a request id on every response, and an OpenAPI document without secrets."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from persistence.api_keys import (
    create_api_key,
    hash_key,
    list_api_keys,
    revoke_api_key,
    verify_api_key,
)
from persistence.db import transaction
from persistence.models import ApiKey, Tenant
from service.api_support import ApiHarness, api_harness, assert_problem, refused_within

REFUSED_WITHIN_S = 3.0  # a revocation's notification arrives in ms; the key cache's expiry is 2 s


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiHarness]:
    with api_harness(tmp_path_factory.mktemp("api-auth")) as harness:
        yield harness


def test_keys_are_random_shown_once_and_stored_only_as_a_hash(api: ApiHarness) -> None:
    with transaction(api.sessions) as session:
        first = create_api_key(session, "acme", "ci")
        second = create_api_key(session, "acme", "laptop")
    assert first.tenant_id == second.tenant_id  # the tenant was created once, on demand
    assert first.secret.startswith(f"bc_{first.prefix}_") and first.secret != second.secret
    with api.sessions() as session:
        row = session.scalars(select(ApiKey).where(ApiKey.id == first.id)).one()
        assert row.secret_hash == hash_key(first.secret) and first.secret not in row.secret_hash
        assert session.scalars(select(Tenant).where(Tenant.name == "acme")).one().id == first.tenant_id
        verified = verify_api_key(session, first.secret)
        assert verified is not None and verified.tenant_id == first.tenant_id and verified.key_id == first.id
        assert verify_api_key(session, first.secret + "x") is None
        assert verify_api_key(session, f"bc_{first.prefix}_wrong") is None
        assert verify_api_key(session, "not a key") is None
        listed = list_api_keys(session, "acme")
    assert [(k.name, k.prefix, k.revoked_at) for k in listed] == [
        ("ci", first.prefix, None),
        ("laptop", second.prefix, None),
    ]
    assert all(not hasattr(k, "secret") for k in listed)


def test_revoking_a_key_refuses_it_over_http(api: ApiHarness) -> None:
    with transaction(api.sessions) as session:
        key = create_api_key(session, "revokers", "soon-gone")
    headers = {"Authorization": f"Bearer {key.secret}"}
    assert api.client.get("/v1/jobs", headers=headers).status_code == 200
    with transaction(api.sessions) as session:
        assert revoke_api_key(session, key.prefix)
        assert not revoke_api_key(session, key.secret)  # already revoked (the whole key works as a name too)
        assert not revoke_api_key(session, "nosuchprefix")
    # The API remembered the key; the revocation's notification makes it forget (test_verified_keys).
    refused = refused_within(api, headers, seconds=REFUSED_WITHIN_S)
    body = assert_problem(refused, 401, "unauthorized")
    assert refused.headers["www-authenticate"].startswith("Bearer")
    assert key.secret not in refused.text and key.secret not in body["detail"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer bc_000000000000_nope"},
        {"Authorization": "Bearer garbage"},
        {"Authorization": "Basic dTpw"},
    ],
    ids=["missing", "unknown", "malformed", "not-bearer"],
)
def test_requests_without_a_valid_key_get_a_401_problem(api: ApiHarness, headers: dict[str, str]) -> None:
    for method, path in [
        ("GET", "/v1/jobs"),
        ("POST", "/v1/jobs"),
        ("GET", "/v1/datasets"),
        ("POST", "/v1/datasets"),
    ]:
        response = api.client.request(method, path, headers=headers)
        assert_problem(response, 401, "unauthorized")
        assert response.headers["www-authenticate"].startswith('Bearer realm="batchcam"')


def test_every_response_has_a_request_id_and_a_sane_one_is_kept(api: ApiHarness) -> None:
    generated = api.client.get("/healthz")
    assert len(generated.headers["x-request-id"]) == 32
    assert (
        api.client.get("/healthz", headers={"X-Request-ID": "trace-42"}).headers["x-request-id"] == "trace-42"
    )
    unsafe = api.client.get("/healthz", headers={"X-Request-ID": "x" * 65})
    assert unsafe.headers["x-request-id"] != "x" * 65


def test_unknown_routes_and_methods_are_problems(api: ApiHarness) -> None:
    assert_problem(api.client.get("/v1/nothing-here"), 404, "not_found")
    assert_problem(api.client.delete("/healthz"), 405, "method_not_allowed")


def test_a_bug_is_a_logged_500_problem_with_the_request_id(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, api: ApiHarness
) -> None:
    app = api.client.app

    def explode() -> None:
        raise RuntimeError("secret-token-123 leaked into an exception")

    app.router.add_api_route("/test-only/explode", explode)  # type: ignore[attr-defined]
    with TestClient(app, raise_server_exceptions=False) as client, caplog.at_level(logging.ERROR):
        response = client.get("/test-only/explode", headers={"X-Request-ID": "req-500"})
    body = assert_problem(response, 500, "internal_error")
    assert body["request_id"] == "req-500" and "secret-token-123" not in response.text
    assert any("req-500" in record.getMessage() for record in caplog.records)


def test_openapi_is_served_documents_problems_and_holds_no_secrets(api: ApiHarness) -> None:
    assert api.client.get("/docs").status_code == 200
    document = api.client.get("/openapi.json").json()
    submit = document["paths"]["/v1/jobs"]["post"]
    assert set(submit["responses"]["202"]["headers"]) == {"Location", "Retry-After"}
    assert "application/problem+json" in submit["responses"]["422"]["content"]
    assert document["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"
    state = document["components"]["schemas"]["JobResource"]["properties"]["state"]
    assert state["x-terminal-states"] == ["cancelled", "failed", "succeeded"]
    assert set(document["components"]["schemas"]["JobState"]["enum"]) >= {"queued", "cancelling", "cancelled"}
    submission = document["components"]["schemas"]["JobSubmission"]["properties"]
    assert not {"device", "num_workers", "initial_weights"} & set(submission)
    text = api.client.get("/openapi.json").text.lower()
    assert "postgresql" not in text and "password" not in text and "secret_access" not in text
