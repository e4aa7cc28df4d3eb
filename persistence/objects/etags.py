"""The ETag S3 gives an object we upload, computed locally: how a retried write recognises its own bytes."""

from __future__ import annotations

import hashlib
from pathlib import Path

from boto3.s3.transfer import TransferConfig
from s3transfer.utils import ChunksizeAdjuster


def data_etag(data: bytes) -> str:
    """A single-part object's ETag: the MD5 of its bytes."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def file_etag(path: Path, config: TransferConfig) -> str:
    """The ETag of ``path`` uploaded by boto3's transfer manager with ``config``: MD5 of the bytes
    below the multipart threshold, else MD5 of the parts' MD5s and ``-<parts>`` (s3transfer's part
    size, adjusted as it adjusts it)."""
    size = path.stat().st_size
    if size < config.multipart_threshold:
        return file_md5(path)
    part_size = ChunksizeAdjuster().adjust_chunksize(config.multipart_chunksize, size)
    digests = []
    with path.open("rb") as source:
        while part := source.read(part_size):
            digests.append(hashlib.md5(part, usedforsecurity=False).digest())
    return f"{hashlib.md5(b''.join(digests), usedforsecurity=False).hexdigest()}-{len(digests)}"


def file_md5(path: Path) -> str:
    """A single-part object's ETag, read from a file: the MD5 of its bytes."""
    with path.open("rb") as source:
        return hashlib.file_digest(source, lambda: hashlib.md5(usedforsecurity=False)).hexdigest()
