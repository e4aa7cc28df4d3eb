"""How an explanation's objects are laid out: the contract between the API and the explain workers.

Under ``tenants/<tenant>/explanations/<id>/``:

- ``inputs.npz`` — uploaded images as decoded by the API: one array ``images`` (uint8 n×C×H×W) when
  they all have one size, else each at its own size in arrays ``image_00000``, ``image_00001``, …
  (uint8 C×H×W). One array is read back in one step; 256 members cost the worker ~15 % of a
  256-image request in header parsing alone.
- ``attempt-<attempt>/maps-<shard>.npz`` — written by the worker: ``cams`` (float32 n×H×W, in [0, 1])
  and ``images`` (uint8 n×C×H×W, the inputs as the model saw them, for overlays). Each item's result
  names its shard's key and its ``slot`` in it. Each attempt has a folder of its own because objects
  are written once (a retried attempt must not collide with what an earlier one left) and so that an
  abandoned attempt's shards, which no result can reference, are removed with one ``delete_prefix``.

A small request keeps both in its row instead (``inline_inputs``, ``inline_maps``: the same ``.npz``
bytes, at most ``INLINE_MAX_BYTES``), which spares it the object store's round trips:
``request["inputs"]`` then says ``"inline": true``, and each item's result says ``"maps": "inline"``
with its ``slot`` instead of a ``maps_key``. Such rows are written once, at their end, like a shard.
"""

from __future__ import annotations

import io
import uuid
from typing import Any

import numpy as np

from persistence.objects import object_key, resource_prefix

INPUTS_OBJECT = "inputs.npz"
INLINE_MAX_BYTES = 256 * 1024  # an .npz up to this size rides in the row (a 28×28 map and image: 4 KB)
INLINE = "inline"
CAMS_ARRAY = "cams"
IMAGES_ARRAY = "images"
NPZ_CONTENT_TYPE = "application/octet-stream"


def inputs_key(tenant_id: uuid.UUID, explanation_id: uuid.UUID) -> str:
    return object_key(str(tenant_id), "explanations", str(explanation_id), INPUTS_OBJECT)


def attempt_prefix(tenant_id: uuid.UUID, explanation_id: uuid.UUID, attempt: int) -> str:
    """The folder of one attempt's shards (ends with ``/``)."""
    return resource_prefix(str(tenant_id), "explanations", str(explanation_id)) + f"attempt-{attempt}/"


def maps_key(tenant_id: uuid.UUID, explanation_id: uuid.UUID, attempt: int, shard: int) -> str:
    return attempt_prefix(tenant_id, explanation_id, attempt) + f"maps-{shard}.npz"


def fits_inline(npz: bytes) -> bool:
    return len(npz) <= INLINE_MAX_BYTES


def upload_array_name(position: int) -> str:
    return f"image_{position:05d}"


def images_npz(images: list[np.ndarray]) -> bytes:
    if len({(image.shape, image.dtype) for image in images}) == 1:
        return npz_bytes({IMAGES_ARRAY: np.stack(images)})
    return npz_bytes({upload_array_name(position): image for position, image in enumerate(images)})


def uploaded_images(archive: Any, count: int) -> list[np.ndarray]:
    """The ``count`` images of an opened ``inputs.npz``, in either of its layouts."""
    if IMAGES_ARRAY in archive.files:
        return list(archive[IMAGES_ARRAY])
    return [archive[upload_array_name(position)] for position in range(count)]


def maps_npz(cams: np.ndarray, images: np.ndarray) -> bytes:
    return npz_bytes({CAMS_ARRAY: cams.astype(np.float32, copy=False), IMAGES_ARRAY: images})


def npz_bytes(arrays: dict[str, Any]) -> bytes:
    """Uncompressed: CAMs hardly compress, and reading a member back should cost no inflating."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()
