"""Choosing each study method's λ on the validation split, from the finished selection rows."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from reproduction.study import METHODS, STUDY_DATASET, Method

# Validation seeds looked for: more than any grid runs, so a seed added later counts without a change.
SEARCHED_SEEDS = tuple(range(10))


@dataclass(frozen=True)
class Choice:
    method: str
    lam: float
    validation_accuracy: dict[float, float]  # λ → mean validation accuracy over `seeds`
    seeds: tuple[int, ...]  # the seeds on which every λ of the method finished


def choose(
    rows: Sequence[dict[str, Any]], dataset: str = STUDY_DATASET, methods: Sequence[Method] = METHODS
) -> dict[str, Choice]:
    """Per method, the λ with the best mean validation accuracy (ties: the smaller λ), over every
    seed on which all of the method's λ finished: each λ is judged on the same seeds.

    Raises LookupError naming the method when no seed has all of its λ yet.
    """
    accuracy = {row["key"]: row["accuracy"] for row in rows}
    return {method.name: _choose(method, accuracy, dataset) for method in methods}


def _choose(method: Method, accuracy: dict[str, float], dataset: str) -> Choice:
    def key(lam: float, seed: int) -> str:
        return method.cell(lam, seed, dataset, evaluation_split="validation").key

    seeds = tuple(s for s in SEARCHED_SEEDS if all(key(lam, s) in accuracy for lam in method.lambdas))
    if not seeds:
        raise LookupError(
            f"{method.name} on {dataset} has no seed with every λ finished on the validation split; "
            "run its selection grid (study-select-cpu, study-small-select-cpu) first"
        )
    means = {lam: statistics.fmean(accuracy[key(lam, s)] for s in seeds) for lam in method.lambdas}
    best = max(means.values())
    return Choice(method.name, min(lam for lam, value in means.items() if value == best), means, seeds)
