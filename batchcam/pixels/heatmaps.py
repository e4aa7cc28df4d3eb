"""CAM heatmaps as Pillow images and PNG bytes, coloured from stored lookup tables, not matplotlib.

Conventions (as in :mod:`batchcam.render`, which delegates here): images are uint8 ``C×H×W`` arrays
(C = 1 or 3); CAMs are float ``H×W`` arrays in [0, 1] (values outside are clipped, NaN is drawn as 0).

``colormaps.npz`` holds, for every matplotlib colormap, its N-entry RGB table already rounded to
uint8 (``scripts/generate_colormaps.py`` writes it). A CAM value picks its entry by matplotlib's own
rule, so the colours are byte for byte those matplotlib would give.

Upscaling is nearest-neighbour: a CAM has the image's resolution, so each value belongs to exactly
one input pixel; bilinear would invent values between pixels and smear the peaks.
"""

from __future__ import annotations

import difflib
import functools
import io
from pathlib import Path

import numpy as np
from PIL import Image

from batchcam.errors import ConfigError

DEFAULT_COLORMAP = "jet"
MAX_SCALE = 64  # bounds the output size a caller (e.g. an HTTP query) can request
TABLES_FILE = Path(__file__).with_name("colormaps.npz")
_SUGGESTED_COLORMAPS = ("jet", "viridis", "inferno", "magma", "turbo", "gray")


@functools.cache
def _tables() -> dict[str, np.ndarray]:
    # All at once on first use: ~150 kB, and a request must not pay for a zip member lookup.
    with np.load(TABLES_FILE, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def colormap_names() -> list[str]:
    """Every accepted colormap name: matplotlib's registered ones (when the tables were made), sorted."""
    return sorted(_tables())


def colormap_table(name: str) -> np.ndarray:
    """The colormap's ``N×3`` uint8 RGB table; an unknown name is a ConfigError that suggests close ones."""
    tables = _tables()
    if name in tables:
        return tables[name]
    close = difflib.get_close_matches(str(name), colormap_names(), n=3)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise ConfigError(
        f"unknown colormap {name!r}; {hint}accepted are matplotlib's colormaps, e.g. "
        f"{', '.join(_SUGGESTED_COLORMAPS)} ({len(tables)} in all, see colormap_names())",
        code="unknown_colormap",
    )


def require_int_in_range(value: int, name: str, low: int, high: int | None = None) -> None:
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if not (is_int and value >= low and (high is None or value <= high)):
        upper = f" to {high}" if high is not None else " or more"
        raise ConfigError(
            f"{name} must be an integer from {low}{upper}, got {value!r}", code=f"invalid_{name}"
        )


def cam_values(cam: np.ndarray, what: str = "a CAM") -> np.ndarray:
    """A float ``H×W`` array as float32 clipped to [0, 1]."""
    if cam.ndim != 2 or cam.dtype.kind != "f":
        raise ConfigError(
            f"{what} must be a float H×W array with values in [0, 1], got {cam.dtype} {cam.shape}",
            code="invalid_shape",
        )
    # float32 first: the table index below must be computed in the dtype matplotlib would see.
    values = cam.astype(np.float32, copy=False)
    # A degenerate CAM (all-zero gradients normalised) can hold NaN; draw it as "no evidence".
    return np.clip(np.nan_to_num(values, nan=0.0), 0.0, 1.0)


def image_rgb(image: np.ndarray) -> np.ndarray:
    """A uint8 ``C×H×W`` array (C = 1 or 3) as ``H×W×3`` uint8; gray is repeated."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[0] not in (1, 3):
        raise ConfigError(
            f"an image must be a uint8 C×H×W array with C = 1 or 3, got {image.dtype} {image.shape}",
            code="invalid_shape",
        )
    pixels = image.transpose(1, 2, 0)
    return np.ascontiguousarray(np.repeat(pixels, 3, axis=2) if pixels.shape[2] == 1 else pixels)


def table_indices(values: np.ndarray, size: int) -> np.ndarray:
    """matplotlib's float → table index rule (``Colormap.__call__``) for values already in [0, 1].

    The product stays in the values' dtype (float32 for CAMs): a float64 product would put values
    next to a bin edge into the neighbouring bin. 1.0 lands on the last entry, not past it.
    """
    scaled = values * values.dtype.type(size)
    scaled[scaled == size] = size - 1
    return scaled.astype(np.intp)


def heatmap_rgb(cam: np.ndarray, colormap: str = DEFAULT_COLORMAP) -> np.ndarray:
    """The CAM coloured by ``colormap`` as an ``H×W×3`` uint8 array."""
    table = colormap_table(colormap)
    # mode="clip" as matplotlib's lut.take; cam_values keeps indices in range anyway.
    return table.take(table_indices(cam_values(cam), len(table)), axis=0, mode="clip")


def upscaled(image: Image.Image, scale: int) -> Image.Image:
    require_int_in_range(scale, "scale", 1, MAX_SCALE)
    if scale == 1:
        return image
    return image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)


def overlay_image(
    image: np.ndarray,
    cam: np.ndarray,
    *,
    colormap: str = DEFAULT_COLORMAP,
    alpha: float = 0.5,
    scale: int = 1,
) -> Image.Image:
    """An RGB image: the CAM's heatmap blended with weight ``alpha`` over the image."""
    if not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"alpha must be between 0 and 1, got {alpha!r}", code="invalid_alpha")
    base = image_rgb(image)
    heat = heatmap_rgb(cam, colormap)
    if base.shape != heat.shape:
        raise ConfigError(
            f"the CAM must have the image's size {base.shape[:2]}, got {heat.shape[:2]}", code="invalid_shape"
        )
    blended = Image.blend(Image.fromarray(base), Image.fromarray(heat), alpha)
    return upscaled(blended, scale)


def raw_heatmap_image(cam: np.ndarray, *, scale: int = 1) -> Image.Image:
    """A mode "L" image whose pixel values are ``round(cam * 255)``: the CAM, losslessly for 8 bits."""
    levels = np.rint(cam_values(cam) * 255).astype(np.uint8)
    return upscaled(Image.fromarray(levels), scale)


def png_bytes(image: Image.Image) -> bytes:
    """The image encoded as PNG; the same image always gives the same bytes.

    Pillow writes no time chunk and no text chunks unless asked, and the compression level is fixed.
    """
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()
