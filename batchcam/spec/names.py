"""Every name a client may choose: modes, metrics, models, CAM methods, prototypes, execution.

The torch modules that implement each choice import its names from here; tests check the two
agree (a registered model, CAM method or metric has a name here, and only those).
"""

from __future__ import annotations

from typing import Literal

from batchcam.errors import ConfigError

Mode = Literal["baseline", "prototype", "batchcam", "both", "rrr", "rrr-gradcam", "energy"]
MODES: tuple[Mode, ...] = ("baseline", "prototype", "batchcam", "both", "rrr", "rrr-gradcam", "energy")
PROTOTYPE_MODES: tuple[Mode, ...] = ("prototype", "batchcam", "both")
ANNOTATION_MODES: tuple[Mode, ...] = ("rrr", "rrr-gradcam", "energy")

Metric = Literal["l1", "l2", "ssim"]
METRICS: tuple[Metric, ...] = ("l1", "l2", "ssim")

MODEL_NAMES: tuple[str, ...] = ("simple_cnn", "simple_cnn_mlp", "resnet18", "convnextv2_tiny")
CAM_METHOD_NAMES: tuple[str, ...] = ("gradcam", "gradcam++", "xgradcam", "layercam", "hirescam")

# Which pixels a class mean leaves out: none, or the decoy patch of a decoy dataset (its gray level
# encodes the label, so a prototype holding it would reward attention to the shortcut).
PrototypeMask = Literal["none", "decoy"]
PROTOTYPE_MASKS: tuple[PrototypeMask, ...] = ("none", "decoy")
# How a class's images combine into its prototype. The median is robust: a label-coded patch that
# covers a given pixel in fewer than half of a class's images (a decoy corner: a quarter) cannot
# enter it, with no annotation needed.
PrototypeStatistic = Literal["mean", "median"]
PROTOTYPE_STATISTICS: tuple[PrototypeStatistic, ...] = ("mean", "median")
PrototypeTarget = Literal["class", "gaussian", "global-mean", "permuted"]
PROTOTYPE_TARGETS: tuple[PrototypeTarget, ...] = ("class", "gaussian", "global-mean", "permuted")

Optimizer = Literal["adam", "adamw", "sgd"]
OPTIMIZERS: tuple[Optimizer, ...] = ("adam", "adamw", "sgd")
CamGradients = Literal["exact", "constant_weights"]
CAM_GRADIENTS: tuple[CamGradients, ...] = ("exact", "constant_weights")
# How the loss's CAMs treat the batch statistics of train-mode BatchNorm after the CAM layer:
# differentiated through (the CAMs mix the batch's images) or held constant (per-image CAMs).
CamBatchStatistics = Literal["differentiable", "constant"]
CAM_BATCH_STATISTICS: tuple[CamBatchStatistics, ...] = ("differentiable", "constant")
LossMaps = Literal["cam", "input-gradients"]
LOSS_MAPS: tuple[LossMaps, ...] = ("cam", "input-gradients")
EvaluationSplit = Literal["test", "validation"]
EVALUATION_SPLITS: tuple[EvaluationSplit, ...] = ("test", "validation")
Precision = Literal["auto", "fp32", "bf16"]
PRECISIONS: tuple[Precision, ...] = ("auto", "fp32", "bf16")
Device = Literal["auto", "cpu", "cuda", "mps"]
DEVICES: tuple[Device, ...] = ("auto", "cpu", "cuda", "mps")


def uses_cams(mode: Mode) -> bool:
    """Whether the loss of ``mode`` is computed from the batch's explanation maps."""
    return mode in PROTOTYPE_MODES or mode in ("rrr-gradcam", "energy")


def uses_annotations(mode: Mode) -> bool:
    """Whether ``mode`` needs a mask per training image (where explanations must not look)."""
    return mode in ANNOTATION_MODES


def check_mode(mode: str) -> Mode:
    if mode not in MODES:
        raise ConfigError(f"unknown mode {mode!r}; accepted: {', '.join(MODES)}", code="unknown_mode")
    return mode  # type: ignore[return-value]


def check_metric(metric: str) -> Metric:
    if metric not in METRICS:
        raise ConfigError(f"unknown metric {metric!r}; accepted: {', '.join(METRICS)}", code="unknown_metric")
    return metric  # type: ignore[return-value]


def check_cam_method(name: str) -> str:
    if name not in CAM_METHOD_NAMES:
        raise ConfigError(
            f"unknown CAM method {name!r}; accepted: {', '.join(CAM_METHOD_NAMES)}", code="unknown_cam_method"
        )
    return name
