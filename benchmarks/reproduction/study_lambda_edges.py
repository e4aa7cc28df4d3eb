"""The study's λ grid beyond its edges (issue 17), on the validation split.

RRR's chosen λ = 1 is the smallest it tried, and the paper's losses jump from their best (λ = 10) to
a collapse (λ = 100) with nothing between. These cells probe both gaps: RRR at λ 0.1 and 0.3 (seed
0, like its selection), and Batch-CAM L1 at λ 30 on the 5 seeds its λ 1/10/100 ran on. They are
*not* in the methods' λ lists (``reproduction.study.METHODS``), so they inform the write-up without
moving the choice the test grids were run at; the report sets them beside the λ that were chosen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from reproduction.cells import Cell
from reproduction.study import BATCHCAM, METHODS, STUDY_SEEDS, Method
from reproduction.study_tables import accuracy, by_seed, stat_cell, tests_table

RRR = next(method for method in METHODS if method.name == "RRR")
TABLE_SEED = 0  # the selection's seed: every method's λ ran there


@dataclass(frozen=True)
class EdgeProbe:
    method: Method
    lambdas: tuple[float, ...]
    seeds: tuple[int, ...]


EDGE_PROBES: tuple[EdgeProbe, ...] = (
    EdgeProbe(RRR, (0.1, 0.3), (0,)),
    EdgeProbe(BATCHCAM, (30.0,), STUDY_SEEDS),  # its λ 1/10/100 ran on all five (study-select-metric-cpu)
)


def lambda_edge_cells() -> list[Cell]:
    """Each probe's λ on the validation split, seed-major (a grid stopped halfway has whole seeds)."""
    return [
        probe.method.cell(lam, seed, evaluation_split="validation")
        for seed in sorted({seed for probe in EDGE_PROBES for seed in probe.seeds})
        for probe in EDGE_PROBES
        if seed in probe.seeds
        for lam in probe.lambdas
    ]


def lambda_edges_markdown(rows: Sequence[dict[str, Any]], chosen: dict[str, float]) -> str:
    """Each probed method's validation accuracy at every λ on the selection's seed, the new λ in bold;
    and, for a probe on several seeds, its λ against the method's chosen λ over them (Holm over the rows)."""
    found = {row["key"]: float(row["accuracy"]) for row in rows}
    lines = [
        f"| method | λ: validation accuracy on seed {TABLE_SEED} (%), new λ in bold | best λ | chosen λ |",
        "|---|---|---|---|",
    ]
    for probe in EDGE_PROBES:
        method = probe.method
        values = {
            lam: found[key]
            for lam in sorted({*method.lambdas, *probe.lambdas})
            if (key := method.cell(lam, TABLE_SEED, evaluation_split="validation").key) in found
        }
        tried = ", ".join(
            (f"**{lam:g}**" if lam in probe.lambdas else f"{lam:g}") + f": {100 * v:.2f}"
            for lam, v in values.items()
        )
        best = f"{max(values, key=lambda lam: values[lam]):g}" if values else "—"
        lines.append(f"| {method.name} | {tried or 'not run yet'} | {best} | {chosen[method.name]:g} |")
    parts = ["\n".join(lines)]
    for probe in (probe for probe in EDGE_PROBES if len(probe.seeds) > 1):
        parts.append(_seeds_markdown(probe, rows, chosen[probe.method.name]))
    return "\n\n".join(parts)


def _seeds_markdown(probe: EdgeProbe, rows: Sequence[dict[str, Any]], chosen: float) -> str:
    def cell(lam: float) -> Cell:
        return probe.method.cell(lam, TABLE_SEED, evaluation_split="validation")

    means = "; ".join(
        f"λ {lam:g}: {stat_cell(values, 2, 100.0)} ({len(values)} seeds)"
        for lam in (chosen, *probe.lambdas)
        if (values := by_seed(rows, cell(lam)))
    )
    entries = [(f"{probe.method.name}, λ {lam:g}", cell(lam)) for lam in probe.lambdas]
    return (
        f"*{probe.method.name}: validation accuracy (%) on every seed that ran:* {means}.\n\n"
        f"*Against its chosen λ {chosen:g} (Holm over the rows):*\n\n"
        + tests_table(entries, cell(chosen), rows, accuracy)
    )
