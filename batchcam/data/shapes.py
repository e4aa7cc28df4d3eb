"""``shapes``: the built-in procedural dataset that needs no download (the embedded default).

Five classes of one filled or outlined object each: circle, square, triangle, plus and ring, drawn
with jittered position, size, rotation and intensity over a noisy background, with 1–3 small
distractors (dots and short strokes) away from the object. The object's ground-truth mask comes
with every image, so explanations can be scored against where the evidence really is.

Shapes are rendered from signed distance functions on the pixel grid, vectorised over images; every
random number is drawn up front, so the result depends on the seed only, not on the chunking.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

import numpy as np
import torch

from batchcam.data.dataset import DatasetSplits, ImageDataset
from batchcam.errors import ConfigError

CLASS_NAMES = ("circle", "square", "triangle", "plus", "ring")
REFERENCE_SIZE = 28  # every length below is in pixels at this size and scales with image_size
MIN_IMAGE_SIZE = 16
RADIUS_RANGE = (8.5, 10.5)  # circumradius of the object
MARGIN = 1.0  # between the object's circumcircle and the frame
INTENSITY_RANGE = (0.7, 1.0)
BACKGROUND_RANGE = (0.0, 0.12)
NOISE_STD = 0.06
MAX_DISTRACTORS = 3
DISTRACTOR_CANDIDATES = 32  # positions tried per distractor; the first one clear of the object wins
DISTRACTOR_GAP = 1.5  # free pixels between a distractor and the object's circumcircle
STROKE_LENGTH_RANGE = (3.0, 6.0)
STROKE_RADIUS_RANGE = (0.5, 0.7)
DOT_RADIUS_RANGE = (0.7, 1.2)
DISTRACTOR_INTENSITY_RANGE = (0.45, 1.0)
CHUNK = 2048  # images rendered at once: bounds the float temporaries to a few tens of MB

ShapeDistance = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Objects:
    """Per-image parameters of the class-defining object (arrays of length N, lengths in pixels)."""

    labels: np.ndarray
    center_y: np.ndarray
    center_x: np.ndarray
    radius: np.ndarray
    angle: np.ndarray
    intensity: np.ndarray

    def rows(self, part: slice) -> Objects:
        return Objects(*(getattr(self, field.name)[part] for field in fields(self)))


@dataclass(frozen=True)
class Distractors:
    """Capsules (a dot is a capsule of length zero), arrays of shape N × MAX_DISTRACTORS."""

    start_y: np.ndarray
    start_x: np.ndarray
    end_y: np.ndarray
    end_x: np.ndarray
    radius: np.ndarray
    intensity: np.ndarray  # zero for unused slots

    def rows(self, part: slice) -> Distractors:
        return Distractors(*(getattr(self, field.name)[part] for field in fields(self)))


def load_shapes(
    seed: int = 0, n_train: int = 4000, n_test: int = 1000, image_size: int = 28
) -> DatasetSplits:
    """Train and test splits generated from two independent seeds derived from ``seed``."""
    train_seed, test_seed = np.random.SeedSequence(seed).generate_state(2).tolist()
    return DatasetSplits(
        name="shapes",
        train=make_shapes(n_train, train_seed, image_size),
        test=make_shapes(n_test, test_seed, image_size),
    )


def make_shapes(n: int, seed: int, image_size: int = 28) -> ImageDataset:
    """``n`` grayscale images with balanced, shuffled classes and the object's mask, fixed by ``seed``."""
    check_options(n, image_size)
    rng = np.random.default_rng(seed)
    scale = image_size / REFERENCE_SIZE
    objects = sample_objects(balanced_labels(n, rng), image_size, scale, rng)
    distractors = sample_distractors(objects, image_size, scale, rng)
    background = rng.uniform(*BACKGROUND_RANGE, size=n).astype(np.float32)
    noise = rng.standard_normal((n, image_size, image_size), dtype=np.float32) * NOISE_STD
    images = np.empty((n, image_size, image_size), dtype=np.uint8)
    masks = np.empty((n, image_size, image_size), dtype=bool)
    for start in range(0, n, CHUNK):
        part = slice(start, start + CHUNK)
        distance = object_distance(objects.rows(part), image_size)
        pixels = np.maximum(
            coverage(distance) * objects.intensity[part, None, None],
            render_distractors(distractors.rows(part), image_size),
        )
        pixels += background[part, None, None] + noise[part]
        images[part] = np.clip(np.rint(pixels * 255), 0, 255)
        masks[part] = distance <= 0
    return ImageDataset(
        images=torch.from_numpy(images).unsqueeze(1),
        labels=torch.from_numpy(objects.labels),
        class_names=CLASS_NAMES,
        object_masks=torch.from_numpy(masks),
        description=f"procedural shapes ({', '.join(CLASS_NAMES)}), {image_size}×{image_size} grayscale",
    )


def check_options(n: int, image_size: int) -> None:
    if n < 1:
        raise ConfigError(f"shapes needs at least 1 image, got n={n}", code="invalid_dataset_option")
    if image_size < MIN_IMAGE_SIZE:
        raise ConfigError(
            f"shapes images must be at least {MIN_IMAGE_SIZE} pixels wide, got image_size={image_size}",
            code="invalid_dataset_option",
        )


def balanced_labels(n: int, rng: np.random.Generator) -> np.ndarray:
    """Class counts differ by at most one; the order is shuffled."""
    return rng.permutation(np.arange(n, dtype=np.int64) % len(CLASS_NAMES))


def sample_objects(labels: np.ndarray, image_size: int, scale: float, rng: np.random.Generator) -> Objects:
    n = len(labels)
    radius = rng.uniform(*RADIUS_RANGE, size=n) * scale
    # pixel centres sit at 0 … size−1; keep the circumcircle (plus the antialiasing edge) inside
    low = radius + MARGIN * scale
    high = image_size - 1 - radius - MARGIN * scale
    return Objects(
        labels=labels,
        center_y=rng.uniform(low, high),
        center_x=rng.uniform(low, high),
        radius=radius,
        angle=rng.uniform(0, 2 * np.pi, size=n),
        intensity=rng.uniform(*INTENSITY_RANGE, size=n),
    )


def sample_distractors(
    objects: Objects, image_size: int, scale: float, rng: np.random.Generator
) -> Distractors:
    """1–3 dots or short strokes per image, each at a random position clear of the object."""
    n, shape = len(objects.labels), (len(objects.labels), MAX_DISTRACTORS, DISTRACTOR_CANDIDATES)
    is_dot = rng.random(shape[:2]) < 0.5
    dot_radius = rng.uniform(*DOT_RADIUS_RANGE, shape[:2])
    stroke_radius = rng.uniform(*STROKE_RADIUS_RANGE, shape[:2])
    radius = np.where(is_dot, dot_radius, stroke_radius) * scale
    length = np.where(is_dot, 0.0, rng.uniform(*STROKE_LENGTH_RANGE, shape[:2]) * scale)
    direction = rng.uniform(0, 2 * np.pi, shape)
    edge = (radius + 0.5)[..., None]
    start_y = rng.uniform(0, 1, shape) * (image_size - 1 - 2 * edge) + edge
    start_x = rng.uniform(0, 1, shape) * (image_size - 1 - 2 * edge) + edge
    end_y = start_y + length[..., None] * np.sin(direction)
    end_x = start_x + length[..., None] * np.cos(direction)
    clearance = (
        segment_distance(
            objects.center_y[:, None, None], objects.center_x[:, None, None], start_y, start_x, end_y, end_x
        )
        - edge
        - objects.radius[:, None, None]
    )
    inside = (
        (end_y >= edge)
        & (end_y <= image_size - 1 - edge)
        & (end_x >= edge)
        & (end_x <= image_size - 1 - edge)
    )
    valid = inside & (clearance >= DISTRACTOR_GAP * scale)
    # the first valid candidate; if none is valid (rare), the one farthest from the object
    chosen = np.where(valid.any(-1), valid.argmax(-1), clearance.argmax(-1))[..., None]
    used = np.arange(MAX_DISTRACTORS) < rng.integers(1, MAX_DISTRACTORS + 1, size=(n, 1))
    intensity = rng.uniform(*DISTRACTOR_INTENSITY_RANGE, shape[:2]) * used
    return Distractors(
        start_y=take_candidate(start_y, chosen),
        start_x=take_candidate(start_x, chosen),
        end_y=take_candidate(end_y, chosen),
        end_x=take_candidate(end_x, chosen),
        radius=radius,
        intensity=intensity,
    )


def take_candidate(values: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """``values[n, d, chosen[n, d]]``: the chosen candidate of every distractor."""
    return np.take_along_axis(values, chosen, axis=-1)[..., 0]


def pixel_grid(image_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates, shaped to broadcast against per-image ``N×1×1`` parameters."""
    coordinates = np.arange(image_size, dtype=np.float32)
    return coordinates[None, :, None], coordinates[None, None, :]


def coverage(distance: np.ndarray) -> np.ndarray:
    """Antialiased ink: 1 inside, 0 outside, a one-pixel linear ramp across the edge."""
    return np.clip(0.5 - distance, 0.0, 1.0)


def segment_distance(
    y: np.ndarray,
    x: np.ndarray,
    start_y: np.ndarray,
    start_x: np.ndarray,
    end_y: np.ndarray,
    end_x: np.ndarray,
) -> np.ndarray:
    """Distance from points ``(y, x)`` to the segments ``start → end`` (broadcasting)."""
    along_y, along_x = end_y - start_y, end_x - start_x
    squared_length = np.maximum(along_y**2 + along_x**2, 1e-9)
    t = np.clip(((y - start_y) * along_y + (x - start_x) * along_x) / squared_length, 0.0, 1.0)
    return np.hypot(y - start_y - t * along_y, x - start_x - t * along_x)


def render_distractors(distractors: Distractors, image_size: int) -> np.ndarray:
    grid_y, grid_x = pixel_grid(image_size)
    ink = np.zeros((len(distractors.radius), image_size, image_size), dtype=np.float32)
    for slot in range(MAX_DISTRACTORS):  # slot by slot keeps the temporaries N×H×W
        start_y, start_x, end_y, end_x, radius, intensity = (
            per_image(values[:, slot])
            for values in (
                distractors.start_y,
                distractors.start_x,
                distractors.end_y,
                distractors.end_x,
                distractors.radius,
                distractors.intensity,
            )
        )
        distance = segment_distance(grid_y, grid_x, start_y, start_x, end_y, end_x) - radius
        np.maximum(ink, coverage(distance) * intensity, out=ink)
    return ink


def per_image(values: np.ndarray) -> np.ndarray:
    """One value per image, shaped ``N×1×1`` (float32) to broadcast over the pixel grid."""
    return values[:, None, None].astype(np.float32)


def object_distance(objects: Objects, image_size: int) -> np.ndarray:
    """Signed distance (pixels, negative inside) from every pixel to each image's object."""
    grid_y, grid_x = pixel_grid(image_size)
    distance = np.empty((len(objects.labels), image_size, image_size), dtype=np.float32)
    for label, shape_distance in enumerate(SHAPE_DISTANCES):
        rows = objects.labels == label
        dy = grid_y - per_image(objects.center_y[rows])
        dx = grid_x - per_image(objects.center_x[rows])
        cos, sin = per_image(np.cos(objects.angle[rows])), per_image(np.sin(objects.angle[rows]))
        # coordinates in the object's own rotated frame
        u, v = cos * dx + sin * dy, cos * dy - sin * dx
        distance[rows] = shape_distance(u, v, per_image(objects.radius[rows]))
    return distance


def circle_distance(u: np.ndarray, v: np.ndarray, radius: np.ndarray) -> np.ndarray:
    return np.hypot(u, v) - radius


def square_distance(u: np.ndarray, v: np.ndarray, radius: np.ndarray) -> np.ndarray:
    return np.maximum(np.abs(u), np.abs(v)) - radius / np.sqrt(2)  # inscribed in the circumcircle


def triangle_distance(u: np.ndarray, v: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """Equilateral: the largest distance beyond its three edges (each edge is radius/2 from the centre)."""
    edges = [
        np.cos(a) * u + np.sin(a) * v
        for a in (np.pi / 2, np.pi / 2 + 2 * np.pi / 3, np.pi / 2 + 4 * np.pi / 3)
    ]
    return np.maximum.reduce(edges) - radius / 2


def plus_distance(u: np.ndarray, v: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """Two crossing bars of the circumradius's length, each at least two pixels wide."""
    half_width = np.maximum(0.22 * radius, 1.0)
    horizontal = np.maximum(np.abs(u) - radius, np.abs(v) - half_width)
    vertical = np.maximum(np.abs(u) - half_width, np.abs(v) - radius)
    return np.minimum(horizontal, vertical)


def ring_distance(u: np.ndarray, v: np.ndarray, radius: np.ndarray) -> np.ndarray:
    thickness = np.maximum(0.3 * radius, 2.0)
    return np.abs(np.hypot(u, v) - (radius - thickness / 2)) - thickness / 2


SHAPE_DISTANCES: tuple[ShapeDistance, ...] = (
    circle_distance,
    square_distance,
    triangle_distance,
    plus_distance,
    ring_distance,
)
