"""The object store the API and the workers share: S3 (AWS, MinIO, SeaweedFS) or a local folder.

Artifacts (uploads, checkpoints, weights, prototypes, heatmaps, reports) live under
``tenants/<tenant>/<kind>/<resource>/<name>`` (see ``object_key``) and are written once: a put onto an
existing key raises ``ObjectExistsError`` and leaves the stored object untouched. Both stores behave
the same, so the embedded default (``file://``) and production (``s3://``) run the same code paths.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol
from urllib.parse import SplitResult, urlsplit
from urllib.request import url2pathname

import boto3
from boto3.s3.transfer import TransferConfig, create_transfer_manager
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from pydantic import SecretStr
from s3transfer.exceptions import RetriesExceededError

from persistence.object_errors import (
    ObjectExistsError,
    ObjectNotFoundError,
    ObjectStoreError,
    ObjectStoreUnavailableError,
)
from persistence.object_etags import data_etag, file_etag, file_md5
from persistence.settings import Settings

__all__ = [
    "CHUNK_SIZE",
    "LocalObjectStore",
    "ObjectExistsError",
    "ObjectNotFoundError",
    "ObjectStore",
    "ObjectStoreError",
    "ObjectStoreUnavailableError",
    "S3Connection",
    "S3ObjectStore",
    "StoredObject",
    "ensure_bucket",
    "object_key",
    "open_object_store",
    "resource_prefix",
    "validate_key",
]

MIB = 1024 * 1024
CHUNK_SIZE = MIB
DEFAULT_CONTENT_TYPE = "application/octet-stream"
MAX_KEY_BYTES = 1024  # S3's limit
# One key part: starts alphanumeric (so never "." / ".." / hidden), then a conservative alphabet.
KEY_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")

S3Client = Any  # boto3 ships no type hints


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    etag: str  # without quotes; md5 hex of the content for single-part writes
    content_type: str


class ObjectStore(Protocol):
    """Write-once object storage; every key is relative to the store's root (bucket + prefix)."""

    def put(self, key: str, data: bytes, *, content_type: str) -> StoredObject:
        """Store ``data``; ``ObjectExistsError`` if the key exists (nothing is overwritten)."""
        ...

    def put_file(self, key: str, path: Path, *, content_type: str) -> StoredObject:
        """Stream a file of any size into the store; write-once like ``put``."""
        ...

    def get(self, key: str) -> bytes:
        """The whole object; ``ObjectNotFoundError`` if missing."""
        ...

    def download_file(self, key: str, path: Path) -> None:
        """Write the object to ``path`` (replaced atomically); ``ObjectNotFoundError`` if missing."""
        ...

    def iter_chunks(self, key: str, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """Open the object now (so a missing key raises here, before any byte is sent) and stream it."""
        ...

    def head(self, key: str) -> StoredObject | None:
        """The object's metadata, or None if missing."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object if present (idempotent; used to clean up orphans of failed requests)."""
        ...

    def delete_prefix(self, prefix: str) -> int:
        """Remove every object under the folder ``prefix`` (``a/b`` means ``a/b/...``); count them."""
        ...

    def ping(self) -> None:
        """Readiness: ``ObjectStoreUnavailableError`` saying why if the store cannot be used."""
        ...


# --- keys -----------------------------------------------------------------------------------------


def validate_key(key: str) -> str:
    """Return ``key`` if it is a relative key that cannot climb out of its root, else ``ValueError``."""
    if not key or len(key.encode()) > MAX_KEY_BYTES:
        raise ValueError(f"object key must be 1 to {MAX_KEY_BYTES} bytes long")
    if "\\" in key or any(ord(char) < 32 or char == "\x7f" for char in key):
        raise ValueError(f"object key {key!r} contains a backslash or a control character")
    if any(segment in ("", ".", "..") for segment in key.split("/")):
        raise ValueError(f"object key {key!r} is absolute or has an empty, '.' or '..' segment")
    return key


def _check_key_part(label: str, value: str) -> None:
    if not KEY_PART.fullmatch(value):
        raise ValueError(
            f"{label} {value!r} is not a valid key part: 1-128 characters of A-Z a-z 0-9 . _ -, "
            "starting with a letter or digit"
        )


def resource_prefix(tenant_id: str, kind: str, resource_id: str) -> str:
    """The folder holding one resource's objects, e.g. ``tenants/t1/models/m7/``."""
    for label, value in (("tenant_id", tenant_id), ("kind", kind), ("resource_id", resource_id)):
        _check_key_part(label, value)
    return f"tenants/{tenant_id}/{kind}/{resource_id}/"


def object_key(tenant_id: str, kind: str, resource_id: str, name: str) -> str:
    """``tenants/<tenant>/<kind>/<resource>/<name>``; every part is checked so that no tenant can
    address another tenant's prefix."""
    _check_key_part("name", name)
    return resource_prefix(tenant_id, kind, resource_id) + name


def _folder(prefix: str) -> str:
    """``a/b`` or ``a/b/`` → ``a/b/``: prefixes are folders, so ``u1`` never matches ``u10``."""
    return validate_key(prefix.rstrip("/")) + "/"


# --- S3 -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class S3Connection:
    """Where and how to reach S3. Credentials stay ``SecretStr`` so reprs and logs never show them;
    none at all means boto3's default chain (instance role, environment, ~/.aws)."""

    endpoint_url: str | None = None  # MinIO/SeaweedFS; None = AWS
    region: str = "us-east-1"
    access_key_id: SecretStr | None = None
    secret_access_key: SecretStr | None = None
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 60.0
    max_attempts: int = 3  # total tries, first one included
    ping_timeout_s: float = 2.0  # readiness probes answer fast and are not retried

    def __post_init__(self) -> None:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("set both S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY, or neither")
        if self.endpoint_url is not None:
            endpoint = urlsplit(self.endpoint_url)
            if endpoint.scheme not in ("http", "https") or not endpoint.hostname:
                raise ValueError("S3_ENDPOINT_URL must be an http:// or https:// URL")
            if endpoint.username is not None or endpoint.password is not None:
                raise ValueError("S3_ENDPOINT_URL must not carry credentials; use S3_ACCESS_KEY_ID/SECRET")

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Connection:
        return cls(
            endpoint_url=settings.s3_endpoint_url or None,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=settings.s3_secret_access_key,
        )

    def client(self, *, for_ping: bool = False, session: boto3.session.Session | None = None) -> S3Client:
        """A boto3 S3 client; path-style addressing for custom endpoints (MinIO/SeaweedFS need it).

        Clients of one ``session`` share its loaded service model (the second costs ~10 ms, not ~100).
        """
        timeout = min(self.ping_timeout_s, self.connect_timeout_s)
        config = Config(
            region_name=self.region,
            connect_timeout=timeout if for_ping else self.connect_timeout_s,
            read_timeout=timeout if for_ping else self.read_timeout_s,
            retries={"mode": "standard", "total_max_attempts": 1 if for_ping else self.max_attempts},
            s3={"addressing_style": "path"} if self.endpoint_url else None,
        )
        # A session of our own: boto3's default session is process-global mutable state.
        return (session or boto3.session.Session()).client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=_reveal(self.access_key_id),
            aws_secret_access_key=_reveal(self.secret_access_key),
            config=config,
        )

    def describe(self) -> str:
        return self.endpoint_url or f"AWS S3 ({self.region})"


def _reveal(secret: SecretStr | None) -> str | None:
    return None if secret is None else secret.get_secret_value()


def _require_absent_key(params: dict[str, Any], **_: Any) -> None:
    """Make an object-creating call conditional: the server answers 412 if the key already exists.
    Registered on PutObject and CompleteMultipartUpload, so boto3's managed (multipart) transfer,
    which does not accept IfNoneMatch itself, is write-once too."""
    params.setdefault("IfNoneMatch", "*")


_NOT_FOUND = frozenset({"NoSuchKey", "NotFound", "404"})
# 412: the key exists. 409 (AWS): a concurrent conditional write to the key is in flight; one of
# the writers wins, so for write-once keys this writer has lost.
_EXISTS = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412"})
_TRANSIENT = frozenset({"SlowDown", "RequestTimeout", "ServiceUnavailable", "InternalError"})


def _error_code(exc: ClientError) -> tuple[str, int]:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return code, status


def _from_client_error(exc: ClientError, action: str, where: str) -> ObjectStoreError:
    code, status = _error_code(exc)
    if code in _NOT_FOUND:
        return ObjectNotFoundError(f"no object at {where}")
    if code in _EXISTS or status == 412:
        return ObjectExistsError(f"{where} already exists; objects are written once")
    if code in _TRANSIENT or status >= 500:
        return ObjectStoreUnavailableError(f"{action} {where}: the store answered {code or status}")
    if code == "NoSuchBucket":
        return ObjectStoreError(f"{action} {where}: the bucket does not exist")
    if status == 403:
        return ObjectStoreError(f"{action} {where}: access denied ({code}); check the S3 credentials")
    return ObjectStoreError(f"{action} {where} failed: {code or status}")


def _is_unreachable(exc: Exception) -> bool:
    return isinstance(exc, BotoConnectionError | HTTPClientError | RetriesExceededError)


def _transport_reason(exc: Exception, endpoint: str) -> str:
    """Why a request never got an S3 answer, from the exception's type only (its text may echo URLs)."""
    if _is_unreachable(exc):
        return f"{endpoint} unreachable ({type(exc).__name__})"
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return "no S3 credentials found (set S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY)"
    return f"failed ({type(exc).__name__})"


def _from_transport_error(exc: Exception, action: str, where: str, endpoint: str) -> ObjectStoreError:
    error = ObjectStoreUnavailableError if _is_unreachable(exc) else ObjectStoreError
    return error(f"{action} {where}: {_transport_reason(exc, endpoint)}")


class S3ObjectStore:
    """Objects in an S3 bucket under an optional prefix, talking to AWS, MinIO or SeaweedFS alike.

    Write-once comes from S3 conditional writes (``If-None-Match: *``, honoured by AWS since 2024, by
    recent MinIO, and by SeaweedFS 4.48 on PutObject and CompleteMultipartUpload, as the tests check
    on a real server). For a server without
    them pass ``conditional_writes=False``: writes then check with HEAD before the PUT, which is racy
    (two writers can both see "absent" and the later PUT silently replaces the earlier object); keys
    embed unique resource ids, so two writers of one key are a bug elsewhere, but nothing stops it.
    """

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        connection: S3Connection | None = None,
        conditional_writes: bool = True,
        transfer_config: TransferConfig | None = None,
    ) -> None:
        if not BUCKET_NAME.fullmatch(bucket):
            raise ValueError(f"{bucket!r} is not a valid S3 bucket name")
        self.bucket = bucket
        self.prefix = validate_key(prefix.strip("/")) if prefix.strip("/") else ""
        self.connection = connection or S3Connection()
        self.conditional_writes = conditional_writes
        self._transfer_config = transfer_config or TransferConfig(
            multipart_threshold=8 * MIB, multipart_chunksize=8 * MIB, max_concurrency=4
        )
        session = boto3.session.Session()
        self._client = self.connection.client(session=session)
        self._ping_client = self.connection.client(for_ping=True, session=session)
        if conditional_writes:
            for operation in ("PutObject", "CompleteMultipartUpload"):
                self._client.meta.events.register(
                    f"before-parameter-build.s3.{operation}", _require_absent_key
                )

    def __repr__(self) -> str:
        return f"S3ObjectStore(s3://{self.bucket}/{self.prefix}, endpoint={self.connection.describe()})"

    def _full_key(self, key: str) -> str:
        validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _where(self, full_key: str) -> str:
        return f"s3://{self.bucket}/{full_key}"

    @contextmanager
    def _errors(self, action: str, full_key: str) -> Iterator[None]:
        """Translate botocore/s3transfer exceptions into ours (chained, so the cause stays in logs)."""
        try:
            yield
        except ClientError as exc:
            raise _from_client_error(exc, action, self._where(full_key)) from exc
        except (BotoCoreError, RetriesExceededError) as exc:
            endpoint = self.connection.describe()
            raise _from_transport_error(exc, action, self._where(full_key), endpoint) from exc

    def _refuse_if_exists(self, key: str) -> None:
        if self.head(key) is not None:
            where = self._where(self._full_key(key))
            raise ObjectExistsError(f"{where} already exists; objects are written once")

    def _transfer_manager(self) -> Any:
        """boto3's managed transfer: multipart, parallel parts, retries, abort on failure."""
        return create_transfer_manager(self._client, self._transfer_config)

    def _own_earlier_try(self, refused: ObjectExistsError, key: str, etag: str) -> StoredObject | None:
        """The stored object, if a write refused as "exists" was refused because its own first try
        had landed; else None.

        botocore resends a write whose answer was lost (timeout, 5xx); the resend then meets the
        object the first try stored and gets 412. Only after a resend, and only if the stored bytes
        are ours (same ETag), is that a success; a genuine second write is still refused.
        """
        cause = refused.__cause__
        metadata = cause.response.get("ResponseMetadata", {}) if isinstance(cause, ClientError) else {}
        if not metadata.get("RetryAttempts"):
            return None
        stored = self.head(key)
        return stored if stored is not None and stored.etag == etag else None

    def put(self, key: str, data: bytes, *, content_type: str) -> StoredObject:
        full_key = self._full_key(key)
        if not self.conditional_writes:
            self._refuse_if_exists(key)  # racy fallback, see the class docstring
        try:
            with self._errors("put", full_key):
                response = self._client.put_object(
                    Bucket=self.bucket, Key=full_key, Body=data, ContentType=content_type
                )
        except ObjectExistsError as refused:
            if (ours := self._own_earlier_try(refused, key, data_etag(data))) is None:
                raise
            return ours
        return StoredObject(key, len(data), _unquote(response["ETag"]), content_type)

    def put_file(self, key: str, path: Path, *, content_type: str) -> StoredObject:
        full_key = self._full_key(key)
        # Fail before streaming a large file; the conditional CompleteMultipartUpload is what decides.
        self._refuse_if_exists(key)
        try:
            with self._errors("upload", full_key), self._transfer_manager() as tm:
                extra_args = {"ContentType": content_type}
                tm.upload(str(path), self.bucket, full_key, extra_args=extra_args).result()
        except ObjectExistsError as refused:
            if (ours := self._own_earlier_try(refused, key, file_etag(path, self._transfer_config))) is None:
                raise
            return ours
        stored = self.head(key)
        if stored is None:  # S3 is read-after-write consistent; this means someone deleted it already
            raise ObjectStoreError(f"{self._where(full_key)} vanished right after its upload")
        return stored

    def get(self, key: str) -> bytes:
        full_key = self._full_key(key)
        with self._errors("get", full_key):
            body = self._client.get_object(Bucket=self.bucket, Key=full_key)["Body"]
            with body:
                return bytes(body.read())

    def download_file(self, key: str, path: Path) -> None:
        full_key = self._full_key(key)
        # s3transfer writes to a temporary name next to ``path`` and renames it when complete.
        with self._errors("download", full_key), self._transfer_manager() as tm:
            tm.download(self.bucket, full_key, str(path)).result()

    def iter_chunks(self, key: str, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        full_key = self._full_key(key)
        with self._errors("get", full_key):
            body = self._client.get_object(Bucket=self.bucket, Key=full_key)["Body"]
        return self._stream(body, full_key, chunk_size)

    def _stream(self, body: Any, full_key: str, chunk_size: int) -> Iterator[bytes]:
        with body, self._errors("stream", full_key):
            yield from body.iter_chunks(chunk_size)

    def head(self, key: str) -> StoredObject | None:
        full_key = self._full_key(key)
        try:
            with self._errors("head", full_key):
                response = self._client.head_object(Bucket=self.bucket, Key=full_key)
        except ObjectNotFoundError:
            return None
        content_type = response.get("ContentType") or DEFAULT_CONTENT_TYPE
        return StoredObject(key, int(response["ContentLength"]), _unquote(response["ETag"]), content_type)

    def delete(self, key: str) -> None:
        full_key = self._full_key(key)
        with self._errors("delete", full_key):
            self._client.delete_object(Bucket=self.bucket, Key=full_key)  # 204 whether or not it existed

    def delete_prefix(self, prefix: str) -> int:
        full_prefix = self._full_key(_folder(prefix).rstrip("/")) + "/"
        deleted = 0
        with self._errors("delete prefix", full_prefix):
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=full_prefix
            )
            for page in pages:  # at most 1000 keys a page, which is also DeleteObjects' limit
                keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
                if keys:
                    self._delete_batch(keys, full_prefix)
                    deleted += len(keys)
        return deleted

    def _delete_batch(self, keys: list[dict[str, str]], full_prefix: str) -> None:
        response = self._client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True})
        if failures := response.get("Errors", []):
            first = failures[0].get("Code", "unknown")
            raise ObjectStoreError(
                f"could not delete {len(failures)} objects under {self._where(full_prefix)}: {first}"
            )

    def ping(self) -> None:
        where = f"s3://{self.bucket} at {self.connection.describe()}"
        try:
            self._ping_client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            code, status = _error_code(exc)
            if status == 404 or code in ("NoSuchBucket", "NotFound", "404"):
                reason = "the bucket does not exist"
            elif status == 403:
                reason = "access denied; check the S3 credentials"
            else:
                reason = f"the store answered {code or status}"
            raise ObjectStoreUnavailableError(f"object store {where} not ready: {reason}") from exc
        except BotoCoreError as exc:
            reason = _transport_reason(exc, self.connection.describe())
            raise ObjectStoreUnavailableError(f"object store {where} not ready: {reason}") from exc

    def create_bucket(self) -> None:
        """Create the bucket unless this account already has it (for compose and tests)."""
        arguments: dict[str, Any] = {"Bucket": self.bucket}
        if self.connection.region != "us-east-1":  # AWS rejects an explicit us-east-1 constraint
            arguments["CreateBucketConfiguration"] = {"LocationConstraint": self.connection.region}
        with self._errors("create bucket", ""):
            try:
                self._client.create_bucket(**arguments)
            except ClientError as exc:
                if _error_code(exc)[0] != "BucketAlreadyOwnedByYou":
                    raise


def _unquote(etag: str) -> str:
    return etag.strip('"')


# --- local folder ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Staged:
    path: Path
    size: int
    md5: str


class LocalObjectStore:
    """Objects as files under ``root``: the embedded default, and a twin of S3 for tests.

    The object for key ``a/b`` is the file ``root/a/b``. Its metadata is JSON in
    ``root/.batchcam/meta/a/b.json``; writes are staged in ``root/.batchcam/staging`` and published
    with ``os.link``, which fails if the target exists, so of two concurrent writers exactly one wins
    and readers never see a half-written file. The root must be on one local POSIX filesystem.
    """

    RESERVED = ".batchcam"  # first key segment kept for bookkeeping

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._meta_root = self.root / self.RESERVED / "meta"
        self._staging = self.root / self.RESERVED / "staging"
        for folder in (self.root, self._meta_root, self._staging):
            folder.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"LocalObjectStore({str(self.root)!r})"

    def _path(self, key: str) -> Path:
        validate_key(key)
        if key.split("/", 1)[0] == self.RESERVED:
            raise ValueError(f"object key {key!r} uses the reserved folder {self.RESERVED!r}")
        path = self.root / key
        if not path.resolve().is_relative_to(self.root):  # defence in depth, e.g. against symlinks
            raise ValueError(f"object key {key!r} escapes the store's root")
        return path

    def _meta_path(self, key: str) -> Path:
        return self._meta_root / f"{key}.json"

    def put(self, key: str, data: bytes, *, content_type: str) -> StoredObject:
        return self._publish(key, io.BytesIO(data), content_type)

    def put_file(self, key: str, path: Path, *, content_type: str) -> StoredObject:
        with path.open("rb") as source:
            return self._publish(key, source, content_type)

    def _publish(self, key: str, source: BinaryIO, content_type: str) -> StoredObject:
        target = self._path(key)
        if target.exists():  # fail fast without copying; the link below is what decides
            raise ObjectExistsError(f"{key} already exists; objects are written once")
        staged = self._stage(source)
        try:
            self._link(staged.path, target, key)
        finally:
            staged.path.unlink(missing_ok=True)
        stored = StoredObject(key, staged.size, staged.md5, content_type)
        # Only the winner gets here. A reader between link and this write sees the metadata fallback.
        self._write_metadata(stored)
        return stored

    def _stage(self, source: BinaryIO) -> _Staged:
        descriptor, name = tempfile.mkstemp(dir=self._staging)
        md5, size = hashlib.md5(usedforsecurity=False), 0
        try:
            with os.fdopen(descriptor, "wb") as staged:
                while chunk := source.read(CHUNK_SIZE):
                    md5.update(chunk)
                    staged.write(chunk)
                    size += len(chunk)
                staged.flush()
                os.fsync(staged.fileno())  # durable before it becomes visible
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
        return _Staged(Path(name), size, md5.hexdigest())

    def _link(self, staged: Path, target: Path, key: str) -> None:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise ObjectStoreError(f"{key} lies under a path that is itself an object") from None
        try:
            os.link(staged, target)  # atomic, and fails if the target exists: exactly one writer wins
        except FileExistsError:
            raise ObjectExistsError(f"{key} already exists; objects are written once") from None

    def _write_metadata(self, stored: StoredObject) -> None:
        meta_path = self._meta_path(stored.key)
        meta_path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, name = tempfile.mkstemp(dir=self._staging)
        with os.fdopen(descriptor, "w") as staged:
            json.dump({"size": stored.size, "etag": stored.etag, "content_type": stored.content_type}, staged)
        os.replace(name, meta_path)

    def _stored(self, key: str, target: Path) -> StoredObject:
        """Metadata of an existing object; computed from the file if its JSON is not there (yet)."""
        try:
            meta = json.loads(self._meta_path(key).read_text())
            return StoredObject(key, int(meta["size"]), str(meta["etag"]), str(meta["content_type"]))
        except (FileNotFoundError, ValueError, KeyError):
            return StoredObject(key, target.stat().st_size, file_md5(target), DEFAULT_CONTENT_TYPE)

    def _open(self, key: str) -> BinaryIO:
        try:
            return self._path(key).open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFoundError(f"no object at {key}") from None

    def get(self, key: str) -> bytes:
        with self._open(key) as source:
            return source.read()

    def download_file(self, key: str, path: Path) -> None:
        with self._open(key) as source:
            descriptor, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
            try:
                with os.fdopen(descriptor, "wb") as staged:
                    shutil.copyfileobj(source, staged, CHUNK_SIZE)
                os.replace(name, path)
            except BaseException:
                Path(name).unlink(missing_ok=True)
                raise

    def iter_chunks(self, key: str, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        return _read_chunks(self._open(key), chunk_size)

    def head(self, key: str) -> StoredObject | None:
        target = self._path(key)
        return self._stored(key, target) if target.is_file() else None

    def delete(self, key: str) -> None:
        target = self._path(key)
        if target.is_file():
            target.unlink(missing_ok=True)
        self._meta_path(key).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> int:
        folder_key = _folder(prefix).rstrip("/")
        folder = self._path(folder_key)
        if not folder.is_dir():
            return 0
        deleted = sum(1 for path in folder.rglob("*") if path.is_file())
        shutil.rmtree(folder)
        shutil.rmtree(self._meta_root / folder_key, ignore_errors=True)
        return deleted

    def ping(self) -> None:
        if not self.root.is_dir() or not os.access(self.root, os.W_OK | os.X_OK):
            raise ObjectStoreUnavailableError(f"local object store {self.root} is missing or not writable")


def _read_chunks(source: BinaryIO, chunk_size: int) -> Iterator[bytes]:
    with source:
        while chunk := source.read(chunk_size):
            yield chunk


# --- construction ---------------------------------------------------------------------------------


def open_object_store(settings: Settings) -> ObjectStore:
    """The store that ``OBJECT_STORE_URL`` names: ``s3://bucket[/prefix]`` or ``file:///path``."""
    url = urlsplit(settings.resolved_object_store_url())
    if url.scheme == "file":
        return LocalObjectStore(_local_root(url))
    if url.scheme == "s3":
        bucket, prefix = _s3_location(url)
        return S3ObjectStore(bucket, prefix=prefix, connection=S3Connection.from_settings(settings))
    shown = f"{url.scheme}://" if url.scheme else "a bare path"
    raise ValueError(f"OBJECT_STORE_URL must be s3://bucket[/prefix] or file:///path, not {shown}")


def _local_root(url: SplitResult) -> Path:
    if url.netloc not in ("", "localhost") or url.query or url.fragment:
        raise ValueError("OBJECT_STORE_URL file:// must name a local absolute path, e.g. file:///srv/objects")
    root = Path(url2pathname(url.path))
    if not root.is_absolute():
        raise ValueError("OBJECT_STORE_URL file:// must name a local absolute path, e.g. file:///srv/objects")
    return root


def _s3_location(url: SplitResult) -> tuple[str, str]:
    if "@" in url.netloc or ":" in url.netloc:
        raise ValueError(
            "OBJECT_STORE_URL s3:// takes a bucket only: put the endpoint in S3_ENDPOINT_URL and "
            "credentials in S3_ACCESS_KEY_ID/S3_SECRET_ACCESS_KEY"
        )
    if url.query or url.fragment:
        raise ValueError("OBJECT_STORE_URL s3:// takes no query or fragment")
    return url.netloc, url.path.strip("/")


def ensure_bucket(store: ObjectStore) -> None:
    """Create the bucket behind an S3 store if it is missing; a local store needs nothing."""
    if isinstance(store, S3ObjectStore):
        store.create_bucket()
