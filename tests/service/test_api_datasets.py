"""Dataset uploads over HTTP: validated by the library, deduplicated by content, stored in the
object store, never leaving an orphan row or object behind; capped before spooling."""

from __future__ import annotations

import hashlib
import io
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select

from batchcam.spec.datasets import BUILTIN_DATASETS
from batchcam.spec.limits import UploadLimits
from persistence.models import Dataset
from service.api_support import ApiHarness, api_harness, assert_problem, npz_bytes, send_raw

MAX_UPLOAD_BYTES = 256 * 1024


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiHarness]:
    limits = UploadLimits(max_bytes=MAX_UPLOAD_BYTES)
    with api_harness(tmp_path_factory.mktemp("api-datasets"), upload_limits=limits) as harness:
        yield harness


@pytest.fixture
def tenant(api: ApiHarness) -> dict[str, str]:
    return api.new_tenant()


def upload(
    api: ApiHarness, headers: dict[str, str], content: bytes, filename: str = "digits.npz", **form: str
):  # type: ignore[no-untyped-def]
    return api.client.post(
        "/v1/datasets",
        files={"file": (filename, content, "application/octet-stream")},
        data=form,
        headers=headers,
    )


def stored_objects(root: Path) -> list[Path]:
    return (
        [path for path in (root / "tenants").rglob("*") if path.is_file()]
        if (root / "tenants").exists()
        else []
    )


def dataset_rows(api: ApiHarness) -> int:
    with api.sessions() as session:
        return session.scalar(select(func.count()).select_from(Dataset)) or 0


def png(value: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((8, 8), value, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def class_folder_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for label, value in (("cat", 30), ("dog", 200)):
            for index in range(3):
                archive.writestr(f"{label}/{index}.png", png(value + index))
    return buffer.getvalue()


def test_a_valid_npz_is_validated_stored_and_recorded(api: ApiHarness, tenant: dict[str, str]) -> None:
    content = npz_bytes(seed=1)
    response = upload(api, tenant, content, filename="../../etc/digits.npz")
    assert response.status_code == 201, response.text
    dataset = response.json()
    assert response.headers["location"] == f"/v1/datasets/{dataset['id']}"
    assert dataset["builtin"] is False and dataset["format"] == "npz" and dataset["name"] == "digits"
    assert dataset["sha256"] == hashlib.sha256(content).hexdigest() and dataset["size_bytes"] == len(content)
    assert dataset["summary"]["num_classes"] == 2 and dataset["summary"]["image_size"] == [8, 8]
    assert dataset["summary"]["train_images"] + dataset["summary"]["test_images"] == 12
    with api.sessions() as session:
        row = session.get_one(Dataset, uuid.UUID(dataset["id"]))
    assert row.object_key == f"tenants/{api.tenant_id(tenant)}/datasets/{dataset['id']}/data.npz"
    assert api.store.get(row.object_key) == content
    assert api.client.get(response.headers["location"], headers=tenant).json() == dataset


def test_a_class_folder_zip_is_accepted_and_named_by_the_form(
    api: ApiHarness, tenant: dict[str, str]
) -> None:
    response = upload(api, tenant, class_folder_zip(), filename="pets.zip", name="My\x00 pets\n")
    assert response.status_code == 201, response.text  # Postgres refuses NUL: control characters go
    assert response.json()["format"] == "zip" and response.json()["name"] == "My pets"
    assert response.json()["summary"]["class_names"] == ["cat", "dog"]


def test_the_same_content_twice_answers_the_first_dataset(api: ApiHarness, tenant: dict[str, str]) -> None:
    content = npz_bytes(seed=2)
    first = upload(api, tenant, content)
    objects_before = len(stored_objects(api.store_root))
    second = upload(api, tenant, content, filename="renamed.npz")
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["id"] == first.json()["id"]
    assert len(stored_objects(api.store_root)) == objects_before
    elsewhere = upload(api, api.new_tenant(), content)  # another tenant gets a dataset of its own
    assert elsewhere.status_code == 201 and elsewhere.json()["id"] != first.json()["id"]


def test_an_idempotency_key_replays_the_first_answer_and_refuses_another_file(api: ApiHarness) -> None:
    headers = {**api.new_tenant(), "Idempotency-Key": "upload-1"}
    first = upload(api, headers, npz_bytes(seed=5))
    again = upload(api, headers, npz_bytes(seed=5))
    assert first.status_code == again.status_code == 201  # the first answer, replayed
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    rows, objects = dataset_rows(api), len(stored_objects(api.store_root))

    other_file = upload(api, headers, npz_bytes(seed=6))
    assert_problem(other_file, 422, "idempotency_key_reused")
    assert dataset_rows(api) == rows and len(stored_objects(api.store_root)) == objects

    rejected = {**headers, "Idempotency-Key": "upload-2"}
    assert_problem(upload(api, rejected, b"not a dataset"), 400, "unsupported_format")
    retried = upload(api, rejected, npz_bytes(seed=7))  # a refused upload does not burn its key
    assert retried.status_code == 201, retried.text


@pytest.mark.parametrize(
    ("content", "status", "code"),
    [
        (b"PK\x03\x04" + b"\x00" * 64, 400, "invalid_zip"),
        (b"hello, this is not a dataset", 400, "unsupported_format"),
        (npz_bytes(labels=np.zeros(11, np.int64)), 422, "length_mismatch"),
        (npz_bytes(images=np.zeros((12, 8, 8), np.float32)), 422, "npz_wrong_dtype"),
        (npz_bytes(labels=np.zeros(12, np.int64)), 422, "too_few_classes"),
    ],
    ids=["corrupt-zip", "not-an-archive", "length-mismatch", "float-images", "one-class"],
)
def test_bad_uploads_get_the_librarys_code_and_leave_nothing_behind(
    api: ApiHarness, tenant: dict[str, str], content: bytes, status: int, code: str
) -> None:
    rows, objects = dataset_rows(api), len(stored_objects(api.store_root))
    body = assert_problem(upload(api, tenant, content), status, code)
    assert body["detail"]
    assert dataset_rows(api) == rows and len(stored_objects(api.store_root)) == objects


def test_a_zip_with_parent_paths_is_refused(api: ApiHarness, tenant: dict[str, str]) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("cat/1.png", png(1))
        archive.writestr("../dog/1.png", png(2))
    assert_problem(upload(api, tenant, buffer.getvalue(), filename="evil.zip"), 422, "archive_path_traversal")


def test_a_failed_commit_deletes_the_stored_object(
    api: ApiHarness, tenant: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import api.datasets.registration as registration
    from api.datasets.inspection import UploadInspection

    def broken_inspection(*args: object) -> UploadInspection:
        # A set is not JSON: the INSERT fails after the object was stored.
        return UploadInspection(format="npz", summary={"not": {1, 2}})

    monkeypatch.setattr(registration, "inspect_upload", broken_inspection)
    rows, objects = dataset_rows(api), len(stored_objects(api.store_root))
    assert_problem(upload(api, tenant, npz_bytes(seed=3)), 500, "internal_error")
    assert dataset_rows(api) == rows and len(stored_objects(api.store_root)) == objects


def test_the_upload_caps_come_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATCHCAM_MAX_UPLOAD_BYTES", "4096")
    monkeypatch.setenv("BATCHCAM_MAX_UPLOAD_IMAGES", "10")
    with api_harness(tmp_path) as harness:  # no upload_limits given: the settings' apply
        tenant = harness.new_tenant()
        too_large = upload(harness, tenant, npz_bytes(n_per_class=40))
        assert "4,096 bytes" in assert_problem(too_large, 413, "upload_too_large")["detail"]
        too_many = upload(harness, tenant, npz_bytes(n_per_class=6))
        assert "at most 10" in assert_problem(too_many, 422, "too_many_images")["detail"]
        assert upload(harness, tenant, npz_bytes(n_per_class=4)).status_code == 201


@pytest.mark.parametrize(
    ("declared", "status", "code"),
    [(b"9" * 5000, 413, "upload_too_large"), ("²".encode("latin-1"), 400, "bad_request")],
    ids=["5000-digits", "superscript-two"],
)
def test_a_declared_length_is_ascii_digits_of_any_size(
    api: ApiHarness, tenant: dict[str, str], declared: bytes, status: int, code: str
) -> None:
    headers = {**tenant, "Content-Type": "multipart/form-data; boundary=b", "Content-Length": declared}
    body = b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.npz"\r\n\r\nx\r\n--b--\r\n'
    assert_problem(send_raw(api, "POST", "/v1/datasets", headers, body), status, code)


def test_oversize_bodies_are_refused_before_spooling(api: ApiHarness, tenant: dict[str, str]) -> None:
    too_big = b"\x00" * (MAX_UPLOAD_BYTES + 128 * 1024)
    body = assert_problem(upload(api, tenant, too_big), 413, "upload_too_large")
    assert f"{MAX_UPLOAD_BYTES:,}" in body["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the streaming counter must stop it
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.npz"\r\n\r\n'
        for _ in range(40):
            yield b"\x00" * 16 * 1024
        yield b"\r\n--b--\r\n"

    streamed = api.client.post(
        "/v1/datasets",
        content=chunks(),
        headers={**tenant, "Content-Type": "multipart/form-data; boundary=b"},
    )
    assert_problem(streamed, 413, "upload_too_large")
    assert_problem(
        api.client.post(
            "/v1/datasets", content=b"{}", headers={**tenant, "Content-Type": "application/json"}
        ),
        415,
        "unsupported_media_type",
    )
    assert_problem(
        api.client.post("/v1/datasets", data={"name": "x"}, files={"other": ("a", b"1")}, headers=tenant),
        422,
        "missing_file",
    )


def test_listing_shows_builtins_alongside_this_tenants_uploads(api: ApiHarness) -> None:
    headers = api.new_tenant()
    uploaded = [upload(api, headers, npz_bytes(seed=10 + i)).json()["id"] for i in range(3)]
    first = api.client.get("/v1/datasets?limit=2", headers=headers).json()
    builtins = [item["id"] for item in first["items"] if item["builtin"]]
    assert builtins == list(BUILTIN_DATASETS)
    second = api.client.get(first["links"]["next"], headers=headers).json()
    uploads = [item["id"] for item in first["items"] + second["items"] if not item["builtin"]]
    assert uploads == uploaded[::-1] and second["links"]["next"] is None
    assert not any(item["builtin"] for item in second["items"])
    assert api.client.get("/v1/datasets/mnist", headers=headers).json()["builtin"] is True


def test_a_job_can_train_on_an_upload_of_its_own_tenant_only(api: ApiHarness, tenant: dict[str, str]) -> None:
    dataset_id = upload(api, tenant, npz_bytes(seed=20)).json()["id"]
    job = api.client.post("/v1/jobs", json={"dataset": dataset_id, "epochs": 1}, headers=tenant)
    assert job.status_code == 202 and job.json()["spec"]["dataset"] == dataset_id
    intruder = api.new_tenant()
    assert_problem(
        api.client.post("/v1/jobs", json={"dataset": dataset_id}, headers=intruder), 422, "unknown_dataset"
    )
    assert_problem(api.client.get(f"/v1/datasets/{dataset_id}", headers=intruder), 404, "dataset_not_found")
    assert_problem(api.client.get("/v1/datasets/not-a-dataset", headers=intruder), 404, "dataset_not_found")
    assert dataset_id not in {
        item["id"] for item in api.client.get("/v1/datasets", headers=intruder).json()["items"]
    }
