"""Counting a zip's members before :mod:`zipfile` loads them.

``zipfile.ZipFile`` builds one Python object per central-directory entry as it opens an archive
(whatever count the end record declares): a 200 MB upload of empty members would cost gigabytes of
memory before any limit could be checked. This finds the central directory the way zipfile does and
walks its fixed-size entry headers, stopping past the cap. Whatever is malformed is left for zipfile
to report.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

# The zip format's records (PKWARE APPNOTE 4.3), laid out as zipfile lays them out.
END_RECORD = struct.Struct("<4s4H2LH")  # [5]: the central directory's size
END_SIGNATURE = b"PK\x05\x06"
ZIP64_END_RECORD = struct.Struct("<4sQ2H2L4Q")  # [8]: the central directory's size
ZIP64_END_SIGNATURE = b"PK\x06\x06"
ZIP64_LOCATOR_SIZE = 20  # between the zip64 end record and the end record
ZIP64_LOCATOR_SIGNATURE = b"PK\x06\x07"
CENTRAL_HEADER = struct.Struct("<4s4B4HL2L5H2L")  # 46 bytes, then name, extra field and comment
CENTRAL_SIGNATURE = b"PK\x01\x02"
MAX_COMMENT = 0xFFFF


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
    """(offset, size) of the central directory, located from the end as zipfile does (data
    prepended to the archive shifts it), or None without an end record."""
    file_size = file.seek(0, 2)
    tail_start = max(0, file_size - END_RECORD.size - MAX_COMMENT)
    file.seek(tail_start)
    tail = file.read()
    at = tail.rfind(END_SIGNATURE)
    if at < 0 or len(tail) - at < END_RECORD.size:
        return None
    end_position = tail_start + at
    size = END_RECORD.unpack_from(tail, at)[5]
    zip64_position = end_position - ZIP64_LOCATOR_SIZE - ZIP64_END_RECORD.size
    if zip64_position >= 0:  # zipfile reads a zip64 end record whenever its locator is there
        file.seek(end_position - ZIP64_LOCATOR_SIZE)
        if file.read(4) == ZIP64_LOCATOR_SIGNATURE:
            file.seek(zip64_position)
            record = file.read(ZIP64_END_RECORD.size)
            if record[:4] != ZIP64_END_SIGNATURE:
                return None
            size, end_position = ZIP64_END_RECORD.unpack(record)[8], zip64_position
    return max(0, end_position - size), size
