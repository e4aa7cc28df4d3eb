"""Batched Grad-CAM and its variants (Grad-CAM++, XGrad-CAM, LayerCAM, HiResCAM)."""

from batchcam.cam.extractor import CamExtractor, CamResult, grad_cam
from batchcam.cam.methods import CAM_METHODS
from batchcam.cam.postprocess import DEFAULT_POSTPROCESS, CamPostprocess
from batchcam.cam.split import FeatureSplit, make_split

__all__ = [
    "CAM_METHODS",
    "DEFAULT_POSTPROCESS",
    "CamExtractor",
    "CamPostprocess",
    "CamResult",
    "FeatureSplit",
    "grad_cam",
    "make_split",
]
