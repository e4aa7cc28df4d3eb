"""The object store the API and the workers share: what a store does, whatever its backend.

Artifacts (uploads, checkpoints, weights, prototypes, heatmaps, reports) live under
``tenants/<tenant>/<kind>/<resource>/<name>`` (see ``keys.object_key``) and are written once: a put
onto an existing key raises ``ObjectExistsError`` and leaves the stored object untouched. Both stores
(``s3.S3ObjectStore``, ``local.LocalObjectStore``) behave the same, so the embedded default
(``file://``) and production (``s3://``) run the same code paths.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

MIB = 1024 * 1024
CHUNK_SIZE = MIB
DEFAULT_CONTENT_TYPE = "application/octet-stream"


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
