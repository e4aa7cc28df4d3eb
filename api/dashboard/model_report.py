"""The parts of a model's report.json the model page shows, read once into plain values."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

LIGHT, DARK = (246, 248, 250), (11, 61, 145)  # the heat table's colour scale: few → many


@dataclass(frozen=True)
class HeatCell:
    count: int
    share: float  # of the row (the true class's test images)
    background: str
    text: str  # black or white, whichever reads better on the background


@dataclass(frozen=True)
class ClassRow:
    index: int
    name: str
    accuracy: float | None
    distances: dict[str, float | None]  # metric → this class's CAM-prototype distance


@dataclass(frozen=True)
class ReportView:
    accuracy: float | None
    test_images: int | None
    confusion: list[list[HeatCell]]
    classes: list[ClassRow]
    metrics: list[str]  # the distance metrics recorded, in report order
    mean_distances: dict[str, float | None]


def report_view(report: Mapping[str, Any], class_names: Sequence[str]) -> ReportView:
    test: Mapping[str, Any] = report.get("test", {})
    distances: Mapping[str, Any] = test.get("cam_prototype_distance", {})
    per_class_accuracy: Sequence[float | None] = test.get("per_class_accuracy") or [None] * len(class_names)
    return ReportView(
        accuracy=test.get("accuracy"),
        test_images=test.get("num_images"),
        confusion=[heat_row(row) for row in test.get("confusion_matrix", [])],
        classes=[
            ClassRow(
                index=index,
                name=name,
                accuracy=per_class_accuracy[index] if index < len(per_class_accuracy) else None,
                distances={
                    metric: at(values.get("per_class", []), index) for metric, values in distances.items()
                },
            )
            for index, name in enumerate(class_names)
        ],
        metrics=list(distances),
        mean_distances={metric: values.get("mean") for metric, values in distances.items()},
    )


def at(values: Sequence[float | None], index: int) -> float | None:
    return values[index] if index < len(values) else None


def heat_row(counts: Sequence[int]) -> list[HeatCell]:
    total = sum(counts)
    return [heat_cell(count, count / total if total else 0.0) for count in counts]


def heat_cell(count: int, share: float) -> HeatCell:
    rgb = tuple(round(light + (dark - light) * share) for light, dark in zip(LIGHT, DARK, strict=True))
    background = "#{:02x}{:02x}{:02x}".format(*rgb)
    # WCAG contrast: black text needs a light background, white a dark one; pick the better.
    luminance = relative_luminance(rgb)
    text = "#000000" if (luminance + 0.05) / 0.05 >= 1.05 / (luminance + 0.05) else "#ffffff"
    return HeatCell(count=count, share=share, background=background, text=text)


def relative_luminance(rgb: Sequence[int]) -> float:
    def linear(channel: int) -> float:
        value = channel / 255
        return value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4

    red, green, blue = (linear(channel) for channel in rgb)
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue
