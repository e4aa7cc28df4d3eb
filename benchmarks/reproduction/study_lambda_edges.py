"""The study's λ grid beyond its edges (issue 17), on the validation split, one seed.

RRR's chosen λ = 1 is the smallest it tried, and the paper's losses jump from their best (λ = 10) to
a collapse (λ = 100) with nothing between. These cells probe both gaps: RRR at λ 0.1 and 0.3, and
Batch-CAM L1 at λ 30, seed 0 like the rest of the selection. They are *not* in the methods' λ lists
(``reproduction.study.METHODS``), so they inform the write-up without moving the choice the test
grids were run at; the report sets them beside the λ that were chosen.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reproduction.cells import Cell
from reproduction.study import BATCHCAM, METHODS, Method

RRR = next(method for method in METHODS if method.name == "RRR")
EDGE_LAMBDAS: tuple[tuple[Method, tuple[float, ...]], ...] = ((RRR, (0.1, 0.3)), (BATCHCAM, (30.0,)))
EDGE_SEEDS = (0,)


def lambda_edge_cells(seeds: Sequence[int] = EDGE_SEEDS) -> list[Cell]:
    """Each method's extra λ on the validation split, seed by seed."""
    return [
        method.cell(lam, seed, evaluation_split="validation")
        for seed in seeds
        for method, lambdas in EDGE_LAMBDAS
        for lam in lambdas
    ]


def lambda_edges_markdown(rows: Sequence[dict[str, Any]], seed: int = EDGE_SEEDS[0]) -> str:
    """Each probed method's validation accuracy at every λ on ``seed``, the selection's λ and the
    new ones (in bold) in order, and the best of them: is the chosen λ still inside the range?"""
    accuracy = {row["key"]: float(row["accuracy"]) for row in rows}
    lines = [
        f"| method | λ: validation accuracy on seed {seed} (%), new λ in bold | best λ |",
        "|---|---|---|",
    ]
    for method, extra in EDGE_LAMBDAS:
        values = {
            lam: accuracy[key]
            for lam in sorted({*method.lambdas, *extra})
            if (key := method.cell(lam, seed, evaluation_split="validation").key) in accuracy
        }
        tried = ", ".join(
            (f"**{lam:g}**" if lam in extra else f"{lam:g}") + f": {100 * v:.2f}" for lam, v in values.items()
        )
        best = f"{max(values, key=lambda lam: values[lam]):g}" if values else "—"
        lines.append(f"| {method.name} | {tried or 'not run yet'} | {best} |")
    return "\n".join(lines)
