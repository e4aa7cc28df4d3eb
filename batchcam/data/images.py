"""Safe decoding of one uploaded PNG or JPEG into a uint8 ``C×H×W`` tensor.

The decoding itself is torch-free, in :mod:`batchcam.pixels.decoding` (the API uses it directly);
this module wraps its arrays as tensors.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from batchcam.pixels.decoding import decode_image_array
from batchcam.spec.limits import UploadLimits


def decode_image(data: bytes, limits: UploadLimits, *, name: str = "image") -> torch.Tensor:
    """Decode PNG/JPEG bytes to uint8 ``C×H×W``: C = 1 for grayscale, else 3 (RGB, alpha dropped).

    See :func:`batchcam.pixels.decoding.decode_image_array` for the checks made on the way.
    """
    return torch.from_numpy(decode_image_array(data, limits, name=name))


def with_common_channels(images: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Grayscale stays 1 channel when every image is grayscale; otherwise all become RGB."""
    if all(image.shape[0] == 1 for image in images):
        return list(images)
    return [image.expand(3, -1, -1) if image.shape[0] == 1 else image for image in images]
