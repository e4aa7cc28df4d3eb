"""Everything that defines a training run, validated once, recorded with the result."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, get_args, get_origin, get_type_hints

from batchcam.errors import ConfigError
from batchcam.spec.datasets import BUILTIN_DATASETS
from batchcam.spec.names import (
    CAM_BATCH_STATISTICS,
    CAM_GRADIENTS,
    CAM_METHOD_NAMES,
    DEVICES,
    EVALUATION_SPLITS,
    LOSS_MAPS,
    MODEL_NAMES,
    OPTIMIZERS,
    PRECISIONS,
    PROTOTYPE_MASKS,
    PROTOTYPE_STATISTICS,
    PROTOTYPE_TARGETS,
    CamBatchStatistics,
    CamGradients,
    Device,
    EvaluationSplit,
    LossMaps,
    Metric,
    Mode,
    Optimizer,
    Precision,
    PrototypeMask,
    PrototypeStatistic,
    PrototypeTarget,
    check_metric,
    check_mode,
)


@dataclass(frozen=True)
class Bounds:
    """The closed range of a numeric option: whole numbers when both ends are ``int``."""

    low: int | float
    high: int | float

    @property
    def whole(self) -> bool:
        return isinstance(self.low, int) and isinstance(self.high, int)


def option(
    default: Any,
    help: str,
    *,
    choices: tuple[str, ...] | None = None,
    bounds: Bounds | None = None,
    api: bool = True,
    cli_name: str | None = None,
) -> Any:
    """A TrainConfig field with the one help text the CLI and the API both show.

    ``choices``: the accepted names of a ``str`` field (a ``Literal`` field's come from its type).
    ``bounds``: the accepted range of a number (``None`` stays allowed where the type allows it);
    checked by TrainConfig, and published as the API schema's ``minimum`` and ``maximum``.
    ``api=False``: an execution-environment option the worker decides (CLI only).
    ``cli_name``: the command-line flag where it is not the field's name with dashes.
    """
    metadata = {"help": help, "choices": choices, "bounds": bounds, "api": api, "cli_name": cli_name}
    return field(default=default, metadata=metadata)


def option_bounds(name: str) -> Bounds | None:
    """The accepted range of TrainConfig field ``name`` (None: not a bounded number)."""
    bounds: Bounds | None = next(each for each in fields(TrainConfig) if each.name == name).metadata["bounds"]
    return bounds


def option_choices(name: str) -> tuple[str, ...] | None:
    """The accepted values of TrainConfig field ``name`` (None: not a choice)."""
    spec = next(each for each in fields(TrainConfig) if each.name == name)
    if spec.metadata["choices"] is not None:
        return tuple(spec.metadata["choices"])
    kind = get_type_hints(TrainConfig)[name]
    return tuple(get_args(kind)) if get_origin(kind) is Literal else None


@dataclass(frozen=True)
class TrainConfig:
    """A training run: data, model, objective, optimisation and execution limits.

    ``cam_gradients="exact"`` back-propagates through the CAM's gradient-derived channel weights
    (second order, as in the paper); ``"constant_weights"`` treats them as constants (cheaper).
    ``cam_batch_statistics="constant"`` makes the loss's CAMs per-image at a ``target_layer`` followed
    by BatchNorm: their pass holds the batch's statistics constant (``batchcam.cam.batch_constant``);
    the default, ``"differentiable"``, differentiates through them, so those CAMs mix the batch.
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

    dataset: str = option(
        "shapes", f"A built-in dataset ({', '.join(BUILTIN_DATASETS)}) or the id of an upload."
    )
    model: str = option("simple_cnn", "Architecture.", choices=MODEL_NAMES)
    mode: Mode = option(
        "batchcam",
        "Which explanation loss joins cross-entropy: the paper's prototype terms (prototype, batchcam, "
        "both), or a penalty inside annotation masks (rrr, rrr-gradcam, energy; datasets with masks).",
    )
    metric: Metric = option("l1", "Distance between CAMs and prototypes (ssim means 1 − SSIM).")
    lambda_prototype: float = option(
        1.0, "Weight of the per-image prototype loss, 0–1000.", bounds=Bounds(0.0, 1000.0)
    )
    lambda_batchcam: float = option(
        1.0, "Weight of the per-batch Batch-CAM loss, 0–1000.", bounds=Bounds(0.0, 1000.0)
    )
    prototype_mask: PrototypeMask = option(
        "none", "decoy: leave each image's decoy patch out of the class prototypes (decoy-… datasets only)."
    )
    prototype_statistic: PrototypeStatistic = option(
        "mean", "median: each prototype pixel is the median of its class's images, not their mean."
    )
    prototype_target: PrototypeTarget = option(
        "class",
        "What the CAM losses pull toward: class (the class prototypes), or a control: gaussian (one "
        "centred blob), global-mean (the mean of all training images), permuted (another class's prototype).",
    )
    loss_maps: LossMaps = option(
        "cam", "input-gradients: apply the CAM losses to normalised input-gradient maps instead of CAMs."
    )
    lambda_annotation: float = option(
        1.0, "Weight of the annotation modes' penalty, 0–1000000.", bounds=Bounds(0.0, 1e6)
    )
    evaluation_split: EvaluationSplit = option(
        "test",
        "validation: train on five sixths of the training images and evaluate on the rest "
        "(choose settings there, never on the test split).",
    )
    cam_method: str = option("gradcam", "CAM method inside the loss.", choices=CAM_METHOD_NAMES)
    cam_gradients: CamGradients = option(
        "exact",
        "exact: back-propagate through the CAM's channel weights; constant_weights: treat them as constants.",
    )
    target_layer: str | None = option(
        None,
        "CAM layer; unset = the model's default. A layer followed by BatchNorm (resnet18's layer3, say) "
        "makes the loss's CAMs mix the batch's images in training, not per-image Grad-CAM: training "
        "warns (a job is accepted with a `warning` event that says so), unless cam_batch_statistics is "
        "constant.",
    )
    cam_batch_statistics: CamBatchStatistics = option(
        "differentiable",
        "BatchNorm after the CAM layer in the loss's CAMs: differentiable (train mode as is: each image's "
        "CAM also takes gradient from the other images' scores through the batch statistics), or "
        "constant (the batch's statistics held constant in a second forward pass per step: per-image "
        "CAMs, with the same activations; the cross-entropy is unchanged). No effect at a layer "
        "without BatchNorm after it.",
    )
    epochs: int = option(3, "Training epochs, 1–1000.", bounds=Bounds(1, 1000))
    batch_size: int = option(64, "Images per step, 1–8192.", bounds=Bounds(1, 8192))
    optimizer: Optimizer = option("adam", "Optimiser.")
    lr: float = option(1e-3, "Learning rate, 1e-8–10.", bounds=Bounds(1e-8, 10.0))
    weight_decay: float = option(0.0, "Weight decay, 0–1.", bounds=Bounds(0.0, 1.0))
    seed: int = option(
        0, "Seed for data splits, initial weights and shuffling, 0–2³¹−1.", bounds=Bounds(0, 2**31 - 1)
    )
    image_size: int | None = option(
        None, "Resize images to this side, 8–1024; unset = as stored.", bounds=Bounds(8, 1024)
    )
    device: Device = option("auto", "auto picks CUDA, then MPS, then CPU.", api=False)
    precision: Precision = option("auto", "Numeric precision: auto uses bf16 autocast on CUDA.")
    num_workers: int = option(0, "DataLoader worker processes, 0–64.", bounds=Bounds(0, 64), api=False)
    max_runtime_s: float | None = option(
        None,
        "Stop after this many seconds of training, counted over every resume: the CLI stops "
        "resumably, a job fails with reason timeout; 1 s to 7 days.",
        bounds=Bounds(1.0, 7 * 24 * 3600.0),
        cli_name="max-runtime",
    )
    checkpoint_every_steps: int | None = option(
        None, "Extra checkpoints every N steps (one is always written per epoch).", bounds=Bounds(1, 10**9)
    )
    initial_weights: str | None = option(
        None, "Start from a local safetensors file (matching names/shapes).", api=False
    )
    bn_recalibration_batches: int = option(
        100,
        "Training batches that recompute BatchNorm statistics for each epoch's final weights, 0–100000 "
        "(0: keep the running averages, which can lag weights that move fast).",
        bounds=Bounds(0, 100_000),
    )
    faithfulness_images: int = option(
        64,
        "Test images (a fixed, recorded subset) on which the model report measures how faithful the "
        "CAMs are: deletion, insertion, ROAD, localisation, sanity checks; 0–4096, 0 = none.",
        bounds=Bounds(0, 4096),
    )

    def __post_init__(self) -> None:
        check_mode(self.mode)
        check_metric(self.metric)
        _check_choice("model", self.model, MODEL_NAMES, "unknown_model")
        _check_choice("prototype_mask", self.prototype_mask, PROTOTYPE_MASKS)
        _check_choice("prototype_statistic", self.prototype_statistic, PROTOTYPE_STATISTICS)
        _check_choice("prototype_target", self.prototype_target, PROTOTYPE_TARGETS)
        _check_choice("loss_maps", self.loss_maps, LOSS_MAPS)
        _check_choice("evaluation_split", self.evaluation_split, EVALUATION_SPLITS)
        _check_choice("cam_method", self.cam_method, CAM_METHOD_NAMES, "unknown_cam_method")
        _check_choice("cam_gradients", self.cam_gradients, CAM_GRADIENTS)
        _check_choice("cam_batch_statistics", self.cam_batch_statistics, CAM_BATCH_STATISTICS)
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("precision", self.precision, PRECISIONS)
        _check_choice("device", self.device, DEVICES)
        for spec in fields(self):
            bounds, value = spec.metadata["bounds"], getattr(self, spec.name)
            if bounds is not None and value is not None:
                check = _check_count if bounds.whole else _check_range
                check(spec.name, value, bounds.low, bounds.high)

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


def _check_count(name: str, value: int, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{name} must be a whole number in [{low}, {high}], got {value!r}")


def _check_range(name: str, value: float, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ConfigError(f"{name} must be a number in [{low:g}, {high:g}], got {value!r}")
