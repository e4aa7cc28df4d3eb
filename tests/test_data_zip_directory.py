"""Counting a zip's members before zipfile loads them: the same count as zipfile's, at a bounded cost."""

from __future__ import annotations

import io
import struct
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from batchcam.archives.zip_directory import count_members
from batchcam.data.registry import load_upload
from batchcam.errors import DataValidationError

MIB = 1024 * 1024
END_RECORD = struct.Struct("<4s4H2LH")  # the zip format's end of central directory record


def zip_bytes(count: int, *, comment: bytes = b"", compression: int = zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for index in range(count):
            archive.writestr(f"class{index % 3}/{index}.png", b"x" * (index % 5))
        archive.comment = comment
    return buffer.getvalue()


def repeated_entries(count: int) -> bytes:
    """One member's central-directory entry ``count`` times, behind an end record that declares a
    single entry: zipfile ignores that count and loads every entry it finds."""
    one = zip_bytes(1)
    local_size = 30 + len("class0/0.png")
    entry = one[local_size : len(one) - END_RECORD.size]
    end = END_RECORD.pack(b"PK\x05\x06", 0, 0, 1, 1, len(entry) * count, local_size, 0)
    return one[:local_size] + entry * count + end


def end_record_spelling_its_own_signature() -> bytes:
    """Its two entry counts (which zipfile ignores) read "PK\\x05\\x06": a search from the end finds
    that first, inside the real record."""
    data = bytearray(zip_bytes(7))
    end = len(data) - END_RECORD.size
    data[end + 8 : end + 12] = b"PK\x05\x06"
    return bytes(data)


def stray_zip64_locator() -> bytes:
    """The last member's comment ends like a zip64 locator, right before the end record; there is
    no zip64 end record, so zipfile falls back to the plain one."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for index in range(7):
            info = zipfile.ZipInfo(f"class0/{index}.png")
            info.comment = struct.pack("<4sLQL", b"PK\x06\x07", 0, 0, 1) if index == 6 else b""
            archive.writestr(info, b"x")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "archive",
    [
        zip_bytes(0),
        zip_bytes(7),
        zip_bytes(7, comment=b"an archive comment"),
        zip_bytes(7, compression=zipfile.ZIP_DEFLATED),
        b"#!/bin/sh\nexit 0\n" + zip_bytes(5),  # data prepended, as self-extracting archives have
        repeated_entries(1_000),
        end_record_spelling_its_own_signature(),
        stray_zip64_locator(),
        zip_bytes(7) + bytes(65_536),  # trailing bytes: the end record lies 65,558 bytes from the end
    ],
    ids=[
        "empty",
        "plain",
        "comment",
        "deflated",
        "prepended",
        "lying-end-record",
        "signature-in-counts",
        "stray-zip64-locator",
        "trailing-bytes",
    ],
)
def test_the_count_is_zipfiles_count(archive: bytes) -> None:
    expected = len(zipfile.ZipFile(io.BytesIO(archive)).infolist())
    assert count_members(io.BytesIO(archive), stop_after=10**6) == expected
    if expected > 2:
        assert count_members(io.BytesIO(archive), stop_after=2) == 3  # it stops just past the cap


@pytest.mark.slow
def test_a_zip64_archive_is_counted_through_its_zip64_end_record() -> None:
    archive = zip_bytes(70_000)  # more than 65,535 entries: zipfile writes a zip64 end record
    assert count_members(io.BytesIO(archive), stop_after=10**6) == 70_000


@pytest.mark.slow
def test_too_many_members_are_refused_before_zipfile_loads_them(tmp_path: Path) -> None:
    path = tmp_path / "many.zip"
    path.write_bytes(repeated_entries(300_000))  # 13 MB; the default cap is 250,000 members
    tracemalloc.start()
    try:
        with pytest.raises(DataValidationError) as refused:
            load_upload(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert refused.value.code == "too_many_members" and "more than 250,000 members" in refused.value.message
    assert peak < 16 * MIB  # zipfile's own objects for 300,000 entries take far more
