"""Upload progress: a readable that reports the bytes httpx has read from it so far."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import BinaryIO

# Called with (bytes sent so far, total bytes).
ProgressCallback = Callable[[int, int], None]


class ReportingReader:
    """Wraps an open binary file; httpx's multipart encoder reads it in chunks, and may rewind it."""

    def __init__(self, file: BinaryIO, total: int, callback: ProgressCallback | None) -> None:
        self._file, self._total, self._callback = file, total, callback
        self.name = getattr(file, "name", "upload")

    def read(self, size: int = -1) -> bytes:
        chunk = self._file.read(size)
        if self._callback is not None:
            self._callback(self._file.tell(), self._total)
        return chunk

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()
