"""The ETag S3 gives an object we upload, computed locally: how a retried write recognises its own bytes."""

from __future__ import annotations

import hashlib
from pathlib import Path

from boto3.s3.transfer import TransferConfig
from s3transfer.utils import ChunksizeAdjuster

READ_SIZE = 1024 * 1024


def data_etag(data: bytes) -> str:
    """A single-part object's ETag: the MD5 of its bytes."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def file_etag(path: Path, config: TransferConfig) -> str:
    """The ETag of ``path`` uploaded by boto3's transfer manager with ``config``: MD5 of the bytes
    below the multipart threshold, else MD5 of the parts' MD5s and ``-<parts>`` (s3transfer's part
    size, adjusted as it adjusts it)."""
    size = path.stat().st_size
    if size < config.multipart_threshold:
        return _md5_of_file(path)
    part_size = ChunksizeAdjuster().adjust_chunksize(config.multipart_chunksize, size)
    digests = []
    with path.open("rb") as source:
        while part := source.read(part_size):
            digests.append(hashlib.md5(part, usedforsecurity=False).digest())
    return f"{hashlib.md5(b''.join(digests), usedforsecurity=False).hexdigest()}-{len(digests)}"


def _md5_of_file(path: Path) -> str:
    md5 = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as source:
        while chunk := source.read(READ_SIZE):
            md5.update(chunk)
    return md5.hexdigest()
