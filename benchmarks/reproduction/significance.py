"""Is a difference between two cells real? Welch's t-test and a paired-by-seed t-test, each
Holm-corrected over the comparisons of one table.

A conclusion says "higher" or "lower" only where both corrected tests agree at α = 0.05;
otherwise "no detectable difference" (with 5 seeds a test can only see large effects).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scipy import stats

ALPHA = 0.05


@dataclass(frozen=True)
class Comparison:
    """``values`` vs ``baseline`` (each seed → value): mean difference and corrected p-values."""

    name: str
    n: int
    difference: float  # mean(values) − mean(baseline)
    welch_p: float
    paired_p: float
    welch_p_holm: float = math.nan
    paired_p_holm: float = math.nan

    @property
    def verdict(self) -> str:
        if self.welch_p_holm < ALPHA and self.paired_p_holm < ALPHA:
            return "higher" if self.difference > 0 else "lower"
        return "no detectable difference"


def compare(name: str, values: Mapping[int, float], baseline: Mapping[int, float]) -> Comparison:
    """Welch over all seeds of each side; paired over the seeds both sides have."""
    ours, theirs = list(values.values()), list(baseline.values())
    shared = sorted(set(values) & set(baseline))
    welch = (
        _p(stats.ttest_ind(ours, theirs, equal_var=False).pvalue)
        if min(len(ours), len(theirs)) > 1
        else math.nan
    )
    paired = (
        _p(stats.ttest_rel([values[s] for s in shared], [baseline[s] for s in shared]).pvalue)
        if len(shared) > 1
        else math.nan
    )
    difference = sum(ours) / len(ours) - sum(theirs) / len(theirs)
    return Comparison(name, len(ours), difference, welch, paired)


def _p(value: float) -> float:
    """A NaN p-value (both sides constant) means no evidence of a difference: 1."""
    return 1.0 if math.isnan(value) else float(value)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (step-down, monotone, capped at 1), in the input order."""
    order = sorted(range(len(pvalues)), key=lambda i: pvalues[i])
    adjusted = [math.nan] * len(pvalues)
    running = 0.0
    for rank, index in enumerate(order):
        if math.isnan(pvalues[index]):
            continue
        running = max(running, min(1.0, (len(pvalues) - rank) * pvalues[index]))
        adjusted[index] = running
    return adjusted


def corrected(comparisons: Sequence[Comparison]) -> list[Comparison]:
    """The table's comparisons with both families of p-values Holm-corrected."""
    welch = holm([c.welch_p for c in comparisons])
    paired = holm([c.paired_p for c in comparisons])
    return [
        Comparison(c.name, c.n, c.difference, c.welch_p, c.paired_p, w, p)
        for c, w, p in zip(comparisons, welch, paired, strict=True)
    ]
