"""Binary answers and inputs. numpy and Pillow are imported only inside the functions that need them
(the ``[arrays]`` extra), so ``import batchcam_client`` stays httpx + pydantic."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

ARRAYS_HINT = "this needs numpy and Pillow: pip install 'batchcam-client[arrays]'"
MEDIA_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".npz": "application/octet-stream"}


class Png(bytes):
    """A PNG as the service sent it: bytes, with a decoded view and a save."""

    def image(self) -> Image.Image:
        image_module = _pil()
        return image_module.open(io.BytesIO(self))

    def save(self, path: str | Path) -> Path:
        target = Path(path)
        target.write_bytes(self)
        return target


def png_of(response: httpx.Response) -> Png:
    return Png(response.content)


def array_of(response: httpx.Response) -> np.ndarray:
    numpy = _numpy()
    array: np.ndarray = numpy.load(io.BytesIO(response.content), allow_pickle=False)
    return array


def encoded_image(image: Any, position: int) -> tuple[str, bytes, str]:
    """(file name, bytes, media type) of an explanation input: a path (a PNG, a JPEG, or an .npz whose
    ``images`` array holds many images), PNG/JPEG bytes, a PIL image, or a numpy array (H×W or
    H×W×C, uint8 as it is, floats taken as [0, 1])."""
    if isinstance(image, str | Path):
        path = Path(image)
        return path.name, path.read_bytes(), MEDIA_TYPES.get(path.suffix.lower(), "image/png")
    if isinstance(image, bytes):
        return f"image-{position}.png", bytes(image), "image/png"
    if type(image).__module__.startswith("PIL."):
        return f"image-{position}.png", _png_bytes(image), "image/png"
    if type(image).__module__ == "numpy":
        return f"image-{position}.png", _png_bytes(_array_image(image)), "image/png"
    raise TypeError(f"cannot send {type(image).__name__} as an image: pass a path, PNG bytes, PIL or numpy")


def _array_image(array: Any) -> Image.Image:
    numpy, image_module = _numpy(), _pil()
    values = numpy.asarray(array)
    if values.dtype != numpy.uint8:
        values = numpy.clip(numpy.rint(values.astype(numpy.float64) * 255), 0, 255).astype(numpy.uint8)
    if values.ndim == 3 and values.shape[-1] == 1:
        values = values[..., 0]
    return image_module.fromarray(values)


def _png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _numpy() -> Any:
    try:
        import numpy
    except ImportError as error:
        raise ImportError(ARRAYS_HINT) from error
    return numpy


def _pil() -> Any:
    try:
        from PIL import Image as image_module
    except ImportError as error:
        raise ImportError(ARRAYS_HINT) from error
    return image_module
