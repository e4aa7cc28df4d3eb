"""The study's tables (Markdown): λ selection on validation, then the test grid with tests.

Every method is compared with the decoy baseline (did it help?) and the controls with Batch-CAM
(does the class-specific prototype matter?), each table Holm-corrected over its comparisons.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from batchcam.spec.datasets import clean_name
from batchcam.spec.names import PrototypeTarget
from reproduction.cells import Cell
from reproduction.selection import Choice
from reproduction.significance import Comparison, compare, corrected
from reproduction.study import BATCHCAM, CLEAN_DATASET, CONTROLS, METHODS, STUDY_DATASET, Method, baseline
from reproduction.study_metric_selection import SELECTION_METRICS, choose_setting, setting_cell
from reproduction.tables import Stat

Row = dict[str, Any]
Value = Callable[[Row], float | None]


def accuracy(row: Row) -> float:
    return float(row["accuracy"])


def follows_decoy(row: Row) -> float | None:
    return row.get("follows_decoy")


def _faithfulness(*path: str) -> Value:
    def value(row: Row) -> float | None:
        node: Any = row.get("faithfulness") or {}
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        return None if node is None else float(node)

    return value


COLUMNS: tuple[tuple[str, Value, int, float], ...] = (
    ("test accuracy (%)", accuracy, 2, 100.0),
    ("follows the decoy (%)", follows_decoy, 1, 100.0),
    (
        "chance: (1 − accuracy) / 9 (%)",
        lambda r: None if follows_decoy(r) is None else (1 - accuracy(r)) / 9,
        1,
        100.0,
    ),
    ("predicted-class CAM mass on patch (%)", lambda r: r.get("decoy_mass_predicted"), 1, 100.0),
    (
        "input-gradient share on patch (%)",
        _faithfulness("localisation", "decoy", "input_attribution_share", "input_gradients"),
        1,
        100.0,
    ),
    ("insertion gain over random", _faithfulness("insertion", "gain_over_random"), 3, 1.0),
    ("ROAD combined", _faithfulness("road", "combined", "map"), 3, 1.0),
)


def by_seed(rows: Sequence[Row], cell: Cell, value: Value = accuracy) -> dict[int, float]:
    """Seed → value for the rows of ``cell``'s group (any seed)."""
    group = cell.group
    found = {}
    for row in rows:
        each = Cell.from_dict(row["cell"])
        if each.group == group and (v := value(row)) is not None and math.isfinite(v):
            found[each.seed] = v
    return found


def stat_cell(values: dict[int, float], digits: int, scale: float, seeds: int | None = None) -> str:
    """Mean ± std; a value measured on fewer seeds than its row has says on how many (a run whose
    folder is gone has its training numbers but no later analysis, e.g. the shortcut test)."""
    stat = Stat.of(list(values.values()))
    if stat is None:
        return "—"
    fewer = f" ({len(values)} seeds)" if seeds is not None and len(values) < seeds else ""
    return stat.format(digits, scale) + fewer


def selection_markdown(
    choices: dict[str, Choice],
    rows: Sequence[Row],
    dataset: str = STUDY_DATASET,
    methods: Sequence[Method] = METHODS,
) -> str:
    """Each method's mean validation accuracy per λ, over the seeds on which all its λ finished."""
    reference = by_seed(rows, baseline(dataset, 0, evaluation_split="validation"))
    lines = [
        "| method | uses | seeds | λ tried: mean validation accuracy (%) | chosen λ |",
        "|---|---|---|---|---|",
        f"| decoy baseline | — | {len(reference)} | {stat_cell(reference, 2, 100.0)} | — |",
    ]
    for method in methods:
        choice = choices[method.name]
        tried = ", ".join(f"{lam:g}: {100 * acc:.2f}" for lam, acc in choice.validation_accuracy.items())
        seeds = len(choice.seeds)
        lines.append(f"| {method.name} | {method.kind} | {seeds} | {tried} | {choice.lam:g} |")
    return "\n".join(lines)


def study_markdown(
    chosen: dict[str, float],
    rows: Sequence[Row],
    dataset: str = STUDY_DATASET,
    methods: Sequence[Method] = METHODS,
    controls: Sequence[PrototypeTarget] = CONTROLS,
) -> str:
    """The test-split table, its tests against the decoy baseline, and the controls' tests."""
    clean = baseline(clean_name(dataset), 0)
    decoy = baseline(dataset, 0)
    entries: list[tuple[str, str, str, Cell]] = [
        ("clean baseline (no patch)", "—", "—", clean),
        ("decoy baseline", "—", "—", decoy),
    ]
    entries += [(m.name, m.kind, f"{chosen[m.name]:g}", m.cell(chosen[m.name], 0, dataset)) for m in methods]
    batchcam = BATCHCAM.cell(chosen[BATCHCAM.name], 0, dataset)
    control_entries = [
        (
            f"control: Batch-CAM L1 toward {target}",
            "control",
            f"{chosen[BATCHCAM.name]:g}",
            replace(batchcam, prototype_target=target),
        )
        for target in controls
    ]
    entries += control_entries
    parts = [
        main_table(entries, rows),
        "Against the decoy baseline (test accuracy, Holm over the table's rows):\n\n"
        + tests_table([(name, cell) for name, _, _, cell in entries[2:]], decoy, rows, accuracy),
    ]
    if control_entries:
        parts.append(
            "Controls against Batch-CAM L1 with class prototypes (Holm over the three):\n\n"
            + _controls_table(control_entries, batchcam, rows)
        )
    parts.append(_annotation_share(chosen, rows, decoy, clean, methods, dataset))
    return "\n\n".join(parts)


def head_markdown(chosen: dict[str, float], rows: Sequence[Row]) -> str:
    """simple_cnn_mlp: baseline, Batch-CAM with exact and with constant CAM weights; exact vs constant."""
    lam = chosen[BATCHCAM.name]
    exact, constant = (
        replace(BATCHCAM.cell(lam, 0, cam_gradients=gradients), model="simple_cnn_mlp")
        for gradients in ("exact", "constant_weights")
    )
    clean, decoy = (
        replace(baseline(data, 0), model="simple_cnn_mlp") for data in (CLEAN_DATASET, STUDY_DATASET)
    )
    entries = [
        ("clean baseline (no patch), MLP head", "—", "—", clean),
        ("decoy baseline, MLP head", "—", "—", decoy),
        ("Batch-CAM L1, exact CAM gradients", "paper", f"{lam:g}", exact),
        ("Batch-CAM L1, constant CAM weights", "paper", f"{lam:g}", constant),
    ]
    tests = [
        f"*{title}, constant against exact:*\n\n"
        + tests_table([("constant weights", constant)], exact, rows, value)
        for title, value in (("test accuracy", accuracy), ("follows the decoy", follows_decoy))
    ]
    return "\n\n".join([main_table(entries, rows), *tests])


def ablation_markdown(chosen: dict[str, float], rows: Sequence[Row]) -> str:
    """Batch-CAM on the study setting with one setting changed at a time, tested against Batch-CAM L1
    at its chosen λ (CAM layer ``features``, batch 64) on both test accuracy and following the decoy."""
    lam = chosen[BATCHCAM.name]
    reference = BATCHCAM.cell(lam, 0)
    entries: list[tuple[str, str, str, Cell]] = [("Batch-CAM L1 (reference)", "paper", f"{lam:g}", reference)]
    for metric in ("l2", "ssim"):
        entries += [
            (
                f"{metric.upper()}, λ {value:g}",
                "paper",
                f"{value:g}",
                replace(BATCHCAM.cell(value, 0), metric=metric),
            )
            for value in BATCHCAM.lambdas
        ]
    entries.append(
        (
            "CAM layer features.2 (14×14, BatchNorm after it)",
            "paper",
            f"{lam:g}",
            replace(reference, target_layer="features.2"),
        )
    )
    entries += [
        (f"batch size {size}", "paper", f"{lam:g}", replace(reference, batch_size=size)) for size in (32, 128)
    ]
    tests = [
        f"*{title}, against the reference (Holm over the rows):*\n\n"
        + tests_table([(name, cell) for name, _, _, cell in entries[1:]], reference, rows, value)
        for title, value in (("test accuracy", accuracy), ("follows the decoy", follows_decoy))
    ]
    return "\n\n".join([main_table(entries, rows), *tests])


def main_table(entries: Sequence[tuple[str, str, str, Cell]], rows: Sequence[Row]) -> str:
    head = ["method", "uses", "λ", "seeds", *(title for title, *_ in COLUMNS)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, kind, lam, cell in entries:
        seeds = len(by_seed(rows, cell))
        values = [
            stat_cell(by_seed(rows, cell, value), digits, scale, seeds) for _, value, digits, scale in COLUMNS
        ]
        lines.append("| " + " | ".join([name, kind, lam, str(seeds), *values]) + " |")
    return "\n".join(lines)


def tests_table(
    entries: Sequence[tuple[str, Cell]], reference: Cell, rows: Sequence[Row], value: Value
) -> str:
    return paired_tests_table([(name, cell, reference) for name, cell in entries], rows, value)


def paired_tests_table(pairs: Sequence[tuple[str, Cell, Cell]], rows: Sequence[Row], value: Value) -> str:
    """Each (name, cell, reference) row against its own reference, Holm over the rows that ran."""
    comparisons = [
        compare(name, values, by_seed(rows, reference, value))
        for name, cell, reference in pairs
        if (values := by_seed(rows, cell, value))
    ]
    return comparison_lines(corrected(comparisons), scale=100.0, unit="points")


def _controls_table(
    entries: Sequence[tuple[str, str, str, Cell]], batchcam: Cell, rows: Sequence[Row]
) -> str:
    parts = []
    for title, value in (("test accuracy", accuracy), ("follows the decoy", follows_decoy)):
        table = tests_table([(name, cell) for name, _, _, cell in entries], batchcam, rows, value)
        parts.append(f"*{title}:*\n\n{table}")
    return "\n\n".join(parts)


def comparison_lines(comparisons: Sequence[Comparison], scale: float, unit: str) -> str:
    lines = [
        f"| comparison | seeds | difference ({unit}) | Welch p (Holm) | paired p (Holm) | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for c in comparisons:
        lines.append(
            f"| {c.name} | {c.n} | {c.difference * scale:+.2f} | {c.welch_p:.3g} ({c.welch_p_holm:.3g}) | "
            f"{c.paired_p:.3g} ({c.paired_p_holm:.3g}) | {c.verdict} |"
        )
    return "\n".join(lines)


def _annotation_share(
    chosen: dict[str, float],
    rows: Sequence[Row],
    decoy: Cell,
    clean: Cell,
    methods: Sequence[Method],
    dataset: str,
) -> str:
    """How much of the accuracy that annotations win back each annotation-free method wins back."""

    def mean(cell: Cell) -> float | None:
        values = by_seed(rows, cell)
        return statistics.fmean(values.values()) if values else None

    decoy_acc, clean_acc = mean(decoy), mean(clean)
    annotated = [mean(m.cell(chosen[m.name], 0, dataset)) for m in methods if m.kind == "annotations"]
    best = max((a for a in annotated if a is not None), default=None)
    if decoy_acc is None or clean_acc is None or best is None or best <= decoy_acc:
        return "Share of the annotation gain: not available until the baselines and annotation methods ran."
    lines = [
        f"Share of the annotation gain (best annotation method {100 * best:.2f} %, decoy baseline "
        f"{100 * decoy_acc:.2f} %, clean {100 * clean_acc:.2f} %):",
        "",
        "| method | share of the annotation gain | accuracy as a share of clean |",
        "|---|---|---|",
    ]
    for method in methods:
        acc = mean(method.cell(chosen[method.name], 0, dataset))
        if acc is not None and method.kind != "annotations":
            share = (acc - decoy_acc) / (best - decoy_acc)
            lines.append(f"| {method.name} | {100 * share:.0f} % | {100 * acc / clean_acc:.1f} % |")
    return "\n".join(lines)


def metric_selection_markdown(rows: Sequence[Row], l1_lambda: float) -> str:
    """Batch-CAM's metric × λ on the validation split: mean ± std over the seeds that ran, the
    setting chosen over the seeds where all finished, and each against L1 at its chosen λ."""
    reference = setting_cell("l1", l1_lambda, 0)
    base = by_seed(rows, baseline(STUDY_DATASET, 0, evaluation_split="validation"))
    lines = [
        "| setting | seeds | validation accuracy (%) |",
        "|---|---|---|",
        f"| decoy baseline | {len(base)} | {stat_cell(base, 2, 100.0)} |",
    ]
    entries = []
    for metric in SELECTION_METRICS:
        for lam in BATCHCAM.lambdas:
            values = by_seed(rows, setting_cell(metric, lam, 0))
            lines.append(f"| {metric.upper()}, λ {lam:g} | {len(values)} | {stat_cell(values, 2, 100.0)} |")
            if (metric, lam) != ("l1", l1_lambda) and len(values) > 1:  # a test needs two seeds
                entries.append((f"{metric.upper()}, λ {lam:g}", setting_cell(metric, lam, 0)))
    choice = choose_setting(rows)
    chosen = (
        "No seed has every metric × λ yet: the metric is not chosen."
        if choice is None
        else f"Chosen over the {len(choice.seeds)} seed(s) on which all nine finished: "
        f"**{choice.metric.upper()}, λ {choice.lam:g}** "
        f"({100 * choice.validation_accuracy[(choice.metric, choice.lam)]:.2f} %)."
    )
    tests = (
        f"*Validation accuracy against L1, λ {l1_lambda:g} (Holm over the rows):*\n\n"
        + tests_table(entries, reference, rows, accuracy)
        if entries
        else "No test yet: each needs at least two seeds of a setting."
    )
    return "\n\n".join(["\n".join(lines), chosen, tests])


def ceiling_markdown(
    chosen: dict[str, float], rows: Sequence[Row], dataset: str, methods: Sequence[Method]
) -> str:
    """The methods without annotations against the annotation method (the first in ``methods``)
    on test accuracy and on following the decoy: is the remaining gap to annotations real?"""
    ceiling = next(m for m in methods if m.kind == "annotations")
    reference = ceiling.cell(chosen[ceiling.name], 0, dataset)
    entries = [(m.name, m.cell(chosen[m.name], 0, dataset)) for m in methods if m.kind != "annotations"]
    return "\n\n".join(
        f"*{title}, against {ceiling.name} (Holm over the rows):*\n\n"
        + tests_table(entries, reference, rows, value)
        for title, value in (("test accuracy", accuracy), ("follows the decoy", follows_decoy))
    )
