"""Objects in an S3 bucket (AWS, MinIO, SeaweedFS): the connection, the store, and how boto3's errors
become the store's (``errors``)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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

from persistence.objects.errors import (
    ObjectExistsError,
    ObjectNotFoundError,
    ObjectStoreError,
    ObjectStoreUnavailableError,
)
from persistence.objects.etags import data_etag, file_etag
from persistence.objects.keys import folder_prefix, validate_key
from persistence.objects.store import CHUNK_SIZE, DEFAULT_CONTENT_TYPE, MIB, StoredObject
from persistence.settings import Settings

BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")

S3Client = Any  # boto3 ships no type hints


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
        full_prefix = self._full_key(folder_prefix(prefix).rstrip("/")) + "/"
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
