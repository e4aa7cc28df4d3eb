"""Model endpoints on a really trained model: description, prototypes, report, gallery and weights,
served from a real local object store with strong ETags, on a real Postgres."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from safetensors.torch import load as load_safetensors

from api.http.errors import ProblemError
from api.models.gallery import decode_position
from batchcam.data.dataset import as_model_input
from batchcam.weights import load_model
from persistence.states import JobState
from service.api_support import ApiHarness, api_harness, assert_problem
from service.trained_models import TrainedRun, decoded_png, store_model, train_tiny_run

IMMUTABLE = "private, max-age=31536000, immutable"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> TrainedRun:
    return train_tiny_run(tmp_path_factory.mktemp("trained") / "run")


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiHarness]:
    with api_harness(tmp_path_factory.mktemp("api-models")) as harness:
        yield harness


@pytest.fixture(scope="module")
def tenant(api: ApiHarness) -> dict[str, str]:
    return api.new_tenant()


@pytest.fixture(scope="module")
def model_id(api: ApiHarness, tenant: dict[str, str], run: TrainedRun) -> uuid.UUID:
    return store_model(api.sessions, api.store, api.tenant_id(tenant), run)


def test_a_model_describes_itself_and_its_job_links_to_it(
    api: ApiHarness, tenant: dict[str, str], model_id: uuid.UUID, run: TrainedRun
) -> None:
    response = api.client.get(f"/v1/models/{model_id}", headers=tenant)
    assert response.status_code == 200, response.text
    model = response.json()
    spec = run.report["model"]
    assert model["ready"] is True and model["architecture"] == "simple_cnn" == spec["architecture"]
    assert model["target_layer"] == spec["target_layer"] and model["adaptation"] == spec["adaptation"]
    assert model["input"] == {"channels": 1, "height": 28, "width": 28}
    assert [c["name"] for c in model["classes"]] == list(spec["class_names"])
    assert model["summary"]["accuracy"] == run.report["test"]["accuracy"]
    assert model["summary"]["misclassified_count"] == run.report["test"]["misclassified_count"]
    assert set(model["links"]["figures"]) == {
        "prototypes",
        "cam-prototypes",
        "misclassified",
        "training-curves",
        "cam-examples",
        "faithfulness",
    }
    headline, section = model["summary"]["faithfulness"], run.report["faithfulness"]
    assert headline["images"] == section["subset"]["size"]
    assert headline["deletion_auc"] == section["deletion"]["auc"]
    assert headline["road_combined"]["map"] == section["road"]["combined"]["map"]
    job = api.client.get(model["links"]["job"], headers=tenant).json()
    assert job["links"]["model"] == f"/v1/models/{model_id}" == model["links"]["model"]


def test_models_are_listed_newest_first_in_pages_for_their_tenant_only(
    api: ApiHarness, model_id: uuid.UUID, run: TrainedRun
) -> None:
    headers = api.new_tenant()
    tenant_id = api.tenant_id(headers)
    made = [store_model(api.sessions, api.store, tenant_id, run) for _ in range(3)]
    first = api.client.get("/v1/models?limit=2", headers=headers).json()
    rest = api.client.get(first["links"]["next"], headers=headers).json()
    assert [m["id"] for m in first["items"] + rest["items"]] == [str(m) for m in reversed(made)]
    assert rest["next_cursor"] is None and all(m["ready"] for m in first["items"])
    assert str(model_id) not in {m["id"] for m in first["items"] + rest["items"]}  # another tenant's
    assert api.client.get("/v1/models", headers=api.new_tenant()).json()["items"] == []


@pytest.mark.parametrize("kind", ["prototypes", "cam-prototypes"])
def test_model_class_pictures_are_immutable_pngs_with_strong_etags(
    api: ApiHarness, tenant: dict[str, str], model_id: uuid.UUID, kind: str
) -> None:
    model = api.client.get(f"/v1/models/{model_id}", headers=tenant).json()
    link = model["classes"][2]["links"]["prototype" if kind == "prototypes" else "cam_prototype"]
    assert link == f"/v1/models/{model_id}/{kind}/2.png"
    response = api.client.get(link, headers=tenant)
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert decoded_png(response.content).shape[:2] == (28, 28)
    etag = response.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"') and not etag.startswith("W/")
    assert response.headers["cache-control"] == IMMUTABLE
    again = api.client.get(link, headers={**tenant, "If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    other = api.client.get(link, headers={**tenant, "If-None-Match": '"something-else"'})
    assert other.status_code == 200 and other.content == response.content


@pytest.mark.parametrize("class_index", ["5", "-1", "1000"])
def test_an_unknown_model_class_is_a_404_problem(
    api: ApiHarness, tenant: dict[str, str], model_id: uuid.UUID, class_index: str
) -> None:
    for kind in ("prototypes", "cam-prototypes"):
        response = api.client.get(f"/v1/models/{model_id}/{kind}/{class_index}.png", headers=tenant)
        assert_problem(response, 404, "class_not_found")


def test_model_figures_and_report_are_served_as_stored(
    api: ApiHarness, tenant: dict[str, str], model_id: uuid.UUID, run: TrainedRun
) -> None:
    model = api.client.get(f"/v1/models/{model_id}", headers=tenant).json()
    for link in model["links"]["figures"].values():
        response = api.client.get(link, headers=tenant)
        assert response.status_code == 200 and decoded_png(response.content).ndim == 3
    assert_problem(
        api.client.get(f"/v1/models/{model_id}/figures/nope.png", headers=tenant), 404, "figure_not_found"
    )
    report = api.client.get(model["links"]["report"], headers=tenant)
    assert report.status_code == 200 and report.headers["content-type"].startswith("application/json")
    assert report.json() == json.loads((run.run_dir / "report.json").read_text())
    assert report.headers["cache-control"] == IMMUTABLE and report.headers["etag"]


def test_the_model_misclassified_gallery_pages_through_the_report_with_image_links(
    api: ApiHarness, tenant: dict[str, str], model_id: uuid.UUID, run: TrainedRun
) -> None:
    recorded = run.report["misclassified"]
    names = run.report["model"]["class_names"]
    assert recorded, "the tiny model should get some test images wrong"
    items, link = [], f"/v1/models/{model_id}/misclassified?limit=3"
    while link:
        page = api.client.get(link, headers=tenant).json()
        assert page["total"] == len(recorded) and len(page["items"]) <= 3
        items += page["items"]
        link = page["links"]["next"]
    assert [item["index"] for item in items] == [record["index"] for record in recorded]
    first, record = items[0], recorded[0]
    assert first["true_label"] == {"index": record["true_label"], "name": names[record["true_label"]]}
    assert first["predicted_label"]["name"] == names[record["predicted_label"]]
    assert first["confidence"] == record["confidence"]
    assert first["distance_to_true"] == record["distance_to_true"]
    image = api.client.get(first["links"]["image"], headers=tenant)
    assert image.status_code == 200 and decoded_png(image.content).shape == (28, 28, 3)
    assert image.headers["cache-control"] == IMMUTABLE
    missing = api.client.get(f"/v1/models/{model_id}/misclassified/99999.png", headers=tenant)
    assert_problem(missing, 404, "misclassified_image_not_found")
    bad_cursor = api.client.get(f"/v1/models/{model_id}/misclassified?cursor=nonsense", headers=tenant)
    assert_problem(bad_cursor, 400, "invalid_cursor")


def test_a_gallery_cursor_holding_deeply_nested_json_is_not_one_we_handed_out() -> None:
    for nested in (b'{"at": ' * 2000 + b"0" + b"}" * 2000, b"[" * 100_000):
        with pytest.raises(ProblemError) as raised:
            decode_position(base64.urlsafe_b64encode(nested).decode())
        assert raised.value.status == 400 and raised.value.code == "invalid_cursor"


def test_the_weights_download_loads_and_predicts_like_the_trained_model(
    api: ApiHarness, tenant: dict[str, str], model_id: uuid.UUID, run: TrainedRun, tmp_path: Path
) -> None:
    response = api.client.get(f"/v1/models/{model_id}/weights", headers=tenant)
    assert response.status_code == 200 and response.headers["content-type"] == "application/octet-stream"
    assert response.headers["content-disposition"] == (
        f'attachment; filename="batchcam-model-{model_id}.safetensors"'
    )
    assert response.headers["cache-control"] == IMMUTABLE
    assert "model.safetensors" in run.report["artifacts"].values()
    assert sorted(load_safetensors(response.content))  # a plain safetensors file, no pickle
    downloaded = tmp_path / "downloaded.safetensors"
    downloaded.write_bytes(response.content)
    model, spec = load_model(downloaded)
    reference, _ = load_model(run.run_dir / "model.safetensors")
    assert spec.to_dict() == {**run.report["model"], "input_size": (28, 28), "class_names": spec.class_names}
    images = as_model_input(run.test_data.images)
    with torch.no_grad():
        assert torch.equal(model(images).argmax(1), reference(images).argmax(1))
        assert torch.allclose(model(images), reference(images))
    cached = api.client.get(
        f"/v1/models/{model_id}/weights", headers={**tenant, "If-None-Match": response.headers["etag"]}
    )
    assert cached.status_code == 304


def test_another_tenants_model_is_a_404_everywhere(
    api: ApiHarness, model_id: uuid.UUID, tenant: dict[str, str]
) -> None:
    stranger = api.new_tenant()
    for path in (
        "",
        "/prototypes/0.png",
        "/cam-prototypes/0.png",
        "/figures/prototypes.png",
        "/report",
        "/misclassified",
        "/weights",
    ):
        assert_problem(
            api.client.get(f"/v1/models/{model_id}{path}", headers=stranger), 404, "model_not_found"
        )
    assert_problem(api.client.get(f"/v1/models/{uuid.uuid4()}", headers=tenant), 404, "model_not_found")
    assert api.client.get(f"/v1/models/{model_id}").status_code == 401


def test_a_model_whose_job_has_not_succeeded_is_shown_as_not_ready(
    api: ApiHarness, tenant: dict[str, str], run: TrainedRun
) -> None:
    pending = store_model(api.sessions, api.store, api.tenant_id(tenant), run, job_state=JobState.RUNNING)
    assert api.client.get(f"/v1/models/{pending}", headers=tenant).json()["ready"] is False


def test_the_openapi_document_describes_the_model_endpoints(api: ApiHarness) -> None:
    paths = api.client.get("/openapi.json").json()["paths"]
    png = paths["/v1/models/{model_id}/prototypes/{class_index}.png"]["get"]["responses"]
    assert "image/png" in png["200"]["content"] and "304" in png
    assert "application/problem+json" in png["404"]["content"]
