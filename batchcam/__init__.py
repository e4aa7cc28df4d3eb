"""Batch-CAM: train image classifiers that are right for the right reasons.

A batched, differentiable Grad-CAM sits inside the loss and pulls each class's CAMs toward that
class's prototype (Ignesti, Moroni, Martinelli, arXiv 2510.00664). Pure PyTorch.
"""

from batchcam import models
from batchcam.cam import CamExtractor, CamPostprocess, CamResult, grad_cam

__version__ = "0.1.0"

__all__ = ["CamExtractor", "CamPostprocess", "CamResult", "__version__", "grad_cam", "models"]
