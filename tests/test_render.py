"""Tests of batchcam.render: pixel-exact checks of the image helpers, decoded-PNG checks of the figures."""

from __future__ import annotations

import io
from collections.abc import Callable

import matplotlib
import numpy as np
import pytest
import torch
from PIL import Image

from batchcam import render
from batchcam.errors import ConfigError

CLASS_NAMES = ("T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot")


def random_cam(seed: int, size: int = 28) -> torch.Tensor:
    return torch.rand(size, size, generator=torch.Generator().manual_seed(seed))


def random_image(seed: int, channels: int = 1, size: int = 28) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (channels, size, size), generator=generator, dtype=torch.uint8)


def decode(png: bytes) -> Image.Image:
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(png))
    image.load()
    return image


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(decode(png))


def gallery_item(seed: int, true_label: int = 2, predicted_label: int = 4) -> render.GalleryItem:
    return render.GalleryItem(
        image=random_image(seed),
        cam=random_cam(seed),
        true_label=true_label,
        predicted_label=predicted_label,
        confidence=0.87,
        distance_to_true=0.31,
        distance_to_predicted=0.12,
        index=100 + seed,
    )


# --- colormaps and heatmaps -------------------------------------------------------------------


def test_colormap_names_are_matplotlibs_sorted() -> None:
    names = render.colormap_names()
    assert names == sorted(matplotlib.colormaps)
    assert {render.DEFAULT_COLORMAP, "gray", "viridis"} <= set(names)


@pytest.mark.parametrize("colormap", ["jet", "viridis", "gray"])
def test_heatmap_rgb_matches_matplotlib_colormap(colormap: str) -> None:
    cam = random_cam(0)
    expected = np.rint(matplotlib.colormaps[colormap](cam.numpy())[..., :3] * 255).astype(np.uint8)
    result = render.heatmap_rgb(cam, colormap)
    assert result.dtype == np.uint8
    assert result.shape == (28, 28, 3)
    np.testing.assert_array_equal(result, expected)


def test_heatmap_rgb_clips_out_of_range_values_and_nan_to_the_ends() -> None:
    cam = torch.tensor([[-0.5, 1.5], [float("nan"), 0.0]])
    result = render.heatmap_rgb(cam)
    ends = render.heatmap_rgb(torch.tensor([[0.0, 1.0], [0.0, 0.0]]))
    np.testing.assert_array_equal(result, ends)


@pytest.mark.parametrize(
    "call",
    [
        lambda: render.heatmap_rgb(random_cam(0), "no_such_map"),
        lambda: render.overlay_image(random_image(0), random_cam(0), colormap="no_such_map"),
        lambda: render.prototype_grid(torch.rand(2, 8, 8), ["a", "b"], title="t", colormap="no_such_map"),
        lambda: render.cam_examples_grid(
            random_image(0).unsqueeze(0), random_cam(0).unsqueeze(0), ["a"], colormap="no_such_map"
        ),
    ],
)
def test_unknown_colormap_is_a_config_error_naming_accepted_ones(call: Callable[[], object]) -> None:
    with pytest.raises(ConfigError) as raised:
        call()
    assert raised.value.code == "unknown_colormap"
    assert "no_such_map" in raised.value.message
    assert "viridis" in raised.value.message and "jet" in raised.value.message


def test_unknown_colormap_suggests_close_names() -> None:
    with pytest.raises(ConfigError, match=r"did you mean.*viridis"):
        render.heatmap_rgb(random_cam(0), "viridas")


# --- overlay and raw heatmap ------------------------------------------------------------------


def test_overlay_with_alpha_zero_is_the_gray_image_as_rgb() -> None:
    image = random_image(1)
    overlay = render.overlay_image(image, random_cam(1), alpha=0.0)
    assert overlay.mode == "RGB"
    expected = image[0].numpy()[..., None].repeat(3, axis=2)
    np.testing.assert_array_equal(np.asarray(overlay), expected)


def test_overlay_with_alpha_one_is_the_heatmap() -> None:
    cam = random_cam(2)
    overlay = render.overlay_image(random_image(2), cam, alpha=1.0, colormap="viridis")
    np.testing.assert_array_equal(np.asarray(overlay), render.heatmap_rgb(cam, "viridis"))


def test_overlay_with_half_alpha_is_the_mean_of_image_and_heatmap() -> None:
    image, cam = random_image(3, channels=3), random_cam(3)
    overlay = np.asarray(render.overlay_image(image, cam, alpha=0.5)).astype(int)
    mean = (image.permute(1, 2, 0).numpy().astype(int) + render.heatmap_rgb(cam).astype(int)) / 2
    assert np.abs(overlay - mean).max() <= 1


def test_overlay_scale_multiplies_the_size_with_nearest_neighbour_blocks() -> None:
    image, cam = random_image(4), random_cam(4)
    small = np.asarray(render.overlay_image(image, cam))
    large = render.overlay_image(image, cam, scale=4)
    assert large.size == (28 * 4, 28 * 4)
    np.testing.assert_array_equal(np.asarray(large), small.repeat(4, axis=0).repeat(4, axis=1))


def test_raw_heatmap_pixels_are_the_rounded_cam_times_255() -> None:
    cam = random_cam(5)
    raw = render.raw_heatmap_image(cam)
    assert raw.mode == "L"
    assert raw.size == (28, 28)
    np.testing.assert_array_equal(np.asarray(raw), torch.round(cam * 255).to(torch.uint8).numpy())


def test_raw_heatmap_scale_multiplies_the_size_and_keeps_values() -> None:
    cam = random_cam(6, size=7)
    raw = render.raw_heatmap_image(cam, scale=3)
    assert raw.size == (21, 21)
    expected = torch.round(cam * 255).to(torch.uint8).numpy().repeat(3, axis=0).repeat(3, axis=1)
    np.testing.assert_array_equal(np.asarray(raw), expected)


@pytest.mark.parametrize(
    ("image", "cam", "code"),
    [
        (random_image(0), random_cam(0, size=14), "invalid_shape"),  # sizes differ
        (random_image(0), random_cam(0).unsqueeze(0), "invalid_shape"),  # CAM not H×W
        (random_image(0).float(), random_cam(0), "invalid_shape"),  # image not uint8
        (random_image(0, channels=2), random_cam(0), "invalid_shape"),  # 2 channels
        (random_image(0), (random_cam(0) * 255).to(torch.uint8), "invalid_shape"),  # CAM not float
    ],
)
def test_overlay_rejects_wrong_tensors(image: torch.Tensor, cam: torch.Tensor, code: str) -> None:
    with pytest.raises(ConfigError) as raised:
        render.overlay_image(image, cam)
    assert raised.value.code == code


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda: render.overlay_image(random_image(0), random_cam(0), scale=0), "invalid_scale"),
        (lambda: render.raw_heatmap_image(random_cam(0), scale=True), "invalid_scale"),
        (lambda: render.overlay_image(random_image(0), random_cam(0), alpha=1.5), "invalid_alpha"),
    ],
)
def test_out_of_range_options_are_config_errors(call: Callable[[], object], code: str) -> None:
    with pytest.raises(ConfigError) as raised:
        call()
    assert raised.value.code == code


def test_png_bytes_is_deterministic_and_lossless() -> None:
    overlay = render.overlay_image(random_image(7), random_cam(7), scale=2)
    first, second = render.png_bytes(overlay), render.png_bytes(overlay.copy())
    assert first == second
    decoded = decode(first)
    assert decoded.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(decoded), np.asarray(overlay))
    raw = render.raw_heatmap_image(random_cam(7))
    assert decode(render.png_bytes(raw)).mode == "L"


# --- figures ----------------------------------------------------------------------------------


@pytest.mark.parametrize("class_count", [5, 10])
def test_prototype_grid_draws_one_panel_per_class(class_count: int) -> None:
    prototypes = torch.rand(class_count, 28, 28, generator=torch.Generator().manual_seed(8))
    png = render.prototype_grid(prototypes, CLASS_NAMES[:class_count], title="Class prototypes")
    drawn = pixels(png)
    assert decode(png).mode == "RGB"
    assert drawn.var() > 0
    # Different prototypes must give a different picture: the data is drawn, not just the frame.
    assert png != render.prototype_grid(1 - prototypes, CLASS_NAMES[:class_count], title="Class prototypes")


def test_prototype_grid_wraps_ten_classes_onto_a_second_row() -> None:
    five = decode(render.prototype_grid(torch.rand(5, 28, 28), CLASS_NAMES[:5], title="t"))
    ten = decode(render.prototype_grid(torch.rand(10, 28, 28), CLASS_NAMES, title="t"))
    assert ten.width == five.width
    assert ten.height > five.height


def test_prototype_grid_rejects_a_class_count_mismatch() -> None:
    with pytest.raises(ConfigError) as raised:
        render.prototype_grid(torch.rand(3, 8, 8), ["a", "b"], title="t")
    assert raised.value.code == "invalid_shape"


def test_prototype_comparison_renders_and_checks_distance_lengths() -> None:
    prototypes, cam_prototypes = torch.rand(3, 28, 28), torch.rand(3, 28, 28)
    distances = {"L1": [0.12, 0.3, 0.5], "SSIM": [0.8, 0.7, 0.6]}
    png = render.prototype_comparison(prototypes, cam_prototypes, CLASS_NAMES[:3], distances)
    assert decode(png).mode == "RGB"
    assert pixels(png).var() > 0
    with pytest.raises(ConfigError, match="one value per class"):
        render.prototype_comparison(prototypes, cam_prototypes, CLASS_NAMES[:3], {"L1": [0.1, 0.2]})


def test_empty_gallery_is_a_small_png_with_a_message() -> None:
    png = render.misclassification_gallery([], CLASS_NAMES, torch.rand(10, 28, 28))
    image = decode(png)
    assert image.width <= 600 and image.height <= 200
    assert pixels(png).var() > 0  # the text is drawn


def test_gallery_has_one_row_per_item_up_to_max_items() -> None:
    prototypes = torch.rand(10, 28, 28)
    items = [gallery_item(seed) for seed in range(3)]
    one = decode(render.misclassification_gallery(items[:1], CLASS_NAMES, prototypes))
    three_png = render.misclassification_gallery(items, CLASS_NAMES, prototypes)
    three = decode(three_png)
    capped = decode(render.misclassification_gallery(items, CLASS_NAMES, prototypes, max_items=1))
    assert three.mode == "RGB"
    assert three.width == one.width
    assert three.height > 2 * one.height
    assert capped.size == one.size
    assert pixels(three_png).var() > 0


def test_gallery_rejects_labels_outside_the_classes() -> None:
    with pytest.raises(ConfigError) as raised:
        render.misclassification_gallery(
            [gallery_item(0, predicted_label=10)], CLASS_NAMES, torch.rand(10, 28, 28)
        )
    assert raised.value.code == "invalid_label"


def test_cam_examples_grid_lays_out_ncols_per_row() -> None:
    images = torch.stack([random_image(seed, channels=3) for seed in range(10)])
    cams = torch.stack([random_cam(seed) for seed in range(10)])
    titles = [f"#{seed}" for seed in range(10)]
    wide = decode(render.cam_examples_grid(images, cams, titles, ncols=10))
    narrow = decode(render.cam_examples_grid(images, cams, titles, ncols=4))
    assert narrow.width < wide.width
    assert narrow.height > wide.height
    with pytest.raises(ConfigError):
        render.cam_examples_grid(images, cams, titles[:3])


def test_training_curves_for_a_single_epoch() -> None:
    png = render.training_curves([{"epoch": 1, "train_loss": 0.9, "val_accuracy": 0.6}])
    assert decode(png).mode == "RGB"
    assert pixels(png).var() > 0


def test_training_curves_draw_one_panel_per_family_with_data_and_tolerate_missing_keys() -> None:
    history = [
        {"epoch": 1, "train_loss": 1.0, "val_loss": 1.1, "val_accuracy": 0.5, "lr": 0.1},
        {"epoch": 2, "train_loss": 0.7, "val_accuracy": 0.6, "cam_distance": 0.3},  # val_loss missing
        {"epoch": 3, "train_loss": 0.5, "val_loss": 0.6, "val_accuracy": 0.7, "cam_distance": 0.2},
    ]
    three_panels = render.training_curves(history)
    loss_only = render.training_curves([{"epoch": e, "train_loss": 1.0 / e} for e in (1, 2, 3)])
    assert decode(three_panels).width == 3 * decode(loss_only).width
    assert render.training_curves(history) == three_panels  # deterministic bytes


def test_training_curves_without_plottable_keys_say_so() -> None:
    png = render.training_curves([{"epoch": 1, "lr": 0.1}])
    assert decode(png).height <= 200
    assert render.training_curves([]) == png
