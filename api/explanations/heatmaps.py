"""One explained image's heatmap, rendered on request from the stored float CAM and input image.

The worker stores CAMs as float32 (exact) with the image the model saw; pictures are drawn here by
batchcam.pixels (numpy and Pillow: the API loads neither torch nor matplotlib), so a new colormap or
style needs no re-run. Rendering is deterministic, which makes the content hash a stable ETag.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from api.http.errors import ProblemError
from batchcam.pixels import heatmaps
from persistence.explanations.objects import CAMS_ARRAY, IMAGES_ARRAY, INLINE
from persistence.objects import ObjectStore

HeatmapStyle = Literal["overlay", "raw"]
MAX_HEATMAP_SCALE = 16


@dataclass(frozen=True, eq=False)
class ItemMaps:
    cam: np.ndarray  # float32 H×W in [0, 1]
    image: np.ndarray  # uint8 C×H×W: the input as the model saw it


@dataclass(frozen=True)
class StoredItem:
    """One explained image's result, and its row's maps when they are kept inline."""

    result: dict[str, Any]
    inline_maps: bytes | None = None


def read_item_maps(store: ObjectStore, item: StoredItem) -> ItemMaps:
    """Its slot of the maps ``.npz``: from the row (small requests) or the object store."""
    npz = item.inline_maps if item.result.get("maps") == INLINE else None
    if npz is None:
        npz = store.get(item.result["maps_key"])
    with np.load(io.BytesIO(npz)) as archive:
        slot = int(item.result["slot"])
        return ItemMaps(cam=archive[CAMS_ARRAY][slot], image=archive[IMAGES_ARRAY][slot])


def check_colormap(name: str) -> None:
    accepted = heatmaps.colormap_names()
    if name not in accepted:
        raise ProblemError(
            422,
            "unknown_colormap",
            f"unknown colormap {name!r}; accepted are matplotlib's colormaps, e.g. jet, viridis, inferno, "
            "magma, turbo, gray (the full list is in 'accepted')",
            accepted=accepted,
        )


def heatmap_png(maps: ItemMaps, style: HeatmapStyle, colormap: str, scale: int) -> bytes:
    if style == "raw":
        return heatmaps.png_bytes(heatmaps.raw_heatmap_image(maps.cam, scale=scale))
    return heatmaps.png_bytes(heatmaps.overlay_image(maps.image, maps.cam, colormap=colormap, scale=scale))


def cam_npy(maps: ItemMaps) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, maps.cam.astype(np.float32, copy=False), allow_pickle=False)
    return buffer.getvalue()
