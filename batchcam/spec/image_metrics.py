"""The per-image faithfulness metrics a client may ask an explanation for, and what each means."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from batchcam.errors import ConfigError

ImageMetric = Literal["deletion", "insertion", "road_morf", "road_lerf"]
IMAGE_METRICS: tuple[ImageMetric, ...] = ("deletion", "insertion", "road_morf", "road_lerf")
Direction = Literal["lower", "higher"]


@dataclass(frozen=True)
class ImageMetricInfo:
    better: Direction
    summary: Literal["auc", "mean"]
    meaning: str


IMAGE_METRIC_INFO: dict[ImageMetric, ImageMetricInfo] = {
    "deletion": ImageMetricInfo(
        "lower", "auc", "area under the target probability as the most relevant pixels turn black"
    ),
    "insertion": ImageMetricInfo(
        "higher", "auc", "area under the target probability as the most relevant pixels return to a blur"
    ),
    "road_morf": ImageMetricInfo(
        "lower", "mean", "mean target probability with 10–90 % of the most relevant pixels imputed (ROAD)"
    ),
    "road_lerf": ImageMetricInfo(
        "higher", "mean", "mean target probability with 10–90 % of the least relevant pixels imputed (ROAD)"
    ),
}


def check_image_metrics(names: Sequence[str]) -> list[ImageMetric]:
    """Known metric names, each once, in the order given; a ConfigError names the accepted ones."""
    unknown = [name for name in names if name not in IMAGE_METRICS]
    if unknown:
        raise ConfigError(
            f"unknown faithfulness metric(s) {', '.join(map(repr, unknown))}; "
            f"accepted: {', '.join(IMAGE_METRICS)}",
            code="unknown_faithfulness_metric",
        )
    return list(dict.fromkeys(names))  # type: ignore[arg-type]
