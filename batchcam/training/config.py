"""Everything that defines a training run, validated once, recorded with the result."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from batchcam.cam.methods import CAM_METHODS
from batchcam.errors import ConfigError
from batchcam.losses import Mode, check_mode
from batchcam.metrics import Metric, check_metric
from batchcam.models.registry import MODEL_NAMES
from batchcam.prototypes import PROTOTYPE_MASKS, PROTOTYPE_STATISTICS, PrototypeMask, PrototypeStatistic
from batchcam.targets import PROTOTYPE_TARGETS, PrototypeTarget

Optimizer = Literal["adam", "adamw", "sgd"]
OPTIMIZERS: tuple[Optimizer, ...] = ("adam", "adamw", "sgd")
CamGradients = Literal["exact", "constant_weights"]
CAM_GRADIENTS: tuple[CamGradients, ...] = ("exact", "constant_weights")
Precision = Literal["auto", "fp32", "bf16"]
PRECISIONS: tuple[Precision, ...] = ("auto", "fp32", "bf16")
Device = Literal["auto", "cpu", "cuda", "mps"]
DEVICES: tuple[Device, ...] = ("auto", "cpu", "cuda", "mps")
LossMaps = Literal["cam", "input-gradients"]
LOSS_MAPS: tuple[LossMaps, ...] = ("cam", "input-gradients")
EvaluationSplit = Literal["test", "validation"]
EVALUATION_SPLITS: tuple[EvaluationSplit, ...] = ("test", "validation")


@dataclass(frozen=True)
class TrainConfig:
    """A training run: data, model, objective, optimisation and execution limits.

    ``cam_gradients="exact"`` back-propagates through the CAM's gradient-derived channel weights
    (second order, as in the paper); ``"constant_weights"`` treats them as constants (cheaper).
    ``checkpoint_every_steps`` adds step checkpoints to the one written after every epoch.
    ``prototype_mask="decoy"`` leaves the decoy patch out of the class prototypes (decoy datasets);
    ``prototype_statistic="median"`` takes each prototype pixel's median instead of its mean.
    ``prototype_target`` chooses what the CAM losses pull toward: the class prototypes, or a
    control (see ``batchcam.targets``). ``loss_maps="input-gradients"`` applies the CAM losses to
    normalised input-gradient maps of the true class instead of CAMs.
    ``lambda_annotation`` weighs the penalty of the annotation modes (``rrr``, ``rrr-gradcam``,
    ``energy``), which need datasets with masks (decoy patches, or object masks).
    ``evaluation_split="validation"`` trains on five sixths of the training images and evaluates on
    the rest (choose settings there, never on the test split).
    ``bn_recalibration_batches`` training batches recompute BatchNorm statistics for the weights at
    the end of every epoch, before it is evaluated and saved (0: keep the running averages).
    ``faithfulness_images`` test images get the report's faithfulness assessment (0: none); it reads
    the trained model only, so it does not affect training or resuming.
    """

    dataset: str = "shapes"
    model: str = "simple_cnn"
    mode: Mode = "batchcam"
    metric: Metric = "l1"
    lambda_prototype: float = 1.0
    lambda_batchcam: float = 1.0
    prototype_mask: PrototypeMask = "none"
    prototype_statistic: PrototypeStatistic = "mean"
    prototype_target: PrototypeTarget = "class"
    loss_maps: LossMaps = "cam"
    lambda_annotation: float = 1.0
    evaluation_split: EvaluationSplit = "test"
    cam_method: str = "gradcam"
    cam_gradients: CamGradients = "exact"
    target_layer: str | None = None
    epochs: int = 3
    batch_size: int = 64
    optimizer: Optimizer = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    seed: int = 0
    image_size: int | None = None
    device: Device = "auto"
    precision: Precision = "auto"
    num_workers: int = 0
    max_runtime_s: float | None = None
    checkpoint_every_steps: int | None = None
    initial_weights: str | None = None
    bn_recalibration_batches: int = 100
    faithfulness_images: int = 64

    def __post_init__(self) -> None:
        check_mode(self.mode)
        check_metric(self.metric)
        _check_choice("model", self.model, MODEL_NAMES, "unknown_model")
        _check_choice("prototype_mask", self.prototype_mask, PROTOTYPE_MASKS)
        _check_choice("prototype_statistic", self.prototype_statistic, PROTOTYPE_STATISTICS)
        _check_choice("prototype_target", self.prototype_target, PROTOTYPE_TARGETS)
        _check_choice("loss_maps", self.loss_maps, LOSS_MAPS)
        _check_choice("evaluation_split", self.evaluation_split, EVALUATION_SPLITS)
        _check_choice("cam_method", self.cam_method, tuple(CAM_METHODS), "unknown_cam_method")
        _check_choice("cam_gradients", self.cam_gradients, CAM_GRADIENTS)
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("precision", self.precision, PRECISIONS)
        _check_choice("device", self.device, DEVICES)
        _check_count("epochs", self.epochs, 1, 1000)
        _check_count("batch_size", self.batch_size, 1, 8192)
        _check_range("lr", self.lr, 1e-8, 10.0)
        _check_range("weight_decay", self.weight_decay, 0.0, 1.0)
        _check_range("lambda_prototype", self.lambda_prototype, 0.0, 1000.0)
        _check_range("lambda_batchcam", self.lambda_batchcam, 0.0, 1000.0)
        _check_range("lambda_annotation", self.lambda_annotation, 0.0, 1e6)
        _check_count("num_workers", self.num_workers, 0, 64)
        _check_count("seed", self.seed, 0, 2**31 - 1)
        _check_count("bn_recalibration_batches", self.bn_recalibration_batches, 0, 100_000)
        _check_count("faithfulness_images", self.faithfulness_images, 0, 4096)
        if self.image_size is not None:
            _check_count("image_size", self.image_size, 8, 1024)
        if self.max_runtime_s is not None:
            _check_range("max_runtime_s", self.max_runtime_s, 1.0, 7 * 24 * 3600.0)
        if self.checkpoint_every_steps is not None:
            _check_count("checkpoint_every_steps", self.checkpoint_every_steps, 1, 10**9)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"unknown training option(s): {', '.join(unknown)}; accepted: {', '.join(sorted(known))}"
            )
        return cls(**data)


def _check_choice(name: str, value: str, accepted: tuple[str, ...], code: str = "invalid_config") -> None:
    if value not in accepted:
        raise ConfigError(f"unknown {name} {value!r}; accepted: {', '.join(accepted)}", code=code)


def _check_count(name: str, value: int, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{name} must be a whole number in [{low}, {high}], got {value!r}")


def _check_range(name: str, value: float, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ConfigError(f"{name} must be a number in [{low:g}, {high:g}], got {value!r}")
