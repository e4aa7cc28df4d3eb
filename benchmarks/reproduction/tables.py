"""Rows → Markdown: one line per cell group (all but the seed), mean ± sample standard deviation."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from reproduction.cells import Cell

MODE_ORDER = ("baseline", "prototype", "batchcam", "both", "rrr", "rrr-gradcam", "energy")
METRIC_LABELS = {"l1": "L1", "l2": "L2", "ssim": "1−SSIM"}
PROTOTYPE_LABELS = {"none": "class means", "decoy": "decoy masked"}


@dataclass(frozen=True)
class Stat:
    """Mean and sample standard deviation (n − 1) of one column over the seeds of a group."""

    mean: float
    std: float | None  # None for a single seed
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Stat | None:
        finite = [v for v in values if v is not None and math.isfinite(v)]
        if not finite:
            return None
        std = statistics.stdev(finite) if len(finite) > 1 else None
        return cls(statistics.fmean(finite), std, len(finite))

    def format(self, digits: int, scale: float = 1.0) -> str:
        mean = f"{self.mean * scale:.{digits}f}"
        return mean if self.std is None else f"{mean} ± {self.std * scale:.{digits}f}"


@dataclass(frozen=True)
class Column:
    title: str
    value: Callable[[dict[str, Any]], float | None]
    digits: int
    scale: float = 1.0


COLUMNS = (
    Column("test accuracy (%)", lambda r: r["accuracy"], 2, 100.0),
    *(
        Column(f"CAM↔prototype {label}", lambda r, m=metric: r["cam_prototype_distance"][m], 3)
        for metric, label in METRIC_LABELS.items()
    ),
    Column("true-class CAM mass on decoy (%)", lambda r: r["decoy_energy"], 1, 100.0),
    Column("predicted-class CAM mass on decoy (%)", lambda r: r.get("decoy_mass_predicted"), 1, 100.0),
    Column("follows the decoy (%)", lambda r: r.get("follows_decoy"), 1, 100.0),
    Column("s / epoch", lambda r: r["seconds_per_epoch"], 1),
    Column("CAM ms / image", lambda r: r["cam_ms_per_image"], 3),
)


def grouped(rows: Sequence[dict[str, Any]]) -> dict[Cell, list[dict[str, Any]]]:
    groups: dict[Cell, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[Cell.from_dict(row["cell"]).group].append(row)
    return dict(sorted(groups.items(), key=lambda item: _order(item[0])))


def _order(cell: Cell) -> tuple[Any, ...]:
    mode = MODE_ORDER.index(cell.mode) if cell.mode in MODE_ORDER else len(MODE_ORDER)
    return (
        cell.dataset,
        cell.model,
        cell.epochs,
        cell.train_limit or 0,
        mode,
        cell.metric or "",
        cell.prototype_mask != "none",
        cell.bn_recalibration_batches,
        cell.lam or 0,
        variant(cell),
    )


def hardware(rows: Sequence[dict[str, Any]]) -> str:
    names = sorted({row["machine"].get("gpu") or row["machine"].get("cpu", "?") for row in rows})
    return "; ".join(names)


def markdown(rows: Sequence[dict[str, Any]]) -> str:
    """A table per dataset; a column that no row of the dataset has (decoy mass on clean data) is left out."""
    groups = grouped(rows)
    sections = []
    for dataset in dict.fromkeys(cell.dataset for cell in groups):
        members = {cell: members for cell, members in groups.items() if cell.dataset == dataset}
        sections.append(f"### {dataset}\n\n" + _table(members))
    return "\n\n".join(sections) + "\n"


def _table(groups: dict[Cell, list[dict[str, Any]]]) -> str:
    stats = {
        cell: [Stat.of([c.value(r) for r in members]) for c in COLUMNS] for cell, members in groups.items()
    }
    shown = [i for i, _ in enumerate(COLUMNS) if any(values[i] for values in stats.values())]
    # Columns for settings most rows share only where some row differs.
    masks = any(cell.prototype_mask != "none" for cell in groups)
    recalibrated = any(cell.bn_recalibration_batches for cell in groups)
    variants = any(variant(cell) for cell in groups)
    head = ["model", "mode", "metric", *(["prototypes"] if masks else []), *(["variant"] if variants else [])]
    head += ["λ", "epochs", "train images"]
    head += [*(["BatchNorm statistics"] if recalibrated else []), "seeds"]
    head += [COLUMNS[i].title for i in shown] + ["hardware"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for cell, members in groups.items():
        values = stats[cell]
        row = [
            cell.model,
            cell.mode,
            METRIC_LABELS.get(cell.metric or "", "—"),
            *([PROTOTYPE_LABELS[cell.prototype_mask]] if masks else []),
            *([variant(cell) or "—"] if variants else []),
            "—" if cell.lam is None else f"{cell.lam:g}",
            str(cell.epochs),
            f"{members[0]['train_images']:,}",
            *([_statistics_label(cell)] if recalibrated else []),
            str(len(members)),
        ]
        for i in shown:
            stat = values[i]
            row.append("—" if stat is None else stat.format(COLUMNS[i].digits, COLUMNS[i].scale))
        lines.append("| " + " | ".join([*row, hardware(members)]) + " |")
    return "\n".join(lines)


def variant(cell: Cell) -> str:
    """The study's settings where a cell departs from the paper's recipe ("" where it does not)."""
    parts = [
        f"{cell.prototype_statistic} prototypes" if cell.prototype_statistic != "mean" else "",
        f"toward {cell.prototype_target}" if cell.prototype_target != "class" else "",
        "on input gradients" if cell.loss_maps != "cam" else "",
        "constant CAM weights" if cell.cam_gradients != "exact" else "",
        f"layer {cell.target_layer}" if cell.target_layer else "",
        "validation split" if cell.evaluation_split != "test" else "",
    ]
    return ", ".join(part for part in parts if part)


def _statistics_label(cell: Cell) -> str:
    batches = cell.bn_recalibration_batches
    return f"recalibrated ({batches} batches)" if batches else "running averages"
