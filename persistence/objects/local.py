"""Objects as files in a local folder: the embedded default, and a twin of S3 for tests."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from persistence.objects.errors import (
    ObjectExistsError,
    ObjectNotFoundError,
    ObjectStoreError,
    ObjectStoreUnavailableError,
)
from persistence.objects.etags import file_md5
from persistence.objects.keys import folder_prefix, validate_key
from persistence.objects.store import CHUNK_SIZE, DEFAULT_CONTENT_TYPE, StoredObject


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
        folder_key = folder_prefix(prefix).rstrip("/")
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
