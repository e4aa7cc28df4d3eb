"""A batch of perturbation curves: the target-class probability as pixels are removed or inserted."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True, eq=False)
class Curves:
    """``scores[i, k]``: image i's target-class probability with ``fractions[k]`` of it perturbed."""

    fractions: torch.Tensor  # K, increasing, in [0, 1]
    scores: torch.Tensor  # B×K

    def auc(self) -> torch.Tensor:
        """Per image, the trapezoid area under the curve over ``fractions`` (B values)."""
        return torch.trapezoid(self.scores.double(), self.fractions.double().to(self.scores.device)).float()

    def mean(self) -> torch.Tensor:
        """Per image, the mean score over the curve's points (ROAD's summary)."""
        return self.scores.mean(dim=1)
