"""PNG rendering of images, CAMs, prototypes and training curves.

Everything here is pure: tensors in, Pillow images or PNG bytes out. Figures are built with the
object-oriented matplotlib API on an Agg canvas, never ``pyplot``, so rendering touches no global
state and works headless inside a server worker.

Conventions: images are uint8 ``C×H×W`` (C = 1 or 3); CAMs, heatmaps and prototypes are float
``H×W`` in [0, 1] (values outside are clipped, NaN is drawn as 0).

Upscaling (``scale``) is nearest-neighbour for the image *and* the heatmap: a CAM here already has
the image's resolution, so each CAM value belongs to exactly one input pixel. Nearest keeps that
correspondence visible and keeps raw heatmap values exact; bilinear would invent values between
pixels and smear the peaks a user is trying to locate.

The heatmap and PNG helpers check their tensors here and are drawn by :mod:`batchcam.pixels.heatmaps`
(numpy and Pillow only, which the API uses directly), so both give the same bytes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import matplotlib
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Colormap, Normalize
from matplotlib.figure import Figure, SubFigure
from matplotlib.ticker import MaxNLocator
from PIL import Image

from batchcam.errors import ConfigError
from batchcam.pixels import heatmaps
from batchcam.pixels.heatmaps import DEFAULT_COLORMAP as DEFAULT_COLORMAP  # re-exported for callers
from batchcam.pixels.heatmaps import MAX_SCALE as MAX_SCALE
from batchcam.pixels.heatmaps import require_int_in_range

FIGURE_DPI = 100
PANEL_INCHES = 1.8
TITLE_FONTSIZE = 8
CURVE_FAMILIES = ("loss", "accuracy", "distance")


# --- validation -------------------------------------------------------------------------------


def colormap_names() -> list[str]:
    """Every colormap name accepted by this module: matplotlib's registered ones, sorted."""
    return heatmaps.colormap_names()


def _colormap(name: str) -> Colormap:
    heatmaps.colormap_table(name)  # the one check, and its ConfigError, for figures and PNGs alike
    return matplotlib.colormaps[name]


def _cam_values(cam: torch.Tensor, what: str = "a CAM") -> np.ndarray:
    """A float ``H×W`` tensor as a float32 array clipped to [0, 1]."""
    if cam.ndim != 2 or not cam.is_floating_point():
        raise ConfigError(
            f"{what} must be a float H×W tensor with values in [0, 1], got {cam.dtype} {tuple(cam.shape)}",
            code="invalid_shape",
        )
    return heatmaps.cam_values(cam.detach().to("cpu", torch.float32).numpy(), what)


def _map_stack(maps: torch.Tensor, count: int, what: str) -> list[np.ndarray]:
    """A float ``K×H×W`` tensor (K = ``count``) as K clipped arrays."""
    if maps.ndim != 3 or maps.shape[0] != count:
        raise ConfigError(
            f"{what} must be a float K×H×W tensor with one map per class (K = {count}), "
            f"got {tuple(maps.shape)}",
            code="invalid_shape",
        )
    return [_cam_values(single, what) for single in maps]


def _image_pixels(image: torch.Tensor) -> np.ndarray:
    """A uint8 ``C×H×W`` tensor (C = 1 or 3) as a numpy array of the same layout."""
    if image.dtype != torch.uint8 or image.ndim != 3 or image.shape[0] not in (1, 3):
        raise ConfigError(
            f"an image must be a uint8 C×H×W tensor with C = 1 or 3, got {image.dtype} {tuple(image.shape)}",
            code="invalid_shape",
        )
    return image.detach().cpu().numpy()


def _image_rgb(image: torch.Tensor) -> np.ndarray:
    """A uint8 ``C×H×W`` tensor (C = 1 or 3) as an ``H×W×3`` uint8 array; gray is repeated."""
    return heatmaps.image_rgb(_image_pixels(image))


# --- images: tensors checked here, drawn by batchcam.pixels.heatmaps ----------------------------


def heatmap_rgb(cam: torch.Tensor, colormap: str = DEFAULT_COLORMAP) -> np.ndarray:
    """The CAM coloured by ``colormap`` as an ``H×W×3`` uint8 array."""
    return heatmaps.heatmap_rgb(_cam_values(cam), colormap)


def overlay_image(
    image: torch.Tensor,
    cam: torch.Tensor,
    *,
    colormap: str = DEFAULT_COLORMAP,
    alpha: float = 0.5,
    scale: int = 1,
) -> Image.Image:
    """An RGB image: the CAM's heatmap blended with weight ``alpha`` over the image."""
    return heatmaps.overlay_image(
        _image_pixels(image), _cam_values(cam), colormap=colormap, alpha=alpha, scale=scale
    )


def raw_heatmap_image(cam: torch.Tensor, *, scale: int = 1) -> Image.Image:
    """A mode "L" image whose pixel values are ``round(cam * 255)``: the CAM, losslessly for 8 bits."""
    return heatmaps.raw_heatmap_image(_cam_values(cam), scale=scale)


png_bytes = heatmaps.png_bytes


# --- figure plumbing --------------------------------------------------------------------------


def _new_figure(width_inches: float, height_inches: float) -> Figure:
    # Constrained layout, unlike tight_layout, also makes room for colorbars and suptitles.
    return Figure(figsize=(width_inches, height_inches), dpi=FIGURE_DPI, layout="constrained")


def _figure_png(figure: Figure) -> bytes:
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    rgba = Image.fromarray(np.asarray(canvas.buffer_rgba()))
    return png_bytes(rgba.convert("RGB"))


def _message_png(message: str) -> bytes:
    figure = _new_figure(4.0, 1.0)
    figure.text(0.5, 0.5, message, ha="center", va="center", fontsize=11, parse_math=False)
    return _figure_png(figure)


def _label_panel(axes: Axes, title: str) -> None:
    # parse_math=False: class names come from users and may contain "$".
    axes.set_title(title, fontsize=TITLE_FONTSIZE, parse_math=False)
    axes.set_xticks([])
    axes.set_yticks([])


def _show_map(axes: Axes, values: np.ndarray, colormap: Colormap, title: str) -> None:
    axes.imshow(values, cmap=colormap, vmin=0.0, vmax=1.0, interpolation="nearest")
    _label_panel(axes, title)


def _show_rgb(axes: Axes, pixels: np.ndarray | Image.Image, title: str) -> None:
    axes.imshow(pixels, interpolation="nearest")
    _label_panel(axes, title)


def _add_colorbar(parent: Figure | SubFigure, axes: Axes | Sequence[Axes], colormap: Colormap) -> None:
    # A free-standing mappable: overlays are RGB images, so they carry no colormap of their own.
    mappable = ScalarMappable(norm=Normalize(0.0, 1.0), cmap=colormap)
    colorbar = parent.colorbar(mappable, ax=axes, shrink=0.8)
    colorbar.ax.tick_params(labelsize=TITLE_FONTSIZE)


def _grid_axes(figure: Figure, count: int, ncols: int) -> list[Axes]:
    """``count`` axes laid out ``ncols`` per row; spare cells of the last row are hidden."""
    nrows = math.ceil(count / ncols)
    cells = list(figure.subplots(nrows, ncols, squeeze=False).ravel())
    for spare in cells[count:]:
        spare.set_visible(False)
    return cells[:count]


# --- figures ----------------------------------------------------------------------------------


def prototype_grid(
    prototypes: torch.Tensor, class_names: Sequence[str], *, title: str, colormap: str = "gray"
) -> bytes:
    """One PNG with a panel per class prototype (``K×H×W``), each titled with its class name."""
    cmap = _colormap(colormap)
    maps = _map_stack(prototypes, len(class_names), "prototypes")
    ncols = min(len(maps), 5)
    figure = _new_figure(PANEL_INCHES * ncols + 0.8, PANEL_INCHES * math.ceil(len(maps) / ncols) + 0.5)
    cells = _grid_axes(figure, len(maps), ncols)
    for axes, values, name in zip(cells, maps, class_names, strict=True):
        _show_map(axes, values, cmap, name)
    figure.suptitle(title, parse_math=False)
    _add_colorbar(figure, cells, cmap)
    return _figure_png(figure)


def _distance_caption(distances: Mapping[str, Sequence[float]], class_index: int) -> str:
    return " · ".join(f"{metric} {float(values[class_index]):.2f}" for metric, values in distances.items())


def prototype_comparison(
    prototypes: torch.Tensor,
    cam_prototypes: torch.Tensor,
    class_names: Sequence[str],
    distances: Mapping[str, Sequence[float]],
) -> bytes:
    """Class prototypes (gray, top row) above CAM prototypes (heatmap, bottom row), one column per class.

    ``distances`` maps a metric name to one value per class; each column's title lists them.
    """
    count = len(class_names)
    images = _map_stack(prototypes, count, "prototypes")
    cams = _map_stack(cam_prototypes, count, "CAM prototypes")
    for metric, values in distances.items():
        if len(values) != count:
            raise ConfigError(
                f"distances[{metric!r}] must have one value per class ({count}), got {len(values)}",
                code="invalid_shape",
            )
    gray, heat = _colormap("gray"), _colormap(DEFAULT_COLORMAP)
    figure = _new_figure(PANEL_INCHES * count + 1.0, 2 * PANEL_INCHES + 0.7)
    grid = figure.subplots(2, count, squeeze=False)
    for column, name in enumerate(class_names):
        _show_map(grid[0, column], images[column], gray, f"{name}\n{_distance_caption(distances, column)}")
        _show_map(grid[1, column], cams[column], heat, "")
    grid[0, 0].set_ylabel("class prototype", fontsize=TITLE_FONTSIZE)
    grid[1, 0].set_ylabel("CAM prototype", fontsize=TITLE_FONTSIZE)
    _add_colorbar(figure, list(grid[1]), heat)
    return _figure_png(figure)


@dataclass(frozen=True, eq=False)  # eq=False: tensors have no single truth value to compare by
class GalleryItem:
    """One misclassified test image with its CAM and how far that CAM is from each class prototype."""

    image: torch.Tensor  # uint8 C×H×W
    cam: torch.Tensor  # float H×W in [0, 1]
    true_label: int
    predicted_label: int
    confidence: float  # the model's probability for predicted_label
    distance_to_true: float
    distance_to_predicted: float
    index: int  # position in the test split


def _check_labels(item: GalleryItem, class_count: int) -> None:
    for label in (item.true_label, item.predicted_label):
        if not 0 <= label < class_count:
            raise ConfigError(
                f"gallery item #{item.index} has label {label}; labels must lie in [0, {class_count})",
                code="invalid_label",
            )


def _gallery_row(
    row: SubFigure, item: GalleryItem, class_names: Sequence[str], prototypes: list[np.ndarray]
) -> None:
    true_name, predicted_name = class_names[item.true_label], class_names[item.predicted_label]
    row.suptitle(
        f"#{item.index}  {true_name} → {predicted_name} ({item.confidence:.1%})",
        fontsize=TITLE_FONTSIZE + 1,
        parse_math=False,
    )
    image_axes, cam_axes, true_axes, predicted_axes = row.subplots(1, 4)
    _show_rgb(image_axes, _image_rgb(item.image), "image")
    _show_rgb(cam_axes, overlay_image(item.image, item.cam), "CAM")
    _add_colorbar(row, cam_axes, _colormap(DEFAULT_COLORMAP))
    gray = _colormap("gray")
    true_caption = f"true: {true_name}\nCAM distance {item.distance_to_true:.2f}"
    predicted_caption = f"predicted: {predicted_name}\nCAM distance {item.distance_to_predicted:.2f}"
    _show_map(true_axes, prototypes[item.true_label], gray, true_caption)
    _show_map(predicted_axes, prototypes[item.predicted_label], gray, predicted_caption)


def misclassification_gallery(
    items: Sequence[GalleryItem],
    class_names: Sequence[str],
    prototypes: torch.Tensor,
    *,
    max_items: int = 24,
) -> bytes:
    """One row per misclassified image: image, CAM overlay, true-class and predicted-class prototype.

    Shows the first ``max_items`` items in the order given, so callers choose the ranking.
    """
    require_int_in_range(max_items, "max_items", 1)
    if not items:
        return _message_png("no misclassified images")
    maps = _map_stack(prototypes, len(class_names), "prototypes")
    shown = items[:max_items]
    for item in shown:
        _check_labels(item, len(class_names))
    figure = _new_figure(4 * PANEL_INCHES + 0.8, (PANEL_INCHES + 0.6) * len(shown) + 0.4)
    figure.suptitle(f"{len(shown)} of {len(items)} misclassified images")
    for row, item in zip(figure.subfigures(len(shown), 1, squeeze=False).ravel(), shown, strict=True):
        _gallery_row(row, item, class_names, maps)
    return _figure_png(figure)


def cam_examples_grid(
    images: torch.Tensor,
    cams: torch.Tensor,
    titles: Sequence[str],
    *,
    colormap: str = DEFAULT_COLORMAP,
    ncols: int = 8,
) -> bytes:
    """CAM overlays of ``N×C×H×W`` uint8 images and ``N×H×W`` CAMs in a grid, ``ncols`` per row."""
    require_int_in_range(ncols, "ncols", 1)
    cmap = _colormap(colormap)
    if images.ndim != 4 or cams.ndim != 3 or not len(images) == len(cams) == len(titles):
        raise ConfigError(
            f"need N×C×H×W images, N×H×W CAMs and N titles with the same N; got images "
            f"{tuple(images.shape)}, CAMs {tuple(cams.shape)}, {len(titles)} titles",
            code="invalid_shape",
        )
    if len(images) == 0:
        return _message_png("no images")
    columns = min(len(images), ncols)
    figure = _new_figure(PANEL_INCHES * columns + 0.8, PANEL_INCHES * math.ceil(len(images) / columns))
    cells = _grid_axes(figure, len(images), columns)
    for axes, image, cam, title in zip(cells, images, cams, titles, strict=True):
        _show_rgb(axes, overlay_image(image, cam, colormap=colormap), title)
    _add_colorbar(figure, cells, cmap)
    return _figure_png(figure)


# --- training curves --------------------------------------------------------------------------

Curve = list[tuple[float, float]]  # (epoch, value) points


def _curve_family(key: str) -> str | None:
    return next((family for family in CURVE_FAMILIES if family in key.lower()), None)


def _curves_by_family(history: Sequence[Mapping[str, float]]) -> dict[str, dict[str, Curve]]:
    """family → metric key → points; epochs lacking a key simply contribute no point to it."""
    families: dict[str, dict[str, Curve]] = {family: {} for family in CURVE_FAMILIES}
    for position, record in enumerate(history, start=1):
        epoch = float(record.get("epoch", position))
        for key, value in record.items():
            family = _curve_family(key)
            if family is not None and value is not None:
                families[family].setdefault(key, []).append((epoch, float(value)))
    return {family: curves for family, curves in families.items() if curves}


def _plot_family(axes: Axes, family: str, curves: dict[str, Curve]) -> None:
    for key, points in curves.items():
        epochs, values = zip(*points, strict=True)
        # Markers so that a single epoch still shows up as a point.
        axes.plot(epochs, values, marker="o", markersize=3, label=key)
    axes.set_title(family)
    axes.set_xlabel("epoch")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.grid(alpha=0.3)
    axes.legend(fontsize=TITLE_FONTSIZE)


def training_curves(history: Sequence[Mapping[str, float]]) -> bytes:
    """Per-epoch metrics plotted against ``epoch``: one panel each for loss, accuracy and distance keys.

    A key joins the first family its name contains; other keys (e.g. a learning rate) are not drawn.
    Panels without data are left out.
    """
    families = _curves_by_family(history)
    if not families:
        return _message_png("no training history yet")
    figure = _new_figure(4.5 * len(families), 3.2)
    panels = figure.subplots(1, len(families), squeeze=False).ravel()
    for axes, (family, curves) in zip(panels, families.items(), strict=True):
        _plot_family(axes, family, curves)
    return _figure_png(figure)


# --- faithfulness ------------------------------------------------------------------------------

PanelCurves = tuple[Sequence[float], Mapping[str, Sequence[float]]]  # x values, label → y values
FAITHFULNESS_PANELS = (
    ("deletion", "deletion (lower is better)", "share of pixels removed"),
    ("insertion", "insertion (higher is better)", "share of pixels inserted"),
    ("road", "ROAD (MoRF lower, LeRF higher is better)", "share of pixels imputed"),
)


def faithfulness_curves(
    curves: Mapping[str, PanelCurves], cascade: Sequence[tuple[str, float | None, float | None]]
) -> bytes:
    """Deletion, insertion and ROAD curves of the CAMs beside their references, and the similarity
    of the maps to the trained model's as its modules are randomised (output side first)."""
    figure = _new_figure(18.0, 3.6)
    panels = figure.subplots(1, 4).ravel()
    for axes, (name, title, xlabel) in zip(panels, FAITHFULNESS_PANELS, strict=False):
        drawn = {key: value for key, value in curves.items() if key == name or key.startswith(f"{name}_")}
        for key, (fractions, lines) in drawn.items():
            prefix = key.removeprefix(name).strip("_").upper()
            for label, values in lines.items():
                style = "-" if label == "map" else "--" if label == "random" else ":"
                axes.plot(
                    fractions, values, style, marker="o", markersize=2, label=f"{prefix} {label}".strip()
                )
        axes.set_title(title, fontsize=TITLE_FONTSIZE + 1)
        axes.set_xlabel(xlabel)
        axes.set_ylabel("target-class probability")
        axes.set_ylim(0.0, 1.02)
        axes.grid(alpha=0.3)
        axes.legend(fontsize=TITLE_FONTSIZE)
    _plot_cascade(panels[3], cascade)
    return _figure_png(figure)


def _plot_cascade(axes: Axes, cascade: Sequence[tuple[str, float | None, float | None]]) -> None:
    axes.set_title("randomised modules (lower: the maps depend on the model)", fontsize=TITLE_FONTSIZE + 1)
    if not cascade:
        axes.text(0.5, 0.5, "no parameterised module", ha="center", va="center")
        return
    steps = range(len(cascade))
    rho = [np.nan if value is None else value for _, value, _ in cascade]
    similarity = [np.nan if value is None else value for _, _, value in cascade]
    for values, label in ((rho, "Spearman ρ"), (similarity, "SSIM")):
        axes.plot(steps, values, marker="o", markersize=3, label=label)
    axes.axhline(0.0, color="gray", linewidth=0.8)
    axes.set_xticks(list(steps), [step[0] for step in cascade], rotation=60, ha="right", fontsize=7)
    axes.set_ylim(-1.02, 1.02)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=TITLE_FONTSIZE)
