"""The ``.npy`` members of an ``.npz`` archive: each header read (and checked) before its array.

A header names the array's dtype and shape, so every limit is checked before any data is inflated;
object arrays are refused, never unpickled.
"""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass

import numpy as np

from batchcam.errors import DataValidationError

# What zipfile and numpy raise for a member that cannot be read as an array; RuntimeError: an
# encrypted member, NotImplementedError: a compression method zipfile does not know.
UNREADABLE_MEMBER_ERRORS = (
    ValueError,
    EOFError,
    OSError,
    zipfile.BadZipFile,
    zlib.error,
    RuntimeError,
    NotImplementedError,
)


@dataclass(frozen=True)
class ArrayHeader:
    """What a ``.npy`` member declares about its array, read without loading the data."""

    key: str
    shape: tuple[int, ...]
    dtype: np.dtype


def npy_members(members: list[zipfile.ZipInfo]) -> dict[str, zipfile.ZipInfo]:
    """Array name → member, the way ``np.load`` names them (``images.npy`` → ``images``)."""
    return {m.filename.removesuffix(".npy"): m for m in members if m.filename.endswith(".npy")}


def read_header(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> ArrayHeader:
    key = member.filename.removesuffix(".npy")
    try:
        with archive.open(member) as stream:
            version = np.lib.format.read_magic(stream)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
            else:  # 3.0 exists only for structured dtypes with non-ASCII field names
                raise ValueError(f"unsupported .npy format version {version}")
    except UNREADABLE_MEMBER_ERRORS as error:
        raise invalid_array_error(key, error) from error
    if dtype.hasobject:
        raise DataValidationError(
            f"array {key!r} holds Python objects ({dtype}), which are never unpickled; save plain arrays "
            "(class names as a str array, e.g. np.array(names, dtype=str))",
            code="npz_object_array",
        )
    return ArrayHeader(key=key, shape=tuple(shape), dtype=dtype)


def read_array(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> np.ndarray:
    key = member.filename.removesuffix(".npy")
    try:
        with archive.open(member) as stream:
            return np.lib.format.read_array(stream, allow_pickle=False)
    except UNREADABLE_MEMBER_ERRORS as error:
        raise invalid_array_error(key, error) from error


def invalid_array_error(key: str, error: Exception) -> DataValidationError:
    return DataValidationError(
        f"array {key!r} is not a readable .npy array ({error}); save the file with numpy.savez or "
        "numpy.savez_compressed",
        code="npz_invalid_array",
    )


def check_image_header(header: ArrayHeader) -> None:
    """uint8 ``N×H×W`` or channels-last ``N×H×W×C`` with C = 1 or 3: the layout of every image upload."""
    if header.dtype != np.uint8:
        raise DataValidationError(
            f"array {header.key!r} has dtype {header.dtype}; only uint8 (0–255) is accepted, e.g. "
            "(x * 255).round().astype(np.uint8) for floats in [0, 1]",
            code="npz_wrong_dtype",
        )
    shape = header.shape
    channels_ok = len(shape) == 3 or (len(shape) == 4 and shape[3] in (1, 3))
    if not channels_ok or shape[0] < 0 or min(shape[1:]) <= 0:  # numpy's header parser allows -1
        raise DataValidationError(
            f"array {header.key!r} has shape {shape}; N×H×W or channels-last N×H×W×C with C = 1 or 3 "
            "(and positive H, W) is accepted",
            code="npz_wrong_shape",
        )


def channels_first(images: np.ndarray) -> np.ndarray:
    """``N×H×W`` or ``N×H×W×C`` → ``N×C×H×W``, as the library and the model read images."""
    return images[:, None] if images.ndim == 3 else images.transpose(0, 3, 1, 2)
