"""Starting a model from a local safetensors file (e.g. a converted pretrained checkpoint)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from timm.models import adapt_input_conv
from torch import nn

from batchcam.errors import DataValidationError


@dataclass(frozen=True)
class InitialWeightsReport:
    loaded: list[str]
    adapted: list[str]  # input convolutions converted to another channel count
    skipped: list[str]  # present in the file but with an incompatible shape (e.g. the classifier)
    missing: list[str]  # in the model, not in the file: keep their fresh initialisation

    def summary(self) -> dict[str, object]:
        """For a run's report: counts, and the names worth reading (skipped and adapted ones)."""
        return {
            "loaded": len(self.loaded),
            "adapted": len(self.adapted),
            "skipped": len(self.skipped),
            "missing": len(self.missing),
            "adapted_names": list(self.adapted),
            "skipped_names": list(self.skipped),
        }

    def describe(self) -> str:
        """One line, e.g. ``60 tensors loaded, 1 adapted, 2 skipped (fc.weight, fc.bias), 0 missing``."""
        skipped = f" ({', '.join(self.skipped[:5])}{', …' if len(self.skipped) > 5 else ''})"
        return (
            f"{len(self.loaded)} tensors loaded, {len(self.adapted)} adapted, "
            f"{len(self.skipped)} skipped{skipped if self.skipped else ''}, "
            f"{len(self.missing)} missing (left as initialised)"
        )


def load_initial_weights(model: nn.Module, path: Path) -> InitialWeightsReport:
    """Copy every tensor whose name and shape match; adapt 3↔1-channel input convolutions.

    Fails when nothing matches, which almost always means weights of another architecture.
    """
    try:
        source = load_file(str(path))
    except (SafetensorError, OSError) as error:
        raise DataValidationError(
            f"cannot read initial weights {path}: {error}", code="invalid_weights"
        ) from error
    target = model.state_dict()
    loaded: list[str] = []
    adapted: list[str] = []
    skipped: list[str] = []
    updates: dict[str, torch.Tensor] = {}
    for name, tensor in source.items():
        if name in target and tensor.shape == target[name].shape:
            updates[name] = tensor
            loaded.append(name)
        elif name in target and _is_input_conv(tensor, target[name]):
            updates[name] = adapt_input_conv(target[name].shape[1], tensor)
            adapted.append(name)
        else:
            skipped.append(name)
    if not updates:
        raise DataValidationError(
            f"no tensor in {path.name} matches the model by name and shape; is it the same architecture?",
            code="invalid_weights",
        )
    with torch.no_grad():
        for name, tensor in updates.items():
            target[name].copy_(tensor)
    missing = sorted(set(target) - set(updates))
    return InitialWeightsReport(loaded=loaded, adapted=adapted, skipped=skipped, missing=missing)


def _is_input_conv(source: torch.Tensor, target: torch.Tensor) -> bool:
    return source.ndim == 4 and source.shape[0] == target.shape[0] and source.shape[2:] == target.shape[2:]
