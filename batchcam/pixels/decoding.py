"""Safe decoding of one uploaded PNG or JPEG into a uint8 ``C×H×W`` numpy array.

Torch-free so that the API can decode (and reject) uploads itself; :mod:`batchcam.data.images`
wraps the array as a tensor for the library.
"""

from __future__ import annotations

import io
import zlib

import numpy as np
from PIL import Image, UnidentifiedImageError

from batchcam.errors import DataValidationError
from batchcam.spec.limits import UploadLimits

ACCEPTED_FORMATS = ("PNG", "JPEG")
SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")  # how PNG and JPEG files begin
GRAYSCALE_MODES = frozenset({"1", "L", "LA", "La"})
SIXTEEN_BIT_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N"})  # 16-bit grayscale PNGs


def decode_image_array(data: bytes, limits: UploadLimits, *, name: str = "image") -> np.ndarray:
    """Decode PNG/JPEG bytes to uint8 ``C×H×W``: C = 1 for grayscale, else 3 (RGB, alpha dropped).

    The format is the one Pillow detects from the content, never the file name. The pixel count is
    checked from the header before any pixel is decoded, so a forged huge header costs nothing.
    """
    image = open_image(data, limits, name=name)
    check_image_pixels(image, limits, name=name)
    load_pixels(image, name=name)
    return image_array(image)


def open_image(data: bytes, limits: UploadLimits, *, name: str) -> Image.Image:
    """Read only the header (Pillow is lazy) and insist on PNG or JPEG."""
    try:
        image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except Image.DecompressionBombError as error:  # Pillow's own cap, looser than ours by default
        raise DataValidationError(
            f"{name} is far too large ({error}); at most {limits.max_image_pixels:,} pixels per image "
            "are accepted",
            code="image_too_large",
        ) from error
    except UnidentifiedImageError as error:
        if data.startswith(SIGNATURES):  # the right magic bytes, but Pillow cannot parse the header
            raise corrupt_image_error(name, error) from error
        raise DataValidationError(
            f"{name} is not a PNG or JPEG image; only PNG and JPEG are accepted",
            code="unsupported_image_format",
        ) from error
    except (OSError, SyntaxError, ValueError, EOFError, zlib.error) as error:
        raise corrupt_image_error(name, error) from error
    return image


def check_image_pixels(image: Image.Image, limits: UploadLimits, *, name: str) -> None:
    width, height = image.size
    if width * height > limits.max_image_pixels:
        raise DataValidationError(
            f"{name} is {width}×{height} = {width * height:,} pixels; at most "
            f"{limits.max_image_pixels:,} pixels per image are accepted",
            code="image_too_large",
        )
    if width == 0 or height == 0:
        raise DataValidationError(f"{name} has no pixels ({width}×{height})", code="corrupt_image")


def load_pixels(image: Image.Image, *, name: str) -> None:
    try:
        image.load()
    except (OSError, SyntaxError, ValueError, EOFError, zlib.error) as error:
        raise corrupt_image_error(name, error) from error


def corrupt_image_error(name: str, error: Exception) -> DataValidationError:
    return DataValidationError(
        f"{name} is a corrupt or truncated image ({error}); complete PNG or JPEG files are accepted",
        code="corrupt_image",
    )


def is_grayscale(image: Image.Image) -> bool:
    """Whether the image carries no colour: a gray mode, or a palette whose entries are all gray."""
    if image.mode in GRAYSCALE_MODES or image.mode in SIXTEEN_BIT_MODES:
        return True
    if image.mode in ("P", "PA"):
        palette = np.asarray(image.getpalette() or [], dtype=np.uint8).reshape(-1, 3)
        return bool((palette == palette[:, :1]).all())
    return False


def image_array(image: Image.Image) -> np.ndarray:
    """A loaded image's pixels as a writable uint8 ``C×H×W`` array (C = 1 for grayscale, else 3)."""
    if image.mode in SIXTEEN_BIT_MODES:
        # Pillow's I→L conversion clips at 255; keep the top 8 of 16 bits instead
        pixels = (np.asarray(image, dtype=np.uint32) >> 8).clip(0, 255).astype(np.uint8)
    else:
        pixels = np.asarray(image.convert("L" if is_grayscale(image) else "RGB"))
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    return pixels.transpose(2, 0, 1).copy()  # a copy: Pillow arrays are read-only
