"""Safe inspection of zip archives (folder-of-images zips and .npz files) before anything is read."""

from __future__ import annotations

import io
import stat
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from batchcam.archives.zip_directory import count_members
from batchcam.errors import DataValidationError
from batchcam.spec.limits import UploadLimits

UploadSource = Path | bytes
"""An upload as a file on disk or as the bytes already in memory."""

ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # a local file header, or the end record of an empty zip


def check_upload_size(source: UploadSource, limits: UploadLimits, *, name: str) -> None:
    size = source.stat().st_size if isinstance(source, Path) else len(source)
    if size > limits.max_bytes:
        raise DataValidationError(
            f"upload {name!r} is {size:,} bytes; at most {limits.max_bytes:,} bytes are accepted",
            code="upload_too_large",
        )


def open_zip(
    source: UploadSource, limits: UploadLimits, *, name: str, kind: str, code: str
) -> zipfile.ZipFile:
    """Open ``source`` as a zip, or raise ``code`` saying that a ``kind`` file was expected.

    Its members are counted first: zipfile builds an object per member as it opens an archive.
    """
    try:
        with source.open("rb") if isinstance(source, Path) else io.BytesIO(source) as file:
            members = count_members(file, stop_after=limits.max_archive_members)
        if members > limits.max_archive_members:
            raise too_many_members(f"more than {limits.max_archive_members:,}", limits)
        return zipfile.ZipFile(source if isinstance(source, Path) else io.BytesIO(source))
    # NotImplementedError: a member needs a zip version zipfile cannot read
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as error:
        raise DataValidationError(
            f"upload {name!r} is not a readable {kind} ({error}); a {kind} is a zip archive",
            code=code,
        ) from error


def too_many_members(count: str, limits: UploadLimits) -> DataValidationError:
    return DataValidationError(
        f"archive has {count} members; at most {limits.max_archive_members:,} are accepted",
        code="too_many_members",
    )


def check_archive(archive: zipfile.ZipFile, limits: UploadLimits) -> list[zipfile.ZipInfo]:
    """Check member count, declared sizes, compression ratios and paths; return the members.

    Only the central directory is read: nothing is decompressed, so a zip bomb is refused for free.
    """
    members = archive.infolist()
    if len(members) > limits.max_archive_members:  # open_zip counted first; this guards the counter
        raise too_many_members(f"{len(members):,}", limits)
    total = sum(member.file_size for member in members)
    if total > limits.max_uncompressed_bytes:
        raise DataValidationError(
            f"archive declares {total:,} uncompressed bytes; at most {limits.max_uncompressed_bytes:,} "
            "are accepted",
            code="archive_too_large",
        )
    for member in members:
        check_member_path(member)
        check_compression_ratio(member, limits)
    return members


def check_compression_ratio(member: zipfile.ZipInfo, limits: UploadLimits) -> None:
    ratio = member.file_size / max(member.compress_size, 1)
    if ratio > limits.max_compression_ratio:
        raise DataValidationError(
            f"archive member {member.filename!r} expands {ratio:.0f}× when decompressed; at most "
            f"{limits.max_compression_ratio:g}× is accepted (this looks like a zip bomb)",
            code="compression_ratio_too_high",
        )


def check_member_path(member: zipfile.ZipInfo) -> None:
    """Refuse names that would escape a folder if extracted: absolute, ``..``, backslashes, symlinks."""
    name = member.filename
    parts = PurePosixPath(name).parts
    unsafe = (
        name.startswith("/")
        or "\\" in name
        or "\x00" in name
        or ".." in parts
        or (len(name) > 1 and name[1] == ":")  # a Windows drive letter such as C:
        or is_symlink(member)
    )
    if unsafe:
        raise DataValidationError(
            f"archive member {name!r} has an unsafe path; only relative paths inside the archive are "
            "accepted (no absolute paths, '..', backslashes, drive letters or symbolic links)",
            code="archive_path_traversal",
        )


def is_symlink(member: zipfile.ZipInfo) -> bool:
    unix_mode = member.external_attr >> 16  # zips made on Unix keep st_mode in the high 16 bits
    return stat.S_ISLNK(unix_mode)


def read_member(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> bytes:
    """The member's bytes; a CRC mismatch or broken stream becomes a ``corrupt_archive`` error."""
    try:
        return archive.read(member)
    # RuntimeError: encrypted member; NotImplementedError: unknown compression method
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, RuntimeError, NotImplementedError) as error:
        raise DataValidationError(
            f"archive member {member.filename!r} cannot be read ({error}); only undamaged, unencrypted "
            "archives (stored or deflate) are accepted",
            code="corrupt_archive",
        ) from error
