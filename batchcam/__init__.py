"""Batch-CAM: train image classifiers that are right for the right reasons.

A batched, differentiable Grad-CAM sits inside the loss and pulls each class's CAMs toward that
class's prototype (Ignesti, Moroni, Martinelli, arXiv 2510.00664). Pure PyTorch.

The package's names below load on first use (PEP 562), so that ``batchcam.spec`` and
``batchcam.pixels`` stay importable without PyTorch (the HTTP API uses only those).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "CamExtractor": "batchcam.cam",
    "CamPostprocess": "batchcam.cam",
    "CamResult": "batchcam.cam",
    "grad_cam": "batchcam.cam",
    "models": "batchcam.models",
}

if TYPE_CHECKING:
    from batchcam import models
    from batchcam.cam import CamExtractor, CamPostprocess, CamResult, grad_cam

__all__ = ["CamExtractor", "CamPostprocess", "CamResult", "__version__", "grad_cam", "models"]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'batchcam' has no attribute {name!r}")
    module = importlib.import_module(_LAZY[name])
    return module if name == "models" else getattr(module, name)
