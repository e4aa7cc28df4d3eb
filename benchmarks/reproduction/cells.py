"""One cell of an experiment grid: a fully specified training run, identified by a stable key."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from batchcam.spec.names import (
    CamBatchStatistics,
    CamGradients,
    Device,
    EvaluationSplit,
    LossMaps,
    Metric,
    Mode,
    Optimizer,
    PrototypeMask,
    PrototypeStatistic,
    PrototypeTarget,
    uses_annotations,
)
from batchcam.spec.training import TrainConfig


@dataclass(frozen=True)
class Cell:
    """Everything that changes a run's result, except the device it runs on.

    ``metric`` and ``lam`` are None for the baseline (it has no CAM term); ``metric`` is None for the
    annotation modes too (their penalty has no metric). ``lam`` weighs whichever CAM or annotation
    term(s) the mode switches on. ``train_limit``/``test_limit`` take a fixed random subset
    (the same for every seed, so seeds differ only in initialisation and data order).
    ``prototype_mask="decoy"`` builds the class prototypes without the decoy patches.
    ``bn_recalibration_batches`` is 0 (BatchNorm keeps its running averages) unless a grid asks:
    the rows recorded before the trainer could recalibrate were made that way.
    The fields after it are the study's (``TrainConfig`` documents them); ``evaluation_split``
    "validation" cells are the ones settings are chosen on.
    """

    dataset: str
    model: str
    mode: Mode
    metric: Metric | None
    lam: float | None
    seed: int
    epochs: int
    batch_size: int = 64
    optimizer: Optimizer = "adam"
    lr: float = 1e-3
    image_size: int | None = None
    train_limit: int | None = None
    test_limit: int | None = None
    prototype_mask: PrototypeMask = "none"
    bn_recalibration_batches: int = 0
    prototype_statistic: PrototypeStatistic = "mean"
    prototype_target: PrototypeTarget = "class"
    loss_maps: LossMaps = "cam"
    cam_gradients: CamGradients = "exact"
    target_layer: str | None = None
    evaluation_split: EvaluationSplit = "test"
    cam_batch_statistics: CamBatchStatistics = "differentiable"

    def __post_init__(self) -> None:
        if (self.mode == "baseline") != (self.lam is None):
            raise ValueError(f"lam must be None exactly for the baseline, got {self}")
        if (self.mode == "baseline" or uses_annotations(self.mode)) != (self.metric is None):
            raise ValueError(f"metric must be None exactly for the baseline and annotation modes, got {self}")

    @property
    def key(self) -> str:
        """Stable across runs and machines: a finished key is never trained again."""
        fields = json.dumps(_key_fields(self), sort_keys=True)
        digest = hashlib.sha256(fields.encode()).hexdigest()[:10]
        metric = self.metric or "none"
        lam = "none" if self.lam is None else f"{self.lam:g}"
        return f"{self.dataset}.{self.model}.{self.mode}.{metric}.lam{lam}.s{self.seed}.{digest}"

    @property
    def group(self) -> Cell:
        """The cell with its seed blanked: rows with the same group are averaged together."""
        return replace(self, seed=-1)

    def train_config(self, device: Device) -> TrainConfig:
        lam = 1.0 if self.lam is None else self.lam
        return TrainConfig(
            dataset=self.dataset,
            model=self.model,
            mode=self.mode,
            metric=self.metric or "l1",
            lambda_prototype=lam,
            lambda_batchcam=lam,
            lambda_annotation=lam,
            epochs=self.epochs,
            batch_size=self.batch_size,
            optimizer=self.optimizer,
            lr=self.lr,
            seed=self.seed,
            image_size=self.image_size,
            prototype_mask=self.prototype_mask,
            bn_recalibration_batches=self.bn_recalibration_batches,
            prototype_statistic=self.prototype_statistic,
            prototype_target=self.prototype_target,
            loss_maps=self.loss_maps,
            cam_gradients=self.cam_gradients,
            target_layer=self.target_layer,
            evaluation_split=self.evaluation_split,
            cam_batch_statistics=self.cam_batch_statistics,
            device=device,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Cell:
        return cls(**data)


# Fields added after results were recorded, with the value every earlier cell had: left out of the
# key at that value, so the cells run before them keep their keys (and are not trained again).
LATER_FIELDS: dict[str, Any] = {
    f.name: f.default
    for f in fields(Cell)
    if f.name
    in (
        "prototype_mask",
        "bn_recalibration_batches",
        "prototype_statistic",
        "prototype_target",
        "loss_maps",
        "cam_gradients",
        "target_layer",
        "evaluation_split",
        "cam_batch_statistics",
    )
}


def _key_fields(cell: Cell) -> dict[str, Any]:
    return {
        name: value
        for name, value in asdict(cell).items()
        if not (name in LATER_FIELDS and value == LATER_FIELDS[name])
    }
