"""Explanations end to end in one process: the API stores the request, the injected enqueue runs the
real explain runner (real model, real object store, real Postgres), and the results, heatmaps and
raw maps are checked against the library's own Grad-CAM on the same model and images."""

from __future__ import annotations

import io
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from api.explanations.limits import ExplanationLimits
from api.http.json_bodies import MAX_JSON_BODY_BYTES
from batchcam import grad_cam
from batchcam.data import load_dataset
from batchcam.data.dataset import as_model_input
from batchcam.explain import Explainer
from batchcam.faithfulness import score_images
from batchcam.weights import load_model
from persistence.models import Explanation
from persistence.objects import ObjectStore, ObjectStoreUnavailableError
from persistence.states import JobState
from service.api_support import ApiHarness, api_harness, assert_problem
from service.trained_models import TRAINING_SEED, TrainedRun, decoded_png, png_of, store_model, train_tiny_run
from worker.explain.cache import ExplainerCache, StoredModel, load_explainer
from worker.explain.runner import ExplainContext, ExplainOutcome, run_explanation

MAX_IMAGES = 8
CPU = torch.device("cpu")


@dataclass
class InProcessExplainQueue:
    """The injected ``enqueue_explanation``: runs the explain runner at once (or later, or never)."""

    context: ExplainContext | None = None
    mode: str = "now"  # "now" | "later" (a thread, after a pause) | "never"
    calls: list[uuid.UUID] = field(default_factory=list)
    outcomes: list[ExplainOutcome] = field(default_factory=list)
    running: list[threading.Thread] = field(default_factory=list)  # "later" runs not yet joined

    def __call__(self, explanation_id: uuid.UUID, model_id: uuid.UUID) -> None:
        self.calls.append(explanation_id)
        if self.mode == "now":
            self.run(explanation_id)
        elif self.mode == "later":
            thread = threading.Thread(target=self.run, args=(explanation_id, 0.3))
            thread.start()
            self.running.append(thread)

    def join(self) -> None:
        """Wait for the "later" runs (so none is still writing when the next test starts)."""
        while self.running:
            self.running.pop().join()

    def run(self, explanation_id: uuid.UUID, pause: float = 0.0) -> None:
        assert self.context is not None
        time.sleep(pause)
        self.outcomes.append(run_explanation(explanation_id, self.context))


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> TrainedRun:
    return train_tiny_run(tmp_path_factory.mktemp("trained") / "run")


@pytest.fixture(scope="module")
def queue() -> InProcessExplainQueue:
    return InProcessExplainQueue()


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, queue: InProcessExplainQueue) -> Iterator[ApiHarness]:
    limits = ExplanationLimits(max_images=MAX_IMAGES, max_waiting_requests=1)
    with api_harness(
        tmp_path_factory.mktemp("api-explain"), enqueue_explanation=queue, explanation_limits=limits
    ) as harness:
        queue.context = explain_context(harness, harness.store)
        yield harness


def explain_context(api: ApiHarness, store: ObjectStore) -> ExplainContext:
    cache = ExplainerCache(lambda stored: load_explainer(store, stored, CPU))
    return ExplainContext(sessions=api.sessions, store=store, explainers=cache, batch_size=2)


@pytest.fixture(autouse=True)
def runs_at_once(queue: InProcessExplainQueue) -> Iterator[None]:
    queue.mode = "now"
    yield
    queue.mode = "now"


@pytest.fixture(scope="module")
def tenant(api: ApiHarness) -> dict[str, str]:
    return api.new_tenant()


@pytest.fixture(scope="module")
def model_id(api: ApiHarness, tenant: dict[str, str], run: TrainedRun) -> uuid.UUID:
    return store_model(api.sessions, api.store, api.tenant_id(tenant), run)


@pytest.fixture(scope="module")
def trained(run: TrainedRun) -> torch.nn.Module:
    model, _ = load_model(run.run_dir / "model.safetensors")
    return model


def library_cams(
    model: torch.nn.Module, images: torch.Tensor, targets: list[int] | None = None
) -> torch.Tensor:
    chosen = None if targets is None else torch.tensor(targets)
    return grad_cam(model, as_model_input(images), chosen).detach()


def upload(
    api: ApiHarness,
    headers: dict[str, str],
    model_id: uuid.UUID,
    files: list[bytes],
    query: str = "",
    **fields: str,
) -> Any:
    parts = [("files", (f"image{i}.png", content, "image/png")) for i, content in enumerate(files)]
    return api.client.post(
        f"/v1/models/{model_id}/explanations{query}", files=parts, data=fields, headers=headers
    )


def test_control_characters_in_file_names_are_dropped_not_a_500(
    api: ApiHarness, tenant: dict[str, str], model_id: uuid.UUID, run: TrainedRun
) -> None:
    # Written by hand: httpx would percent-encode the control characters, other clients need not.
    body = (
        b'--b\r\nContent-Disposition: form-data; name="files"; filename="dir/sc\x00an\x07.png"\r\n'
        b"Content-Type: image/png\r\n\r\n" + png_of(run.test_data.images[0]) + b"\r\n--b--\r\n"
    )
    response = api.client.post(
        f"/v1/models/{model_id}/explanations?wait=10",
        content=body,
        headers={**tenant, "Content-Type": "multipart/form-data; boundary=b"},
    )
    assert response.status_code == 200, response.text
    assert [item["source"]["filename"] for item in response.json()["items"]] == ["scan.png"]


def npy_of(api: ApiHarness, headers: dict[str, str], link: str) -> np.ndarray:
    response = api.client.get(link, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    array = np.load(io.BytesIO(response.content), allow_pickle=False)
    assert array.dtype == np.float32
    return array


def count_explanations(api: ApiHarness) -> int:
    with api.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Explanation)) or 0)


def test_uploaded_pngs_are_explained_like_the_library_does(
    api: ApiHarness, tenant: dict[str, str], model_id: uuid.UUID, run: TrainedRun, trained: torch.nn.Module
) -> None:
    images = run.test_data.images[:3]
    response = upload(api, tenant, model_id, [png_of(image) for image in images], "?wait=10")
    assert response.status_code == 200, response.text
    explanation = response.json()
    assert response.headers["content-location"] == f"/v1/explanations/{explanation['id']}"
    assert explanation["state"] == "succeeded" and explanation["terminal"] is True
    assert (
        explanation["count"] == 3 and explanation["failed_items"] == 0 and explanation["method"] == "gradcam"
    )
    expected = library_cams(trained, images)
    with torch.no_grad():
        logits = trained(as_model_input(images))
    names = run.report["model"]["class_names"]
    for item, cam, row in zip(explanation["items"], expected, logits, strict=True):
        assert item["source"] == {"kind": "upload", "filename": f"image{item['index']}.png"} | {
            "dataset": None,
            "split": None,
            "index": None,
        }
        predicted = int(row.argmax())
        assert item["predicted"] == {"index": predicted, "name": names[predicted]}
        assert item["target"] == item["predicted"] and item["true_label"] is None
        assert sum(item["probabilities"]) == pytest.approx(1.0, abs=1e-5)
        assert item["confidence"] == max(item["probabilities"])
        assert set(item["distance_to_predicted"]) == {"l1", "l2", "ssim"} and item["error"] is None
        stored = npy_of(api, tenant, item["links"]["array"])
        assert stored.shape == (28, 28)
        assert float(np.abs(stored - cam.numpy()).max()) <= 1e-5
    read = api.client.get(f"/v1/explanations/{explanation['id']}", headers=tenant).json()
    assert read == explanation


def test_explain_heatmaps_render_on_request_with_etags_and_validated_options(
    api: ApiHarness, tenant: dict[str, str], model_id: uuid.UUID, run: TrainedRun
) -> None:
    explanation = upload(api, tenant, model_id, [png_of(run.test_data.images[4])], "?wait=10").json()
    item = explanation["items"][0]
    cam = npy_of(api, tenant, item["links"]["array"])
    overlay = api.client.get(item["links"]["overlay"], headers=tenant)
    assert overlay.status_code == 200 and overlay.headers["content-type"] == "image/png"
    assert decoded_png(overlay.content).shape == (28, 28, 3)
    assert overlay.headers["cache-control"] == "private, max-age=31536000, immutable"
    etag = overlay.headers["etag"]
    assert (
        api.client.get(item["links"]["overlay"], headers={**tenant, "If-None-Match": etag}).status_code == 304
    )
    raw = api.client.get(item["links"]["raw"], headers=tenant)
    assert np.array_equal(decoded_png(raw.content), np.rint(np.clip(cam, 0, 1) * 255).astype(np.uint8))
    viridis = api.client.get(item["links"]["overlay"] + "?colormap=viridis&scale=4", headers=tenant)
    assert decoded_png(viridis.content).shape == (112, 112, 3) and viridis.headers["etag"] != etag
    bad_colormap = api.client.get(item["links"]["overlay"] + "?colormap=rainbowz", headers=tenant)
    body = assert_problem(bad_colormap, 422, "unknown_colormap")
    assert "viridis" in body["accepted"] and "jet" in body["accepted"]
    bad_style = api.client.get(item["links"]["overlay"] + "?style=fancy", headers=tenant)
    assert "overlay" in assert_problem(bad_style, 422, "invalid_request")["detail"]
    assert_problem(
        api.client.get(f"/v1/explanations/{explanation['id']}/heatmaps/7.png", headers=tenant),
        404,
        "heatmap_not_found",
    )


def test_dataset_indices_are_explained_with_true_labels_and_per_item_errors(
    api: ApiHarness, tenant: dict[str, str], model_id: uuid.UUID, trained: torch.nn.Module
) -> None:
    body = {"dataset": "shapes", "indices": [0, 7, 5000, 3], "targets": [1, None, None, 4]}
    response = api.client.post(f"/v1/models/{model_id}/explanations?wait=10", json=body, headers=tenant)
    assert response.status_code == 200, response.text
    explanation = response.json()
    assert explanation["state"] == "succeeded" and explanation["failed_items"] == 1
    failed = explanation["items"][2]
    assert failed["error"]["code"] == "index_out_of_range" and "5000" in failed["error"]["message"]
    assert failed["links"] is None and failed["predicted"] is None
    # The split as the model's job saw it: the built-in dataset with the job's seed.
    test_split = load_dataset("shapes", seed=TRAINING_SEED).test
    explained = [explanation["items"][i] for i in (0, 1, 3)]
    indices, targets = [0, 7, 3], [1, None, 4]
    images, labels = test_split[indices]
    for item, index, target, label, image in zip(explained, indices, targets, labels, images, strict=True):
        assert item["source"]["kind"] == "dataset" and item["source"]["index"] == index
        assert item["true_label"]["index"] == int(label) and set(item["distance_to_true"]) == {
            "l1",
            "l2",
            "ssim",
        }
        wanted = target if target is not None else item["predicted"]["index"]
        assert item["target"]["index"] == wanted
        expected = library_cams(trained, image[None], [wanted])[0]
        assert float(np.abs(npy_of(api, tenant, item["links"]["array"]) - expected.numpy()).max()) <= 1e-5


def test_explain_targets_override_the_predicted_class(
    api: ApiHarness, tenant: dict[str, str], model_id: uuid.UUID, run: TrainedRun, trained: torch.nn.Module
) -> None:
    images = run.test_data.images[5:7]
    files = [png_of(image) for image in images]
    explanation = upload(
        api, tenant, model_id, files, "?wait=10", targets="[2, null]", method="gradcam"
    ).json()
    first, second = explanation["items"]
    assert first["target"]["index"] == 2 and second["target"] == second["predicted"]
    expected = library_cams(trained, images[:1], [2])[0]
    assert float(np.abs(npy_of(api, tenant, first["links"]["array"]) - expected.numpy()).max()) <= 1e-5


def test_explain_honours_the_requested_cam_method(
    api: ApiHarness, tenant: dict[str, str], model_id: uuid.UUID, run: TrainedRun, trained: torch.nn.Module
) -> None:
    image = run.test_data.images[8:9]
    explanation = upload(api, tenant, model_id, [png_of(image[0])], "?wait=10", method="layercam").json()
    assert explanation["method"] == "layercam"
    expected = grad_cam(trained, as_model_input(image), None, method="layercam").detach()[0]
    got = npy_of(api, tenant, explanation["items"][0]["links"]["array"])
    assert float(np.abs(got - expected.numpy()).max()) <= 1e-5


def test_faithfulness_metrics_are_scored_per_image_like_the_library_does(
    api: ApiHarness, tenant: dict[str, str], model_id: uuid.UUID, run: TrainedRun, trained: torch.nn.Module
) -> None:
    images = run.test_data.images[10:12]
    files = [png_of(image) for image in images]
    explanation = upload(api, tenant, model_id, files, "?wait=10", metrics="deletion, road_morf").json()
    assert explanation["state"] == "succeeded" and explanation["metrics"] == ["deletion", "road_morf"]
    predicted = [item["predicted"]["index"] for item in explanation["items"]]
    inputs = as_model_input(images)
    expected = score_images(
        trained,
        inputs,
        library_cams(trained, images, predicted),
        torch.tensor(predicted),
        ["deletion", "road_morf"],
    )
    for item, wanted in zip(explanation["items"], expected, strict=True):
        assert set(item["faithfulness"]) == {"deletion", "road_morf"}
        for name, score in item["faithfulness"].items():
            assert (
                score["better"] == "lower"
                and score["curve"]["fractions"] == wanted[name]["curve"]["fractions"]
            )
            assert score["score"] == pytest.approx(wanted[name]["score"], abs=1e-5)
            assert score["random"] == pytest.approx(wanted[name]["random"], abs=1e-5)
    listed = api.client.get(f"/v1/explanations?model_id={model_id}&limit=100", headers=tenant).json()
    summary = next(item for item in listed["items"] if item["id"] == explanation["id"])
    assert summary["metrics"] == ["deletion", "road_morf"]
    plain = upload(api, tenant, model_id, files[:1], "?wait=10").json()
    assert plain["metrics"] == [] and plain["items"][0]["faithfulness"] is None


def test_faithfulness_metrics_for_dataset_images_and_bad_names_in_a_form(
    api: ApiHarness, tenant: dict[str, str], model_id: uuid.UUID, run: TrainedRun
) -> None:
    body = {"dataset": "shapes", "indices": [1, 2], "metrics": ["insertion"]}
    response = api.client.post(f"/v1/models/{model_id}/explanations?wait=10", json=body, headers=tenant)
    assert response.status_code == 200, response.text
    for item in response.json()["items"]:
        insertion = item["faithfulness"]["insertion"]
        assert insertion["better"] == "higher" and 0.0 <= insertion["score"] <= 1.0
        assert len(insertion["curve"]["values"]) == len(insertion["curve"]["fractions"]) == 21
    before = count_explanations(api)
    refused = upload(api, tenant, model_id, [png_of(run.test_data.images[0])], metrics="deletion,psnr")
    assert_problem(refused, 422, "unknown_faithfulness_metric")
    assert "psnr" in refused.json()["detail"] and "road_lerf" in refused.json()["detail"]
    assert count_explanations(api) == before


def test_explaining_without_wait_answers_202_and_polling_finds_the_result(
    api: ApiHarness,
    tenant: dict[str, str],
    model_id: uuid.UUID,
    run: TrainedRun,
    queue: InProcessExplainQueue,
) -> None:
    queue.mode = "never"
    response = upload(api, tenant, model_id, [png_of(run.test_data.images[0])])
    assert response.status_code == 202, response.text
    queued = response.json()
    assert (
        response.headers["location"] == f"/v1/explanations/{queued['id']}" == queued["links"]["explanation"]
    )
    assert int(response.headers["retry-after"]) >= 1
    assert queued["state"] == "queued" and queued["items"] == [] and queued["count"] == 1
    heatmap = api.client.get(f"/v1/explanations/{queued['id']}/heatmaps/0.png", headers=tenant)
    assert_problem(heatmap, 409, "explanation_not_finished")
    queue.run(uuid.UUID(queued["id"]))
    finished = api.client.get(response.headers["location"], headers=tenant).json()
    assert finished["state"] == "succeeded" and finished["attempt"] == 1
    queue.run(uuid.UUID(queued["id"]))  # a duplicate delivery finds the row no longer queued
    assert queue.outcomes[-2:] == [ExplainOutcome.SUCCEEDED, ExplainOutcome.NOT_CLAIMED]


def test_cancel_ends_a_queued_explanation_and_refuses_a_finished_one(
    api: ApiHarness,
    tenant: dict[str, str],
    model_id: uuid.UUID,
    run: TrainedRun,
    queue: InProcessExplainQueue,
) -> None:
    queue.mode = "never"
    queued = upload(api, tenant, model_id, [png_of(run.test_data.images[0])]).json()
    cancel = f"/v1/explanations/{queued['id']}/cancel"
    assert_problem(api.client.post(cancel, headers=api.new_tenant()), 404, "explanation_not_found")
    for _ in range(2):  # idempotent
        cancelled = api.client.post(cancel, headers=tenant)
        assert cancelled.status_code == 202 and cancelled.json()["state"] == "cancelled"
        assert cancelled.json()["terminal"] is True
    queue.run(uuid.UUID(queued["id"]))  # its message arrives late: nothing runs
    assert queue.outcomes[-1] == ExplainOutcome.NOT_CLAIMED
    heatmap = api.client.get(f"/v1/explanations/{queued['id']}/heatmaps/0.png", headers=tenant)
    assert "cancelled, no results" in assert_problem(heatmap, 404, "heatmap_not_found")["detail"]

    queue.mode = "now"
    done = upload(api, tenant, model_id, [png_of(run.test_data.images[1])], "?wait=10").json()
    refused = api.client.post(f"/v1/explanations/{done['id']}/cancel", headers=tenant)
    assert_problem(refused, 409, "explanation_already_finished")


def test_explain_wait_holds_the_answer_until_a_slower_worker_finishes(
    api: ApiHarness,
    tenant: dict[str, str],
    model_id: uuid.UUID,
    run: TrainedRun,
    queue: InProcessExplainQueue,
) -> None:
    queue.mode = "later"
    started = time.monotonic()
    response = upload(api, tenant, model_id, [png_of(run.test_data.images[1])], "?wait=10")
    assert response.status_code == 200 and response.json()["state"] == "succeeded"
    assert time.monotonic() - started >= 0.3
    short = upload(api, tenant, model_id, [png_of(run.test_data.images[2])], "?wait=0.05")
    assert short.status_code == 202 and short.json()["state"] in ("queued", "running")
    queue.join()


def npz_of(**arrays: Any) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def post_files(
    api: ApiHarness,
    headers: dict[str, str],
    model_id: uuid.UUID,
    parts: list[tuple[str, bytes]],
    query: str = "",
) -> Any:
    files = [("files", (name, content, "application/octet-stream")) for name, content in parts]
    return api.client.post(f"/v1/models/{model_id}/explanations{query}", files=files, headers=headers)


def test_an_npz_of_images_is_explained_image_by_image_like_the_same_pngs(
    api: ApiHarness, tenant: dict[str, str], model_id: uuid.UUID, run: TrainedRun, trained: torch.nn.Module
) -> None:
    images = run.test_data.images[:3]  # N×1×28×28: sent as N×H×W, and as channels-last N×H×W×3
    gray = npz_of(images=images[:, 0].numpy(), labels=np.arange(3))  # other arrays are not read
    colour = npz_of(images=images[:2].repeat(1, 3, 1, 1).permute(0, 2, 3, 1).numpy())
    parts = [("gray.npz", gray), ("one.png", png_of(images[2])), ("colour.npz", colour)]
    response = post_files(api, tenant, model_id, parts, "?wait=10")
    assert response.status_code == 200, response.text
    explanation = response.json()
    assert explanation["count"] == 6 and explanation["failed_items"] == 0
    names = [item["source"]["filename"] for item in explanation["items"]]
    assert names == ["gray.npz[0]", "gray.npz[1]", "gray.npz[2]", "one.png", "colour.npz[0]", "colour.npz[1]"]
    expected = library_cams(trained, torch.cat([images, images[2:], images[:2]]))
    for item, cam in zip(explanation["items"], expected, strict=True):
        stored = npy_of(api, tenant, item["links"]["array"])
        assert float(np.abs(stored - cam.numpy()).max()) <= 1e-5
    as_pngs = upload(api, tenant, model_id, [png_of(image) for image in images], "?wait=10").json()
    for from_npz, from_png in zip(explanation["items"][:3], as_pngs["items"], strict=True):  # gray.npz
        assert from_npz["predicted"] == from_png["predicted"]
        assert from_npz["probabilities"] == pytest.approx(from_png["probabilities"], abs=1e-6)


def test_npz_uploads_outside_the_layout_or_the_limits_are_problems_and_store_nothing(
    api: ApiHarness,
    tenant: dict[str, str],
    model_id: uuid.UUID,
    run: TrainedRun,
    queue: InProcessExplainQueue,
) -> None:
    images = run.test_data.images[:, 0].numpy()
    good = png_of(run.test_data.images[0])
    before, calls = count_explanations(api), len(queue.calls)
    cases: list[tuple[list[tuple[str, bytes]], int, str, str]] = [
        ([("a.npz", npz_of(pictures=images[:2]))], 422, "npz_missing_key", "no array named 'images'"),
        ([("a.npz", npz_of(images=images[:2].astype(np.float32)))], 422, "npz_wrong_dtype", "only uint8"),
        ([("a.npz", npz_of(images=images[:2, 0]))], 422, "npz_wrong_shape", "N×H×W"),
        ([("a.npz", npz_of(images=images[:0]))], 422, "empty_upload", "holds no images"),
        ([("a.npz", npz_of(images=np.array([None, 1], dtype=object)))], 422, "npz_object_array", "never"),
        (
            [("a.npz", npz_of(images=images[: MAX_IMAGES + 1]))],
            422,
            "too_many_images",
            f"at most {MAX_IMAGES}",
        ),
        (  # the room left by the request's other images
            [("one.png", good), ("a.npz", npz_of(images=images[:MAX_IMAGES]))],
            422,
            "too_many_images",
            f"at most {MAX_IMAGES - 1} are accepted in this request",
        ),
        ([("a.npz", b"PK\x03\x04 not a zip at all")], 400, "invalid_npz", "not a readable .npz file"),
        ([("a.gif", b"GIF89a not a png")], 400, "unsupported_image_format", "nor an .npz file of images"),
    ]
    for parts, status, code, words in cases:
        body = assert_problem(post_files(api, tenant, model_id, parts), status, code)
        assert words in body["detail"] and f"({parts[-1][0]})" in body["detail"], body["detail"]
    assert count_explanations(api) == before and len(queue.calls) == calls


def test_explaining_a_corrupt_png_rejects_the_request_and_leaves_nothing_behind(
    api: ApiHarness,
    tenant: dict[str, str],
    model_id: uuid.UUID,
    run: TrainedRun,
    queue: InProcessExplainQueue,
) -> None:
    good = png_of(run.test_data.images[0])
    before, calls = count_explanations(api), len(queue.calls)
    tenant_objects = api.store_root / "tenants" / str(api.tenant_id(tenant)) / "explanations"
    stored_before = sorted(tenant_objects.rglob("*")) if tenant_objects.exists() else []
    for files, code in (
        ([good, good[:60], good], "corrupt_image"),
        ([good, b"GIF89a not a png"], "unsupported_image_format"),
    ):
        body = assert_problem(upload(api, tenant, model_id, files), 400, code)
        assert "files[1] (image1.png)" in body["detail"]
    assert count_explanations(api) == before and len(queue.calls) == calls
    assert (sorted(tenant_objects.rglob("*")) if tenant_objects.exists() else []) == stored_before


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"dataset": "shapes", "indices": [0], "method": "magic"}, 422, "unknown_cam_method"),
        ({"dataset": "shapes", "indices": [0], "targets": [7]}, 422, "invalid_target"),
        ({"dataset": "shapes", "indices": [0, 1], "targets": [1]}, 422, "invalid_targets"),
        ({"dataset": "imagenet", "indices": [0]}, 422, "unknown_dataset"),
        ({"dataset": "shapes", "indices": list(range(MAX_IMAGES + 1))}, 422, "too_many_images"),
        ({"dataset": "shapes", "indices": []}, 422, "invalid_request"),
        ({"dataset": "shapes", "indices": [-1]}, 422, "invalid_request"),
        ({"dataset": "shapes", "indices": [0], "colour": "red"}, 422, "invalid_request"),
        (
            {"dataset": "shapes", "indices": [0], "metrics": ["deletion", "sharpness"]},
            422,
            "unknown_faithfulness_metric",
        ),
        ({"dataset": "shapes", "indices": [0], "metrics": "deletion"}, 422, "invalid_request"),
    ],
)
def test_invalid_explain_requests_are_problems_and_create_nothing(
    api: ApiHarness, tenant: dict[str, str], model_id: uuid.UUID, body: dict[str, Any], status: int, code: str
) -> None:
    before = count_explanations(api)
    response = api.client.post(f"/v1/models/{model_id}/explanations", json=body, headers=tenant)
    assert_problem(response, status, code)
    assert count_explanations(api) == before


def test_explain_upload_limits_and_content_types_are_enforced(
    api: ApiHarness, tenant: dict[str, str], model_id: uuid.UUID, run: TrainedRun
) -> None:
    good = png_of(run.test_data.images[0])
    assert_problem(upload(api, tenant, model_id, [good] * (MAX_IMAGES + 1)), 422, "too_many_images")
    assert_problem(upload(api, tenant, model_id, [good], targets="three"), 422, "invalid_targets")
    no_files = api.client.post(  # multipart with a text field only
        f"/v1/models/{model_id}/explanations", files=[("method", (None, "gradcam"))], headers=tenant
    )
    assert_problem(no_files, 422, "missing_file")
    text = api.client.post(
        f"/v1/models/{model_id}/explanations", content=b"hi", headers={**tenant, "Content-Type": "text/plain"}
    )
    assert_problem(text, 415, "unsupported_media_type")
    oversize = api.client.post(  # dataset indices as JSON: the same 1 MiB cap as every JSON body
        f"/v1/models/{model_id}/explanations",
        content=b'{"dataset": "shapes", "indices": [0]}' + b" " * MAX_JSON_BODY_BYTES,
        headers={**tenant, "Content-Type": "application/json"},
    )
    assert f"{MAX_JSON_BODY_BYTES:,} bytes" in assert_problem(oversize, 413, "payload_too_large")["detail"]


DEEP_JSON = "[" * 2000 + "]" * 2000  # about 4 KB, nested past Python's recursion limit for json.loads


@pytest.mark.parametrize(
    "targets",
    [DEEP_JSON, "[" * 100_000, "[[0]]", "[" + "9" * 5000 + "]", '{"0": 0}', "[true]"],
    ids=["nested-2000-deep", "unclosed-100000-deep", "nested", "5000-digit-number", "object", "boolean"],
)
def test_targets_that_are_no_flat_json_array_of_class_indices_are_a_422(
    api: ApiHarness, tenant: dict[str, str], model_id: uuid.UUID, run: TrainedRun, targets: str
) -> None:
    before = count_explanations(api)
    response = upload(api, tenant, model_id, [png_of(run.test_data.images[0])], targets=targets)
    detail = assert_problem(response, 422, "invalid_targets")["detail"]
    assert "a JSON array of one class index (or null) per image" in detail
    assert count_explanations(api) == before


@pytest.mark.parametrize("field", ["dataset", "indices", "targets", "method", "metrics"])
def test_a_deeply_nested_json_request_is_a_422(
    api: ApiHarness, tenant: dict[str, str], model_id: uuid.UUID, field: str
) -> None:
    body = json.dumps({"dataset": "shapes", "indices": [0], field: "@"}).replace('"@"', DEEP_JSON)
    response = api.client.post(
        f"/v1/models/{model_id}/explanations",
        content=body,
        headers={**tenant, "Content-Type": "application/json"},
    )
    assert assert_problem(response, 422, "invalid_request")["detail"].startswith(
        "the request is not valid: body"
    )


def test_a_model_whose_job_has_not_succeeded_cannot_explain(
    api: ApiHarness, tenant: dict[str, str], run: TrainedRun
) -> None:
    pending = store_model(api.sessions, api.store, api.tenant_id(tenant), run, job_state=JobState.RUNNING)
    before = count_explanations(api)
    response = upload(api, tenant, pending, [png_of(run.test_data.images[0])])
    assert_problem(response, 409, "model_not_ready")
    assert count_explanations(api) == before


def test_explained_results_belong_to_their_tenant(
    api: ApiHarness, tenant: dict[str, str], model_id: uuid.UUID, run: TrainedRun
) -> None:
    explanation = upload(api, tenant, model_id, [png_of(run.test_data.images[0])], "?wait=10").json()
    stranger = api.new_tenant()
    for path in ("", "/heatmaps/0.png", "/heatmaps/0.npy"):
        response = api.client.get(f"/v1/explanations/{explanation['id']}{path}", headers=stranger)
        assert_problem(response, 404, "explanation_not_found")
    steal = upload(api, stranger, model_id, [png_of(run.test_data.images[0])])
    assert_problem(steal, 404, "model_not_found")


def test_explain_idempotency_key_replays_the_first_answer(
    api: ApiHarness, tenant: dict[str, str], model_id: uuid.UUID
) -> None:
    headers = {**tenant, "Idempotency-Key": f"explain-{uuid.uuid4()}"}
    path = f"/v1/models/{model_id}/explanations"
    first = api.client.post(path, json={"dataset": "shapes", "indices": [1]}, headers=headers)
    again = api.client.post(path, json={"dataset": "shapes", "indices": [1]}, headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"] and again.headers["idempotent-replayed"] == "true"
    other = api.client.post(path, json={"dataset": "shapes", "indices": [2]}, headers=headers)
    assert_problem(other, 422, "idempotency_key_reused")


def test_a_replayed_submission_with_wait_answers_with_the_result(
    api: ApiHarness, tenant: dict[str, str], model_id: uuid.UUID, queue: InProcessExplainQueue
) -> None:
    """A client whose answer was lost retries with the same key and ?wait: it gets the result, once."""
    headers = {**tenant, "Idempotency-Key": f"explain-{uuid.uuid4()}"}
    path = f"/v1/models/{model_id}/explanations"
    body = {"dataset": "shapes", "indices": [3]}
    queue.mode = "never"  # the first answer is a 202 (its wait runs out)
    first = api.client.post(f"{path}?wait=0.05", json=body, headers=headers)
    assert first.status_code == 202 and first.json()["state"] == "queued"
    queue.run(uuid.UUID(first.json()["id"]))  # a worker picks it up after all
    calls = len(queue.calls)
    again = api.client.post(f"{path}?wait=10", json=body, headers=headers)
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"] and again.json()["state"] == "succeeded"
    assert len(queue.calls) == calls  # replayed: nothing was enqueued again


@contextmanager
def cold_worker(api: ApiHarness, queue: InProcessExplainQueue) -> Iterator[ExplainContext]:
    """The in-process queue runs on a worker with empty caches for the duration."""
    assert queue.context is not None
    fresh = explain_context(api, api.store)
    queue.context, previous = fresh, queue.context
    try:
        yield fresh
    finally:
        queue.context = previous


def test_a_warm_worker_loads_each_model_once(
    api: ApiHarness,
    tenant: dict[str, str],
    model_id: uuid.UUID,
    run: TrainedRun,
    queue: InProcessExplainQueue,
) -> None:
    with cold_worker(api, queue) as worker:
        for start in (0, 2):
            files = [png_of(image) for image in run.test_data.images[start : start + 2]]
            assert upload(api, tenant, model_id, files, "?wait=10").json()["state"] == "succeeded"
    assert worker.explainers.loads == 1 and len(worker.explainers) == 1


def test_a_warm_worker_generates_each_dataset_split_once(
    api: ApiHarness, tenant: dict[str, str], model_id: uuid.UUID, queue: InProcessExplainQueue
) -> None:
    path = f"/v1/models/{model_id}/explanations?wait=10"
    with cold_worker(api, queue) as worker:
        answers = [
            api.client.post(
                path, json={"dataset": "shapes", "split": "test", "indices": indices}, headers=tenant
            )
            for indices in ([0, 5], [5, 2])
        ]
    assert [answer.json()["state"] for answer in answers] == ["succeeded", "succeeded"]
    assert worker.splits.loads == 1 and len(worker.splits) == 1
    cold, warm = answers[0].json()["items"][1], answers[1].json()["items"][0]  # index 5 both times
    for name in ("source", "true_label", "predicted", "probabilities", "distance_to_true"):
        assert cold[name] == warm[name], name


def test_the_explainer_cache_is_bounded_and_least_recently_used_goes_first(run: TrainedRun) -> None:
    loaded: list[uuid.UUID] = []

    def load(stored: StoredModel) -> Explainer:
        loaded.append(stored.model_id)
        return Explainer.from_run(run.run_dir, CPU)

    cache = ExplainerCache(load, capacity=2)
    a, b, c = (StoredModel(uuid.uuid4(), "w", "p") for _ in range(3))
    for stored in (a, b, a, c, a, b):
        cache.for_model(stored.model_id, lambda stored=stored: stored)
    assert loaded == [a.model_id, b.model_id, c.model_id, b.model_id] and len(cache) == 2


class FlakyStore:
    """A store whose reads fail as if it were unreachable (writes and heads pass through)."""

    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def get(self, key: str) -> bytes:
        raise ObjectStoreUnavailableError("object store at test://flaky not reachable: connection refused")

    def download_file(self, key: str, path: Path) -> None:  # a model's weights: a fresh cache loads them
        self.get(key)


def test_an_unreachable_store_gives_an_explain_run_back_for_a_retry_then_fails(
    api: ApiHarness,
    tenant: dict[str, str],
    model_id: uuid.UUID,
    run: TrainedRun,
    queue: InProcessExplainQueue,
) -> None:
    queue.mode = "never"
    created = upload(api, tenant, model_id, [png_of(run.test_data.images[0])]).json()
    explanation_id = uuid.UUID(created["id"])
    flaky = explain_context(api, FlakyStore(api.store))  # type: ignore[arg-type]
    flaky = ExplainContext(
        sessions=flaky.sessions, store=flaky.store, explainers=flaky.explainers, max_attempts=2
    )
    assert run_explanation(explanation_id, flaky) == ExplainOutcome.RETRY
    again = api.client.get(f"/v1/explanations/{explanation_id}", headers=tenant).json()
    assert again["state"] == "queued" and again["attempt"] == 1
    assert run_explanation(explanation_id, flaky) == ExplainOutcome.FAILED
    failed = api.client.get(f"/v1/explanations/{explanation_id}", headers=tenant).json()
    assert failed["state"] == "failed" and failed["failure"]["reason"] == "infrastructure"
    assert "connection refused" in failed["failure"]["message"] and failed["attempt"] == 2


def worker_latency(state: str) -> tuple[float, float, float]:
    """This process's worker histograms (the default registry): ended count, end-to-end and run sums."""

    def value(name: str) -> float:
        return REGISTRY.get_sample_value(name, {"state": state}) or 0.0

    return (
        value("batchcam_explain_duration_seconds_count"),
        value("batchcam_explain_duration_seconds_sum"),
        value("batchcam_explain_run_seconds_sum"),
    )


def test_the_worker_observes_explain_latency_once_for_each_explanation_it_ends(
    api: ApiHarness,
    tenant: dict[str, str],
    model_id: uuid.UUID,
    run: TrainedRun,
    queue: InProcessExplainQueue,
) -> None:
    assert queue.context is not None
    queue.mode = "never"
    explanation_id = uuid.UUID(upload(api, tenant, model_id, [png_of(run.test_data.images[0])]).json()["id"])
    count, duration, run_time = worker_latency("succeeded")
    assert run_explanation(explanation_id, queue.context) == ExplainOutcome.SUCCEEDED
    assert run_explanation(explanation_id, queue.context) == ExplainOutcome.NOT_CLAIMED  # a duplicate
    ended = api.client.get(f"/v1/explanations/{explanation_id}", headers=tenant).json()
    finished_at, created_at = (datetime.fromisoformat(ended[key]) for key in ("finished_at", "created_at"))
    waited = (finished_at - created_at).total_seconds()
    after_count, after_duration, after_run_time = worker_latency("succeeded")
    assert after_count == count + 1
    run_seconds = after_run_time - run_time
    assert 0 < run_seconds < 60
    # From the row's created_at to the end, as the worker saw it: after finished_at, within the run.
    assert waited <= after_duration - duration <= waited + run_seconds

    # An attempt given back for a retry ends nothing and observes nothing; the failing one does.
    explanation_id = uuid.UUID(upload(api, tenant, model_id, [png_of(run.test_data.images[1])]).json()["id"])
    flaky = replace(explain_context(api, FlakyStore(api.store)), max_attempts=2)  # type: ignore[arg-type]
    failed_count = worker_latency("failed")[0]
    assert run_explanation(explanation_id, flaky) == ExplainOutcome.RETRY
    assert worker_latency("failed")[0] == failed_count
    assert run_explanation(explanation_id, flaky) == ExplainOutcome.FAILED
    assert worker_latency("failed")[0] == failed_count + 1
    assert worker_latency("succeeded")[0] == after_count


def test_a_wait_past_the_process_cap_answers_202_at_once_and_slots_are_given_back(
    api: ApiHarness,
    tenant: dict[str, str],
    model_id: uuid.UUID,
    run: TrainedRun,
    queue: InProcessExplainQueue,
) -> None:
    slots = api.client.app.state.context.wait_slots  # type: ignore[attr-defined]
    assert slots.capacity == 1  # this module's limit
    image = [png_of(run.test_data.images[5])]
    queue.mode = "never"
    first: dict[str, Any] = {}
    waiter = threading.Thread(
        target=lambda: first.update(response=upload(api, tenant, model_id, image, "?wait=3"))
    )
    waiter.start()
    deadline = time.monotonic() + 10
    while slots.held == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert slots.held == 1
    refused = api_counter(api, "batchcam_explain_waits_refused")
    second = upload(api, tenant, model_id, image, "?wait=10")
    assert second.status_code == 202 and second.json()["state"] == "queued"
    assert waiter.is_alive()  # answered while the first submission still held the only slot
    assert api_counter(api, "batchcam_explain_waits_refused") == refused + 1
    waiter.join()
    assert first["response"].status_code == 202 and slots.held == 0
    queue.mode = "now"
    assert upload(api, tenant, model_id, image, "?wait=10").status_code == 200  # the slot is free again


def api_counter(api: ApiHarness, name: str) -> float:
    families = text_string_to_metric_families(api.client.get("/metrics").text)
    return next(s.value for f in families if f.name == name for s in f.samples if s.name == f"{name}_total")


def api_wait_count(api: ApiHarness, state: str) -> float:
    """``batchcam_explain_wait_seconds_count`` for ``state`` on the API's /metrics."""
    families = text_string_to_metric_families(api.client.get("/metrics").text)
    family = next(f for f in families if f.name == "batchcam_explain_wait_seconds")
    counts = [s.value for s in family.samples if s.name.endswith("_count") and s.labels["state"] == state]
    return counts[0] if counts else 0.0


def test_the_api_observes_the_wait_of_submissions_answered_with_their_result(
    api: ApiHarness,
    tenant: dict[str, str],
    model_id: uuid.UUID,
    run: TrainedRun,
    queue: InProcessExplainQueue,
) -> None:
    before = api_wait_count(api, "succeeded")
    finished = upload(api, tenant, model_id, [png_of(run.test_data.images[3])], "?wait=10")
    assert finished.status_code == 200
    assert api_wait_count(api, "succeeded") == before + 1
    queue.mode = "never"  # the wait runs out (202): nothing ended, nothing observed
    assert upload(api, tenant, model_id, [png_of(run.test_data.images[3])], "?wait=0.05").status_code == 202
    assert upload(api, tenant, model_id, [png_of(run.test_data.images[3])]).status_code == 202
    assert api_wait_count(api, "succeeded") == before + 1


def test_the_list_shows_each_explanation_as_reading_it_does_less_its_results(
    api: ApiHarness, model_id: uuid.UUID, run: TrainedRun
) -> None:
    headers = api.new_tenant()
    own_model = store_model(api.sessions, api.store, api.tenant_id(headers), run)
    ids = [
        upload(
            api, headers, own_model, [png_of(image) for image in run.test_data.images[:count]], "?wait=10"
        ).json()["id"]
        for count in (1, 2)
    ]
    listed = api.client.get(f"/v1/explanations?model_id={own_model}", headers=headers).json()
    assert [item["id"] for item in listed["items"]] == ids[::-1]
    for item in listed["items"]:
        read = api.client.get(item["links"]["explanation"], headers=headers).json()
        results, failed_items = read.pop("items"), read.pop("failed_items")
        assert len(results) == item["count"] and failed_items == 0
        assert item == read
    assert api.client.get(f"/v1/explanations?model_id={model_id}", headers=headers).json()["items"] == []
