"""Opening the store that ``OBJECT_STORE_URL`` names, and creating its bucket."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import SplitResult, urlsplit
from urllib.request import url2pathname

from persistence.objects.local import LocalObjectStore
from persistence.objects.s3 import S3Connection, S3ObjectStore
from persistence.objects.store import ObjectStore
from persistence.settings import Settings


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
