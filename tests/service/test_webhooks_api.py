"""``/v1/webhooks`` over HTTP on a real Postgres: the secret shown once, rotation, lists, deletion,
deliveries with their attempts and redelivery, tenant isolation, and the receivers refused (SSRF)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from persistence.states import JobState
from service.api_support import ApiHarness, api_harness, assert_problem
from service.webhook_receiver import webhook_receiver
from service.webhook_support import WakeRecorder, deliveries, run_job, sender
from worker.webhooks.sender import deliver_due

LOCAL_URL = "http://127.0.0.1:9/hook"


@pytest.fixture
def woken() -> WakeRecorder:
    return WakeRecorder()


@pytest.fixture
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, woken: WakeRecorder) -> Iterator[ApiHarness]:
    monkeypatch.setenv("BATCHCAM_WEBHOOK_ALLOWED_NETWORKS", '["127.0.0.1/32"]')
    monkeypatch.setenv("BATCHCAM_WEBHOOK_ALLOW_HTTP", "true")
    with api_harness(tmp_path, enqueue_webhooks=woken) as harness:
        yield harness


def register(api: ApiHarness, headers: dict[str, str], url: str = LOCAL_URL, **body: object) -> dict:  # type: ignore[type-arg]
    response = api.client.post(
        "/v1/webhooks", headers=headers, json={"url": url, "events": ["job.cancelled"], **body}
    )
    assert response.status_code == 201, response.text
    created: dict = response.json()  # type: ignore[type-arg]
    assert response.headers["location"] == f"/v1/webhooks/{created['id']}"
    return created


def test_the_secret_is_shown_once_and_rotation_shows_a_new_one(api: ApiHarness) -> None:
    headers = api.new_tenant()
    created = register(api, headers, events=["job.failed", "job.failed", "job.epoch"], description="ci")
    assert created["secret"].startswith("whsec_") and created["events"] == ["job.epoch", "job.failed"]
    assert created["description"] == "ci" and created["secret_rotated_at"] is None
    Webhook(created["secret"])  # the form the reference library reads
    shown = api.client.get(f"/v1/webhooks/{created['id']}", headers=headers).json()
    assert "secret" not in shown and shown["url"] == LOCAL_URL
    listed = api.client.get("/v1/webhooks", headers=headers).json()
    assert [item["id"] for item in listed["items"]] == [created["id"]]
    assert "secret" not in listed["items"][0]

    rotated = api.client.post(f"/v1/webhooks/{created['id']}/rotate-secret", headers=headers)
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["secret"].startswith("whsec_") and rotated.json()["secret"] != created["secret"]
    shown = api.client.get(f"/v1/webhooks/{created['id']}", headers=headers).json()
    assert shown["previous_secret_expires_at"] == rotated.json()["previous_secret_expires_at"]
    assert shown["secret_rotated_at"] is not None and "secret" not in shown


def test_lists_are_cursor_pages(api: ApiHarness) -> None:
    headers = api.new_tenant()
    ids = [register(api, headers)["id"] for _ in range(3)]
    first = api.client.get("/v1/webhooks?limit=2", headers=headers).json()
    second = api.client.get(first["links"]["next"], headers=headers).json()
    assert [i["id"] for i in first["items"] + second["items"]] == ids[::-1]
    assert second["next_cursor"] is None
    assert_problem(api.client.get("/v1/webhooks?cursor=nonsense", headers=headers), 400, "invalid_cursor")


def test_an_idempotent_retry_registers_once(api: ApiHarness) -> None:
    headers = api.new_tenant() | {"Idempotency-Key": "hook-1"}
    first = register(api, headers)
    again = api.client.post(
        "/v1/webhooks", headers=headers, json={"url": LOCAL_URL, "events": ["job.cancelled"]}
    )
    assert again.status_code == 201 and again.json() == first
    assert again.headers["idempotent-replayed"] == "true"
    assert len(api.client.get("/v1/webhooks", headers=headers).json()["items"]) == 1


def test_deliveries_show_their_attempts_and_are_sent_again_with_the_same_webhook_id(
    api: ApiHarness, woken: WakeRecorder
) -> None:
    headers = api.new_tenant()
    tenant = api.tenant_id(headers)
    with webhook_receiver() as receiver:
        receiver.statuses = [500]
        hook = register(api, headers, url=receiver.url)
        run_job(api.sessions, tenant, JobState.CANCELLED, epochs=0)
        context = sender(api.sessions, schedule=[0.0])
        assert deliver_due(context) == 2  # a 500, then a 200
        page = api.client.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=headers).json()
        (delivery,) = page["items"]
        assert delivery["status"] == "succeeded" and delivery["event_type"] == "job.cancelled"
        assert [a["status_code"] for a in delivery["attempts"]] == [500, 200]
        assert delivery["attempts"][1]["response"] == "ok" and delivery["payload"]["type"] == "job.cancelled"
        woken.delays.clear()
        path = f"/v1/webhooks/{hook['id']}/deliveries/{delivery['id']}/redeliver"
        assert delivery["links"]["redeliver"] == path
        again = api.client.post(path, headers=headers)
        assert again.status_code == 202, again.text
        assert again.json()["status"] == "pending" and woken.delays == [0.0]  # woken after the commit
        assert deliver_due(context) == 1
        requests = receiver.wait_for(3)
    assert {r.headers["webhook-id"] for r in requests} == {delivery["message_id"]}
    filtered = api.client.get(f"/v1/webhooks/{hook['id']}/deliveries?status=failed", headers=headers)
    assert filtered.json()["items"] == []


def test_deleting_an_endpoint_stops_its_pending_deliveries(api: ApiHarness) -> None:
    headers = api.new_tenant()
    hook = register(api, headers)
    run_job(api.sessions, api.tenant_id(headers), JobState.CANCELLED, epochs=0)
    endpoint_id = uuid.UUID(hook["id"])
    assert [d.status for d in deliveries(api.sessions, endpoint_id)] == ["pending"]
    assert api.client.delete(f"/v1/webhooks/{hook['id']}", headers=headers).status_code == 204
    assert deliveries(api.sessions, endpoint_id) == []
    assert deliver_due(sender(api.sessions)) == 0
    assert_problem(api.client.get(f"/v1/webhooks/{hook['id']}", headers=headers), 404, "webhook_not_found")


def test_another_tenant_can_neither_see_nor_change_an_endpoint(api: ApiHarness) -> None:
    owner, other = api.new_tenant(), api.new_tenant()
    hook = register(api, owner)
    run_job(api.sessions, api.tenant_id(owner), JobState.CANCELLED, epochs=0)
    (delivery,) = deliveries(api.sessions, uuid.UUID(hook["id"]))
    base = f"/v1/webhooks/{hook['id']}"
    assert api.client.get("/v1/webhooks", headers=other).json()["items"] == []
    for method, path in [
        ("GET", base),
        ("DELETE", base),
        ("POST", f"{base}/rotate-secret"),
        ("GET", f"{base}/deliveries"),
    ]:
        assert_problem(api.client.request(method, path, headers=other), 404, "webhook_not_found")
    redeliver = f"{base}/deliveries/{delivery.id}/redeliver"
    assert_problem(api.client.post(redeliver, headers=other), 404, "webhook_delivery_not_found")
    their_hook = register(api, other)
    wrong_endpoint = f"/v1/webhooks/{their_hook['id']}/deliveries/{delivery.id}/redeliver"
    assert_problem(api.client.post(wrong_endpoint, headers=other), 404, "webhook_delivery_not_found")
    assert api.client.get(base, headers=owner).status_code == 200


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://10.1.2.3/hook", "not a public address"),
        ("http://192.168.0.1/hook", "not a public address"),
        ("http://169.254.169.254/latest/meta-data", "not a public address"),
        ("http://[::1]/hook", "not a public address"),
        ("http://0.0.0.0/hook", "not a public address"),
        ("http://224.0.0.1/hook", "not a public address"),
        ("http://127.0.0.2/hook", "not a public address"),  # loopback beyond the allowlist
        ("http://[::ffff:10.0.0.1]/hook", "not a public address"),  # IPv4-mapped IPv6
        ("ftp://example.com/hook", "must start with"),
        ("https://user:pw@example.com/hook", "credentials"),
        ("https://host.invalid/hook", "cannot be resolved"),
        ("not a url", "must start with"),
    ],
)
def test_receivers_that_are_not_public_are_refused(api: ApiHarness, url: str, says: str) -> None:
    response = api.client.post(
        "/v1/webhooks", headers=api.new_tenant(), json={"url": url, "events": ["job.failed"]}
    )
    assert says in assert_problem(response, 422, "webhook_url_refused")["detail"]


def test_http_and_loopback_need_the_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BATCHCAM_WEBHOOK_ALLOWED_NETWORKS", raising=False)
    monkeypatch.delenv("BATCHCAM_WEBHOOK_ALLOW_HTTP", raising=False)
    with api_harness(tmp_path) as api:
        headers = api.new_tenant()
        for url, says in [(LOCAL_URL, "must start with https://"), ("https://127.0.0.1/h", "not a public")]:
            response = api.client.post(
                "/v1/webhooks", headers=headers, json={"url": url, "events": ["job.failed"]}
            )
            assert says in assert_problem(response, 422, "webhook_url_refused")["detail"]


def test_unknown_events_and_fields_are_422s(api: ApiHarness) -> None:
    headers = api.new_tenant()
    for body in [
        {"url": LOCAL_URL, "events": ["job.exploded"]},
        {"url": LOCAL_URL, "events": []},
        {"url": LOCAL_URL, "events": ["job.failed"], "secret": "mine"},
    ]:
        assert api.client.post("/v1/webhooks", headers=headers, json=body).status_code == 422


def test_a_second_rotation_keeps_the_secret_receivers_hold(api: ApiHarness) -> None:
    headers = api.new_tenant()
    with webhook_receiver() as receiver:
        hook = register(api, headers, url=receiver.url)
        rotate = f"/v1/webhooks/{hook['id']}/rotate-secret"
        unseen = api.client.post(rotate, headers=headers).json()  # say its answer was lost
        latest = api.client.post(rotate, headers=headers).json()
        assert latest["previous_secret_expires_at"] == unseen["previous_secret_expires_at"]
        run_job(api.sessions, api.tenant_id(headers), JobState.CANCELLED, epochs=0)
        deliver_due(sender(api.sessions))
        (received,) = receiver.wait_for(1)
    for secret in (hook["secret"], latest["secret"]):
        Webhook(secret).verify(received.body, received.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(unseen["secret"]).verify(received.body, received.headers)
