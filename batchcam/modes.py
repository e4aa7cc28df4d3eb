"""Switching a model's train/eval mode temporarily without losing per-module modes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn


@contextmanager
def training_modes_preserved(model: nn.Module) -> Iterator[None]:
    """Restore every module's own ``training`` flag on exit (``model.train(x)`` would flatten them)."""
    modes = {module: module.training for module in model.modules()}
    try:
        yield
    finally:
        for module, mode in modes.items():
            module.training = mode


@contextmanager
def evaluating(model: nn.Module) -> Iterator[None]:
    """Eval mode inside the block, the caller's exact modes afterwards."""
    with training_modes_preserved(model):
        model.eval()
        yield
