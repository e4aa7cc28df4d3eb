"""Choosing each study method's λ on the validation split, from the finished selection rows."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from reproduction.cells import Cell
from reproduction.study import METHODS, Method, selection_cells


@dataclass(frozen=True)
class Choice:
    method: str
    lam: float
    validation_accuracy: dict[float, float]  # λ → mean validation accuracy over the seeds that ran


def choose(rows: Sequence[dict[str, Any]]) -> dict[str, Choice]:
    """Per method, the λ with the best mean validation accuracy (ties: the smaller λ).

    Raises LookupError naming the missing cells when a method's selection has not run yet.
    """
    accuracy = {row["key"]: row["accuracy"] for row in rows}
    return {method.name: _choose(method, accuracy) for method in METHODS}


def _choose(method: Method, accuracy: dict[str, float]) -> Choice:
    means: dict[float, float] = {}
    for lam in method.lambdas:
        keys = [cell.key for cell in selection_cells() if _is(cell, method, lam)]
        finished = [accuracy[key] for key in keys if key in accuracy]
        if not finished:
            raise LookupError(
                f"{method.name} at λ = {lam:g} has no finished validation run; run the "
                "study-select-cpu grid first"
            )
        means[lam] = statistics.fmean(finished)
    best = max(means.values())
    return Choice(method.name, min(lam for lam, value in means.items() if value == best), means)


def _is(cell: Cell, method: Method, lam: float) -> bool:
    return cell == method.cell(lam, cell.seed, evaluation_split="validation")
