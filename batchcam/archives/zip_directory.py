"""Counting a zip's members before :mod:`zipfile` loads them.

``zipfile.ZipFile`` builds one Python object per central-directory entry as it opens an archive
(whatever count the end record declares): a 200 MB upload of empty members would cost gigabytes of
memory before any limit could be checked. This finds the central directory with zipfile's own code,
then walks its fixed-size entry headers, stopping past the cap. Whatever is malformed is left for
zipfile to report.
"""

from __future__ import annotations

import struct
import zipfile
from typing import BinaryIO

# zipfile's private end-record reader, on purpose: the count must be of exactly the entries that
# ZipFile will load, and any search of our own can be steered (by a comment, trailing bytes, a stray
# zip64 locator) to a different directory than zipfile's. Same code in CPython 3.11 to 3.13.
_read_end_record = zipfile._EndRecData  # type: ignore[attr-defined]
SIGNATURE_FIELD, SIZE_FIELD, LOCATION_FIELD = 0, 5, 9  # zipfile's _ECD_SIGNATURE, _ECD_SIZE, _ECD_LOCATION
ZIP64_END_SIGNATURE = b"PK\x06\x06"
ZIP64_RECORDS_SIZE = 56 + 20  # the zip64 end record and its locator, before the end record
CENTRAL_HEADER = struct.Struct("<4s4B4HL2L5H2L")  # 46 bytes, then name, extra field and comment
CENTRAL_SIGNATURE = b"PK\x01\x02"


def count_members(file: BinaryIO, stop_after: int) -> int:
    """Entries in the central directory, counted up to ``stop_after + 1`` (0 if none can be found)."""
    located = central_directory(file)
    if located is None:
        return 0
    start, size = located
    file.seek(start)
    count = consumed = 0
    while consumed < size and count <= stop_after:
        header = file.read(CENTRAL_HEADER.size)
        if len(header) < CENTRAL_HEADER.size or header[:4] != CENTRAL_SIGNATURE:
            break  # zipfile will say the archive is broken
        fields = CENTRAL_HEADER.unpack(header)
        variable = fields[12] + fields[13] + fields[14]  # lengths of the name, extra field, comment
        file.seek(variable, 1)
        consumed += CENTRAL_HEADER.size + variable
        count += 1
    return count


def central_directory(file: BinaryIO) -> tuple[int, int] | None:
    """(offset, size) of the central directory, computed as ``ZipFile`` computes them (data prepended
    to an archive shifts it); None without an end record."""
    end = _read_end_record(file)
    if not end:
        return None
    size = end[SIZE_FIELD]
    start = end[LOCATION_FIELD] - size
    if end[SIGNATURE_FIELD] == ZIP64_END_SIGNATURE:
        start -= ZIP64_RECORDS_SIZE
    return (start, size) if start >= 0 else None
