"""Images to explain sent as one ``.npz``: its ``images`` array, in the layout of a dataset upload.

Torch-free, like :mod:`batchcam.pixels.decoding`, so that the API reads (and refuses) such uploads
itself. The archive's directory and the header of ``images`` are checked against every cap before the
array is inflated; other arrays in the file (``labels``, say) are not read.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from batchcam.archives.npy import channels_first, check_image_header, npy_members, read_array, read_header
from batchcam.archives.zips import ZIP_MAGICS, check_archive, open_zip
from batchcam.errors import DataValidationError
from batchcam.spec.limits import UploadLimits

IMAGES_KEY = "images"
UNREADABLE_CODE = "invalid_npz"
MAX_MEMBERS = 64  # arrays in one .npz of images; its other arrays are never read
LAYOUT = "an 'images' array, uint8 N×H×W or N×H×W×C (C = 1 or 3), as numpy.savez writes it"


def is_npz(data: bytes) -> bool:
    """Whether the bytes are a zip archive, as every ``.npz`` is (PNG and JPEG begin otherwise)."""
    return data.startswith(ZIP_MAGICS)


def read_npz_images(
    data: bytes, limits: UploadLimits, *, name: str, max_images: int, max_total_pixels: int
) -> np.ndarray:
    """The ``images`` array as uint8 ``N×C×H×W``; every error's message begins with ``name``.

    ``limits``: the deployment's upload caps (archive shape, pixels per image); ``max_images`` and
    ``max_total_pixels``: what the request still has room for.
    """
    # Opening a zip costs an object per member: an .npz of images needs a few, not a dataset's many.
    limits = dataclasses.replace(limits, max_archive_members=min(limits.max_archive_members, MAX_MEMBERS))
    try:
        return read_images(data, limits, name=name, max_images=max_images, max_total_pixels=max_total_pixels)
    except DataValidationError as error:
        if error.code == UNREADABLE_CODE:  # open_zip's own message names the upload already
            raise
        raise DataValidationError(f"{name}: {error.message}", code=error.code) from None


def read_images(
    data: bytes, limits: UploadLimits, *, name: str, max_images: int, max_total_pixels: int
) -> np.ndarray:
    with open_zip(data, limits, name=name, kind=".npz file", code=UNREADABLE_CODE) as archive:
        members = npy_members(check_archive(archive, limits))
        if IMAGES_KEY not in members:
            raise DataValidationError(
                f"no array named {IMAGES_KEY!r} (found: {sorted(members) or 'none'}); "
                f"an .npz of images to explain holds {LAYOUT}",
                code="npz_missing_key",
            )
        header = read_header(archive, members[IMAGES_KEY])
        check_image_header(header)
        count, height, width = header.shape[:3]
        check_caps(count, height * width, limits, max_images=max_images)
        if count * height * width > max_total_pixels:
            raise DataValidationError(
                f"the images hold {count * height * width:,} pixels; at most {max_total_pixels:,} are "
                "accepted in one request; send fewer or smaller images per request",
                code="images_too_large",
            )
        return np.ascontiguousarray(channels_first(read_array(archive, members[IMAGES_KEY])))


def check_caps(count: int, pixels: int, limits: UploadLimits, *, max_images: int) -> None:
    if count == 0:
        raise DataValidationError(f"the file holds no images in {IMAGES_KEY!r}", code="empty_upload")
    if count > max_images:
        raise DataValidationError(
            f"the file holds {count:,} images; at most {max_images:,} are accepted in this request, "
            "split the rest",
            code="too_many_images",
        )
    if pixels > limits.max_image_pixels:
        raise DataValidationError(
            f"its images have {pixels:,} pixels each; at most {limits.max_image_pixels:,} pixels "
            "per image are accepted",
            code="image_too_large",
        )
