"""batchcam.pixels draws byte for byte what matplotlib (the renderer's former path) draws, without it.

The references here are computed inline with matplotlib and Pillow, as batchcam.render did before it
delegated to batchcam.pixels, so they cannot drift with the code they check.
"""

from __future__ import annotations

import importlib.util
import io
import subprocess
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from PIL import Image

from batchcam.errors import ConfigError, DataValidationError
from batchcam.pixels import heatmaps
from batchcam.pixels.decoding import decode_image_array
from batchcam.pixels.npz_images import is_npz, read_npz_images
from batchcam.spec.limits import UploadLimits

ROOT = Path(__file__).resolve().parents[1]


def reference_values(cam: np.ndarray) -> np.ndarray:
    return np.clip(np.nan_to_num(cam.astype(np.float32), nan=0.0), 0.0, 1.0)


def reference_rgb(cam: np.ndarray, colormap: str) -> np.ndarray:
    rgba = matplotlib.colormaps[colormap](reference_values(cam))
    return np.rint(rgba[..., :3] * 255).astype(np.uint8)


def reference_png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def edge_cam(size: int, seed: int) -> np.ndarray:
    """Random float32 values plus 0, 1, NaN, values outside [0, 1], and every bin edge k/N of a
    ``size``-entry table with its float32 neighbours on both sides."""
    edges = (np.arange(size + 1) / size).astype(np.float32)
    near = np.concatenate([edges, np.nextafter(edges, np.float32(0)), np.nextafter(edges, np.float32(1))])
    special = np.array([0.0, 1.0, np.nan, -0.25, 1.5, -np.inf, np.inf], dtype=np.float32)
    noise = np.random.default_rng(seed).random(500, dtype=np.float32)
    values = np.concatenate([near, special, noise])
    return np.resize(values, (32, (len(values) + 31) // 32))  # H×W, padded by repetition


def random_image(seed: int, channels: int, size: tuple[int, ...] = (20, 20)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (channels, *size), dtype=np.uint8)


# --- colormaps -------------------------------------------------------------------------------------


def test_colormap_names_are_matplotlibs_sorted() -> None:
    assert heatmaps.colormap_names() == sorted(matplotlib.colormaps)


@pytest.mark.parametrize("colormap", sorted(matplotlib.colormaps))
def test_heatmap_rgb_equals_matplotlib_byte_for_byte(colormap: str) -> None:
    cam = edge_cam(matplotlib.colormaps[colormap].N, seed=len(colormap))
    result = heatmaps.heatmap_rgb(cam, colormap)
    assert result.dtype == np.uint8 and result.shape == (*cam.shape, 3)
    np.testing.assert_array_equal(result, reference_rgb(cam, colormap))


def test_float64_cams_are_indexed_as_float32_like_the_renderer() -> None:
    # 0.75 - 1e-9 is below a bin edge in float64 but rounds onto it in float32, as render's tensors did.
    cam = np.array([[0.75 - 1e-9, 0.5 + 1e-9]], dtype=np.float64)
    np.testing.assert_array_equal(heatmaps.heatmap_rgb(cam, "tab20"), reference_rgb(cam, "tab20"))


def test_the_tables_are_what_the_generator_writes_from_this_matplotlib(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location(
        "generate_colormaps", ROOT / "scripts/generate_colormaps.py"
    )
    assert spec is not None and spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    generator.write_tables(generator.colormap_tables(), tmp_path / "colormaps.npz")
    assert (tmp_path / "colormaps.npz").read_bytes() == heatmaps.TABLES_FILE.read_bytes(), (
        "run scripts/generate_colormaps.py after changing matplotlib"
    )


def test_unknown_colormap_is_a_config_error_suggesting_close_names() -> None:
    with pytest.raises(ConfigError, match=r"unknown colormap 'viridas'; did you mean.*viridis") as raised:
        heatmaps.heatmap_rgb(np.zeros((2, 2), np.float32), "viridas")
    assert raised.value.code == "unknown_colormap"
    assert f"({len(matplotlib.colormaps)} in all, see colormap_names())" in raised.value.message


# --- PNGs ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channels", "colormap", "alpha", "scale"), [(1, "jet", 0.5, 1), (3, "tab10", 0.3, 3)]
)
def test_overlay_png_equals_the_matplotlib_path(
    channels: int, colormap: str, alpha: float, scale: int
) -> None:
    cam = edge_cam(10, seed=channels)
    image = random_image(channels, channels, cam.shape)
    base = np.repeat(image, 3, axis=0) if channels == 1 else image
    expected = Image.blend(
        Image.fromarray(base.transpose(1, 2, 0)), Image.fromarray(reference_rgb(cam, colormap)), alpha
    )
    expected = expected.resize((expected.width * scale, expected.height * scale), Image.Resampling.NEAREST)
    overlay = heatmaps.overlay_image(image, cam, colormap=colormap, alpha=alpha, scale=scale)
    assert heatmaps.png_bytes(overlay) == reference_png(expected)


@pytest.mark.parametrize("scale", [1, 4])
def test_raw_png_equals_the_rounded_cam(scale: int) -> None:
    cam = edge_cam(256, seed=scale)
    levels = Image.fromarray(np.rint(reference_values(cam) * 255).astype(np.uint8))
    expected = levels.resize((levels.width * scale, levels.height * scale), Image.Resampling.NEAREST)
    assert heatmaps.png_bytes(heatmaps.raw_heatmap_image(cam, scale=scale)) == reference_png(expected)


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda: heatmaps.overlay_image(random_image(0, 1), np.zeros((5, 5), np.float32)), "invalid_shape"),
        (lambda: heatmaps.overlay_image(random_image(0, 2), np.zeros((20, 20), np.float32)), "invalid_shape"),
        (lambda: heatmaps.raw_heatmap_image(np.zeros((4, 4), np.uint8)), "invalid_shape"),
        (lambda: heatmaps.raw_heatmap_image(np.zeros((4, 4), np.float32), scale=65), "invalid_scale"),
        (lambda: heatmaps.overlay_image(random_image(0, 1), np.zeros((20, 20)), alpha=-0.1), "invalid_alpha"),
    ],
)
def test_wrong_arrays_and_options_are_config_errors(call: object, code: str) -> None:
    with pytest.raises(ConfigError) as raised:
        call()  # type: ignore[operator]
    assert raised.value.code == code


# --- decoding --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "channels"), [("L", 1), ("RGB", 3), ("RGBA", 3)])
def test_decode_image_array_gives_writable_uint8_channels_first(mode: str, channels: int) -> None:
    pixels = np.random.default_rng(1).integers(0, 256, (6, 9, len(mode)), dtype=np.uint8)
    source = Image.fromarray(pixels.squeeze(2) if mode == "L" else pixels, mode=mode)
    decoded = decode_image_array(reference_png(source), UploadLimits())
    assert decoded.dtype == np.uint8 and decoded.shape == (channels, 6, 9) and decoded.flags.writeable
    np.testing.assert_array_equal(decoded.transpose(1, 2, 0), pixels[..., :channels])


def test_decode_image_array_rejects_what_is_not_png_or_jpeg() -> None:
    with pytest.raises(DataValidationError) as raised:
        decode_image_array(b"GIF89a not really", UploadLimits(), name="files[0]")
    assert raised.value.code == "unsupported_image_format"
    assert raised.value.message.startswith("files[0] ")


# --- imports ---------------------------------------------------------------------------------------


def test_pixels_imports_neither_torch_nor_matplotlib() -> None:
    script = (
        "import sys, batchcam.pixels.heatmaps, batchcam.pixels.decoding\n"
        "print(sorted(name for name in ('torch', 'matplotlib') if name in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def npz_bytes(compressed: bool = False, **arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, **arrays)
    return buffer.getvalue()


def test_an_npz_of_images_reads_as_channels_first_whatever_its_layout() -> None:
    rng = np.random.default_rng(0)
    gray, colour = rng.integers(0, 256, (4, 5, 6), np.uint8), rng.integers(0, 256, (2, 5, 6, 3), np.uint8)
    for images, expected in ((gray, gray[:, None]), (colour, colour.transpose(0, 3, 1, 2))):
        data = npz_bytes(images=images)
        assert is_npz(data) and not is_npz(b"\x89PNG\r\n\x1a\n")
        read = read_npz_images(data, UploadLimits(), name="f", max_images=8, max_total_pixels=1000)
        assert read.flags.c_contiguous and np.array_equal(read, expected)


@pytest.mark.parametrize(
    ("limits", "room", "code"),
    [
        (UploadLimits(max_image_pixels=29), (8, 1000), "image_too_large"),  # 5×6 = 30 pixels each
        (UploadLimits(), (3, 1000), "too_many_images"),
        (UploadLimits(), (8, 119), "images_too_large"),  # 4 × 30 = 120 pixels in all
        (UploadLimits(max_compression_ratio=2), (8, 1000), "compression_ratio_too_high"),
        (UploadLimits(max_image_pixels=30), (4, 120), None),  # each cap met exactly: accepted
    ],
)
def test_an_npz_of_images_is_capped_from_its_header_and_directory(
    limits: UploadLimits, room: tuple[int, int], code: str | None
) -> None:
    data = npz_bytes(compressed=True, images=np.zeros((4, 5, 6), np.uint8))  # zeros compress ~50×
    max_images, max_total_pixels = room
    if code is None:
        assert read_npz_images(
            data, limits, name="f", max_images=max_images, max_total_pixels=max_total_pixels
        ).shape == (4, 1, 5, 6)
        return
    with pytest.raises(DataValidationError) as raised:
        read_npz_images(data, limits, name="up.npz", max_images=max_images, max_total_pixels=max_total_pixels)
    assert raised.value.code == code and "up.npz" in raised.value.message
