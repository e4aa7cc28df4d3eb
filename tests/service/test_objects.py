"""The object store: one set of behaviours, checked on a real SeaweedFS (S3) and on a local folder."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from pathlib import Path

import pytest
import urllib3
from botocore.awsrequest import AWSPreparedRequest
from botocore.exceptions import ReadTimeoutError
from pydantic import SecretStr

from persistence.objects import (
    LocalObjectStore,
    ObjectExistsError,
    ObjectNotFoundError,
    ObjectStore,
    ObjectStoreUnavailableError,
    S3Connection,
    S3ObjectStore,
    StoredObject,
    object_key,
    open_object_store,
    resource_prefix,
)
from persistence.settings import Settings
from service.seaweed import SeaweedServer, free_port

MIB = 1024 * 1024
KEY = object_key("tenant-1", "uploads", "upload-1", "images.npz")
SECRET = "s3cr3t-that-must-never-leak"


@pytest.fixture(params=["local_store", "s3_store"])
def store(request: pytest.FixtureRequest) -> ObjectStore:
    return request.getfixturevalue(request.param)


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def test_put_then_get_round_trips_content_type_and_etag(store: ObjectStore) -> None:
    data = b"\x89PNG not really" * 100
    stored = store.put(KEY, data, content_type="image/png")
    assert stored == StoredObject(KEY, len(data), md5(data), "image/png")
    assert store.get(KEY) == data
    assert store.head(KEY) == stored


def test_a_second_put_is_refused_and_the_original_stays(store: ObjectStore, tmp_path: Path) -> None:
    store.put(KEY, b"first", content_type="text/plain")
    other = tmp_path / "other"
    other.write_bytes(b"second")
    with pytest.raises(ObjectExistsError):
        store.put(KEY, b"second", content_type="application/json")
    with pytest.raises(ObjectExistsError):
        store.put_file(KEY, other, content_type="application/json")
    with pytest.raises(ObjectExistsError):  # the same bytes again are a second write too
        store.put(KEY, b"first", content_type="text/plain")
    assert store.get(KEY) == b"first"
    assert store.head(KEY) == StoredObject(KEY, 5, md5(b"first"), "text/plain")


def test_of_concurrent_writers_exactly_one_wins(store: ObjectStore) -> None:
    writers = 4  # SeaweedFS makes each further loser wait about a second on its per-object lock
    start = threading.Barrier(writers)
    winners: list[bytes] = []
    refused: list[int] = []

    def write(n: int) -> None:
        data = f"writer {n}".encode() * 1000
        start.wait()
        try:
            store.put(KEY, data, content_type="text/plain")
            winners.append(data)
        except ObjectExistsError:
            refused.append(n)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1 and len(refused) == writers - 1
    assert store.get(KEY) == winners[0]


def test_a_large_file_goes_up_and_comes_back(store: ObjectStore, tmp_path: Path) -> None:
    source, copy = tmp_path / "weights.bin", tmp_path / "copy.bin"
    data = os.urandom(12 * MIB)
    source.write_bytes(data)
    stored = store.put_file(KEY, source, content_type="application/octet-stream")
    store.download_file(KEY, copy)
    assert copy.read_bytes() == data
    assert stored == store.head(KEY)
    assert stored.size == len(data)
    if isinstance(store, S3ObjectStore):
        assert stored.etag.endswith("-2")  # two 8 MiB parts: it went up as a multipart upload
    else:
        assert stored.etag == md5(data)


def test_iter_chunks_reassembles_the_object(store: ObjectStore) -> None:
    data = os.urandom(2 * MIB + 12345)
    store.put(KEY, data, content_type="application/octet-stream")
    chunks = list(store.iter_chunks(KEY, chunk_size=MIB))
    assert b"".join(chunks) == data
    assert all(len(chunk) <= MIB for chunk in chunks) and len(chunks) >= 3


def test_a_missing_object_is_none_or_not_found(store: ObjectStore, tmp_path: Path) -> None:
    assert store.head(KEY) is None
    with pytest.raises(ObjectNotFoundError):
        store.get(KEY)
    with pytest.raises(ObjectNotFoundError):
        store.iter_chunks(KEY)  # raised when opened, before a streaming response has started
    with pytest.raises(ObjectNotFoundError):
        store.download_file(KEY, tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_delete_is_idempotent_and_frees_the_key(store: ObjectStore) -> None:
    store.put(KEY, b"orphan", content_type="text/plain")
    store.delete(KEY)
    store.delete(KEY)
    assert store.head(KEY) is None
    store.put(KEY, b"retried", content_type="text/plain")
    assert store.get(KEY) == b"retried"


def test_delete_prefix_removes_that_folder_only(store: ObjectStore) -> None:
    doomed = [object_key("t1", "models", "m1", name) for name in ("weights.safetensors", "report.json")]
    doomed.append(resource_prefix("t1", "models", "m1") + "heatmaps/0.png")
    kept = [
        object_key("t1", "models", "m10", "weights.safetensors"),  # shares the string prefix "m1"
        object_key("t1", "models", "m2", "weights.safetensors"),
        object_key("t2", "models", "m1", "weights.safetensors"),  # same resource id, other tenant
    ]
    for key in doomed + kept:
        store.put(key, key.encode(), content_type="text/plain")
    assert store.delete_prefix(resource_prefix("t1", "models", "m1")) == 3
    assert [store.head(key) for key in doomed] == [None] * 3
    assert [store.get(key) for key in kept] == [key.encode() for key in kept]
    assert store.delete_prefix("t1/nothing/here") == 0


BAD_KEYS = ["", "/etc/passwd", "a/../b", "..", "../x", "a//b", "a/", "./a", "a\\b", "a\x00b", "x" * 1025]


@pytest.mark.parametrize("bad_key", BAD_KEYS)
def test_the_store_rejects_malformed_keys(store: ObjectStore, bad_key: str) -> None:
    with pytest.raises(ValueError):
        store.put(bad_key, b"x", content_type="text/plain")
    with pytest.raises(ValueError):
        store.get(bad_key)


def test_object_key_builds_the_tenant_layout() -> None:
    key = object_key("3f2a-tenant", "models", "m_7", "weights.safetensors")
    assert key == "tenants/3f2a-tenant/models/m_7/weights.safetensors"
    assert resource_prefix("t", "jobs", "j1") == "tenants/t/jobs/j1/"


@pytest.mark.parametrize("bad_part", ["", "..", ".", "a/b", "a\\b", ".hidden", "-x", "x y", "ü", "x" * 129])
def test_object_key_rejects_parts_that_could_reach_another_prefix(bad_part: str) -> None:
    for parts in [
        (bad_part, "uploads", "u1", "n"),
        ("t", bad_part, "u1", "n"),
        ("t", "uploads", bad_part, "n"),
        ("t", "uploads", "u1", bad_part),
    ]:
        with pytest.raises(ValueError):
            object_key(*parts)


@pytest.mark.parametrize("key", ["../outside", "a/../../outside", ".batchcam/meta/x.json", "link/escaped"])
def test_the_local_store_keeps_keys_inside_its_root(tmp_path: Path, key: str) -> None:
    store = LocalObjectStore(tmp_path / "root")
    (tmp_path / "elsewhere").mkdir()
    (store.root / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ValueError):
        store.put(key, b"x", content_type="text/plain")
    assert not (tmp_path / "outside").exists() and not any((tmp_path / "elsewhere").iterdir())


def test_ping_answers_when_the_store_is_usable(store: ObjectStore) -> None:
    store.ping()


def test_ping_on_a_dead_endpoint_fails_fast_without_leaking_secrets(caplog: pytest.LogCaptureFixture) -> None:
    connection = S3Connection(
        endpoint_url=f"http://127.0.0.1:{free_port()}",  # nothing listens there
        access_key_id=SecretStr("AKIA-TEST"),
        secret_access_key=SecretStr(SECRET),
        connect_timeout_s=1.0,
        max_attempts=1,
    )
    store = S3ObjectStore("some-bucket", connection=connection)
    started = time.monotonic()
    with caplog.at_level(logging.DEBUG), pytest.raises(ObjectStoreUnavailableError) as raised:
        store.ping()
    assert time.monotonic() - started < 5
    assert "unreachable" in str(raised.value)
    with pytest.raises(ObjectStoreUnavailableError):
        store.get(KEY)
    shown = [str(raised.value), repr(raised.value), repr(store), repr(connection), caplog.text]
    shown += [str(cause) for cause in _causes(raised.value)]
    assert not [text for text in shown if SECRET in text]


def _causes(error: BaseException) -> list[BaseException]:
    chain = []
    while (error := error.__cause__ or error.__context__) is not None:  # type: ignore[assignment]
        chain.append(error)
    return chain


def test_ping_says_when_the_bucket_is_missing_or_access_denied(seaweedfs: SeaweedServer) -> None:
    missing = S3ObjectStore("never-created", connection=seaweedfs.connection())
    with pytest.raises(ObjectStoreUnavailableError, match="bucket does not exist"):
        missing.ping()
    wrong_secret = seaweedfs.connection(secret_access_key=SecretStr(SECRET))
    with pytest.raises(ObjectStoreUnavailableError, match="access denied") as raised:
        S3ObjectStore("never-created", connection=wrong_secret).ping()
    assert SECRET not in str(raised.value)


def test_ping_fails_when_the_local_root_is_gone(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    (tmp_path / "objects").rename(tmp_path / "moved")
    with pytest.raises(ObjectStoreUnavailableError, match="missing or not writable"):
        store.ping()


def test_seaweedfs_enforces_write_once_on_multipart_completion(
    s3_store: S3ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With our HEAD pre-check skipped, only If-None-Match on CompleteMultipartUpload stops the
    second upload; the aborted upload leaves no parts behind."""
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(9 * MIB))
    s3_store.put_file(KEY, source, content_type="application/octet-stream")
    monkeypatch.setattr(s3_store, "_refuse_if_exists", lambda key: None)
    source.write_bytes(os.urandom(9 * MIB))
    with pytest.raises(ObjectExistsError):
        s3_store.put_file(KEY, source, content_type="application/octet-stream")
    client = s3_store.connection.client()
    assert client.list_multipart_uploads(Bucket=s3_store.bucket).get("Uploads", []) == []


def lose_the_first_answer(store: S3ObjectStore, operation: str) -> list[int]:
    """Deliver the first ``operation`` request to the server for real, then act as if its answer
    timed out, so botocore resends it. Returns the delivered request's HTTP status."""
    delivered: list[int] = []

    def deliver_then_time_out(request: AWSPreparedRequest, **_: object) -> None:
        if delivered:
            return
        body = request.body
        if hasattr(body, "read"):
            start = body.tell()
            payload = body.read()
            body.seek(start)
        else:
            payload = body
        response = urllib3.request(request.method, request.url, headers=dict(request.headers), body=payload)
        delivered.append(response.status)
        raise ReadTimeoutError(endpoint_url=request.url)

    store._client.meta.events.register(f"before-send.s3.{operation}", deliver_then_time_out)
    return delivered


@pytest.mark.parametrize(("size", "operation"), [(4096, "PutObject"), (9 * MIB, "CompleteMultipartUpload")])
def test_a_write_resent_after_its_answer_was_lost_is_a_success(
    s3_store: S3ObjectStore, tmp_path: Path, size: int, operation: str
) -> None:
    """The resend meets the object its first try stored (412); the store sees its own bytes there."""
    delivered = lose_the_first_answer(s3_store, operation)
    data = os.urandom(size)
    source = tmp_path / "data.bin"
    source.write_bytes(data)
    if operation == "PutObject":
        stored = s3_store.put(KEY, data, content_type="text/plain")
    else:
        stored = s3_store.put_file(KEY, source, content_type="text/plain")
    assert delivered == [200]
    assert stored == s3_store.head(KEY)
    assert s3_store.get(KEY) == data


def test_a_resent_write_that_finds_other_bytes_is_still_refused(s3_store: S3ObjectStore) -> None:
    s3_store.put(KEY, b"someone else's", content_type="text/plain")
    delivered = lose_the_first_answer(s3_store, "PutObject")
    with pytest.raises(ObjectExistsError):
        s3_store.put(KEY, b"ours", content_type="text/plain")
    assert delivered == [412]
    assert s3_store.get(KEY) == b"someone else's"


def test_without_conditional_writes_the_check_then_put_still_refuses(seaweedfs: SeaweedServer) -> None:
    store = S3ObjectStore("racy-fallback", connection=seaweedfs.connection(), conditional_writes=False)
    store.create_bucket()
    store.create_bucket()  # already ours: fine
    store.put(KEY, b"first", content_type="text/plain")
    with pytest.raises(ObjectExistsError):
        store.put(KEY, b"second", content_type="text/plain")
    assert store.get(KEY) == b"first"


def test_open_object_store_reads_the_url(tmp_path: Path) -> None:
    local = open_object_store(Settings(OBJECT_STORE_URL=(tmp_path / "objs").as_uri()))
    assert isinstance(local, LocalObjectStore) and local.root == tmp_path / "objs"
    default = open_object_store(Settings(BATCHCAM_STATE_DIR=tmp_path / "state"))
    assert (
        isinstance(default, LocalObjectStore) and default.root == (tmp_path / "state" / "objects").resolve()
    )
    s3 = open_object_store(
        Settings(
            OBJECT_STORE_URL="s3://batchcam-artifacts/prod/v1/",
            S3_ENDPOINT_URL="http://minio:9000",
            S3_ACCESS_KEY_ID="AKIA-TEST",
            S3_SECRET_ACCESS_KEY=SECRET,
        )
    )
    assert isinstance(s3, S3ObjectStore)
    assert (s3.bucket, s3.prefix, s3.connection.endpoint_url) == (
        "batchcam-artifacts",
        "prod/v1",
        "http://minio:9000",
    )
    assert SECRET not in repr(s3) and SECRET not in repr(s3.connection)
    bare = open_object_store(Settings(OBJECT_STORE_URL="s3://batchcam-artifacts"))
    assert isinstance(bare, S3ObjectStore) and bare.prefix == "" and bare.connection.endpoint_url is None


@pytest.mark.parametrize(
    "url",
    [
        "gs://bucket",
        "http://bucket",
        "/just/a/path",
        "s3://AKIA:" + SECRET + "@bucket",
        "s3://",
        "file://host/x",
    ],
)
def test_open_object_store_rejects_other_urls_clearly(url: str) -> None:
    with pytest.raises(ValueError) as raised:
        open_object_store(Settings(OBJECT_STORE_URL=url))
    assert SECRET not in str(raised.value)
