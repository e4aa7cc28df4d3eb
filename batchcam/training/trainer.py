"""The training loop shared by the CLI and the workers."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

import torch
from torch import nn
from torch.utils.data import DataLoader

from batchcam.caller_warnings import warn_caller
from batchcam.cam.extractor import CamExtractor
from batchcam.cam.gradient_maps import input_gradient_maps
from batchcam.data.annotations import AnnotatedImages
from batchcam.data.dataset import ImageDataset
from batchcam.device import Execution
from batchcam.errors import ConfigError, TrainingDivergedError
from batchcam.evaluation import evaluate
from batchcam.losses import BatchCamObjective, LossTerms
from batchcam.spec.layers import mixing_warning
from batchcam.spec.training import TrainConfig
from batchcam.targets import training_targets
from batchcam.training.batches import EpochBatchSampler, batches_per_epoch, epoch_seed
from batchcam.training.batchnorm import recalibrate_batchnorm, recalibration_images
from batchcam.training.callbacks import Callback
from batchcam.training.progress import EpochMetrics, Progress
from batchcam.training.state import TrainingState

Outcome = Literal["completed", "cancelled", "timed_out"]


@dataclass
class TrainResult:
    """How the run ended and the state at its last checkpoint (weights included)."""

    outcome: Outcome
    state: TrainingState
    history: list[EpochMetrics] = field(default_factory=list)


class _NonFiniteLoss(Exception):
    def __init__(self, value: float) -> None:
        self.value = value


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    params = model.parameters()
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=config.lr, momentum=0.9, weight_decay=config.weight_decay)


class Trainer:
    """Trains ``model`` with the Batch-CAM objective; evaluates after every epoch.

    One forward pass per step serves both the cross-entropy and the CAMs (two where
    ``cam_batch_statistics="constant"`` holds BatchNorm statistics constant in the CAMs' pass).
    Stops cooperatively between steps when a callback asks, or when ``max_runtime_s`` is reached,
    after a checkpoint.
    """

    def __init__(
        self,
        model: nn.Module,
        train_data: ImageDataset,
        test_data: ImageDataset,
        prototypes: torch.Tensor,
        config: TrainConfig,
        execution: Execution,
        callbacks: Sequence[Callback] = (),
    ) -> None:
        _check_prototypes(prototypes, train_data)
        self.config = config
        self.execution = execution
        self.model = model.to(execution.device)
        if execution.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.train_data = train_data
        self.test_data = test_data
        self.prototypes = prototypes.float()
        self.targets = training_targets(self.prototypes, config.prototype_target, train_data)
        self.extractor = CamExtractor(self.model, config.target_layer, config.cam_method)
        self.objective = BatchCamObjective(
            self.targets.maps,
            config.mode,
            config.metric,
            config.lambda_prototype,
            config.lambda_batchcam,
            config.lambda_annotation,
        ).to(execution.device)
        # Checked here, not at the first step: a dataset without masks fails before any training.
        self._batch_source = AnnotatedImages(train_data) if self.objective.needs_masks else train_data
        # The extractor of the loss's CAMs: the same one, unless BatchNorm after the layer would mix
        # the batch's images and the config asks for per-image CAMs (built here: an unsupported model
        # fails before any training).
        self.loss_extractor = self.extractor
        if (
            self.objective.needs_cams
            and config.loss_maps == "cam"
            and self.extractor.split.batchnorm_after_layer
        ):
            if config.cam_batch_statistics == "constant":
                self.loss_extractor = self.extractor.with_constant_statistics()
            else:
                warn_caller(mixing_warning(self.extractor.layer, self.extractor.split.batchnorm_after_layer))
        self.optimizer = make_optimizer(self.model, config)
        self.callbacks = list(callbacks)
        self.steps_per_epoch = batches_per_epoch(len(train_data), config.batch_size)
        self._fitted = False

    # -- the loop -----------------------------------------------------------------------------

    def fit(self, resume: TrainingState | None = None) -> TrainResult:
        if self._fitted and resume is None:  # it would go on from trained weights with stale optimiser state
            raise ConfigError(
                "this Trainer has already trained its model; build a new Trainer for a fresh run, "
                "or pass resume=<a checkpoint> to continue one"
            )
        # A private copy: the loop mutates its state, the caller's snapshot must stay as it was.
        state = _copy_state(resume) if resume else self._initial_state()
        self._restore(state)  # a refused checkpoint leaves the Trainer as fresh as it was
        self._fitted = True
        started = time.perf_counter() - state.elapsed_s
        self.model.train()
        saved = resume  # the latest checkpoint handed out (None: none yet in this run)
        for epoch in range(state.epoch, self.config.epochs):
            for images, labels, *masks in self._batches(epoch, state.batches_done):
                stop = self._stop_reason(started)
                if stop is not None:
                    return self._stopped(stop, state, saved, started)
                terms, correct = self._checked_step(images, labels, masks[0] if masks else None, epoch, state)
                self._record_step(state, terms, correct, len(labels), epoch, started)
                if self._step_checkpoint_due(state):
                    saved = self._checkpoint(state, started)
            saved = self._finish_epoch(state, epoch, started)
        assert saved is not None  # at least one epoch ran, or the resumed state was complete
        return TrainResult("completed", saved, [EpochMetrics(**h) for h in state.history])

    def _checked_step(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        masks: torch.Tensor | None,
        epoch: int,
        state: TrainingState,
    ) -> tuple[LossTerms, int]:
        try:
            return self.train_step(images, labels, masks)
        except _NonFiniteLoss as error:
            raise TrainingDivergedError(
                f"loss became {error.value} at epoch {epoch + 1}, step {state.batches_done + 1}; "
                "lower the learning rate or the λ weights",
                epoch=epoch,
                step=state.global_step,
            ) from None

    def train_step(
        self, images_u8: torch.Tensor, labels: torch.Tensor, masks: torch.Tensor | None = None
    ) -> tuple[LossTerms, int]:
        """One optimisation step: forward, CAMs, loss, backward, update → (loss terms, correct count).

        ``masks`` (B×H×W, where explanations must not look) are needed by the annotation modes only.
        """
        images = self.execution.model_input(images_u8)
        labels = labels.to(self.execution.device, non_blocking=True)
        from_inputs = self.objective.needs_input_gradients or (
            self.objective.needs_cams and self.config.loss_maps == "input-gradients"
        )
        images.requires_grad_(from_inputs)
        with self.execution.autocast():
            if self.objective.needs_cams and self.config.loss_maps == "cam":
                logits, cams = self._logits_and_cams(images, labels)
            else:
                logits, cams = self.model(images), None
        # The objective in float32 (CAMs already are): in bf16 the Batch-CAM matmul and the SSIM
        # convolutions keep ~3 significant digits, which corrupts the loss and its gradients.
        with torch.autocast(device_type=self.execution.device.type, enabled=False):
            if self.objective.needs_cams and cams is None:
                cams = input_gradient_maps(logits, labels, images)
            terms = self.objective(logits.float(), cams, labels, masks, images)
        loss = float(terms.total.detach())
        if not math.isfinite(loss):
            raise _NonFiniteLoss(loss)  # before the update: weights and checkpoints stay finite
        self.optimizer.zero_grad(set_to_none=True)
        terms.total.backward()
        self.optimizer.step()
        correct = int((logits.detach().argmax(dim=1) == labels).sum())
        return terms, correct

    def _logits_and_cams(
        self, images: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.loss_extractor is self.extractor:
            activations, logits = self.extractor.forward(images, differentiable=True)
            cam_logits = logits
        else:
            # Two passes with the same forward values: the model's own gives the cross-entropy its
            # train-mode gradient and makes the step's one update of the running averages; the CAM
            # pass holds the batch statistics after the layer constant and updates nothing.
            logits = self.model(images)
            activations, cam_logits = self.loss_extractor.forward(images, differentiable=True)
        cams = self.loss_extractor.maps(
            activations,
            cam_logits,
            labels,
            (images.shape[-2], images.shape[-1]),
            create_graph=True,
            constant_weights=self.config.cam_gradients == "constant_weights",
        )
        return logits, cams

    def _batches(self, epoch: int, start_batch: int) -> DataLoader:
        sampler = EpochBatchSampler(
            len(self.train_data), self.config.batch_size, self.config.seed, epoch, start_batch
        )
        # An explicit generator: without one, every new iterator draws its workers' base seed from
        # the global RNG, which the model's own randomness (dropout) uses: resume would drift.
        generator = torch.Generator().manual_seed(epoch_seed(self.config.seed, epoch))
        return DataLoader(
            self._batch_source,
            sampler=sampler,
            batch_size=None,
            num_workers=self.config.num_workers,
            pin_memory=self.execution.device.type == "cuda",
            generator=generator,
        )

    def _recalibration_inputs(self, epoch: int) -> Iterator[torch.Tensor]:
        config = self.config
        images = recalibration_images(
            self.train_data, config.batch_size, config.seed, epoch, config.bn_recalibration_batches
        )
        return map(self.execution.model_input, images)

    # -- bookkeeping --------------------------------------------------------------------------

    def _record_step(
        self, state: TrainingState, terms: LossTerms, correct: int, count: int, epoch: int, started: float
    ) -> None:
        loss = float(terms.total.detach())
        totals = state.epoch_totals
        for key, value in (
            ("loss", loss),
            ("cross_entropy_loss", float(terms.cross_entropy.detach())),
            ("prototype_loss", None if terms.prototype is None else float(terms.prototype.detach())),
            ("batchcam_loss", None if terms.batchcam is None else float(terms.batchcam.detach())),
            ("annotation_loss", None if terms.annotation is None else float(terms.annotation.detach())),
        ):
            if value is not None:
                totals[key] = totals.get(key, 0.0) + value * count
        totals["correct"] = totals.get("correct", 0.0) + correct
        totals["seen"] = totals.get("seen", 0.0) + count
        state.batches_done += 1
        state.global_step += 1
        progress = self._progress(state, epoch, started, "train", loss)
        for callback in self.callbacks:
            callback.on_progress(progress)

    def _finish_epoch(self, state: TrainingState, epoch: int, started: float) -> TrainingState:
        epoch_started = state.epoch_totals.get("epoch_started_s", 0.0)
        for callback in self.callbacks:
            callback.on_progress(self._progress(state, epoch, started, "evaluate"))
        if self.config.bn_recalibration_batches:  # a model without BatchNorm: update_bn does nothing
            recalibrate_batchnorm(self.model, self._recalibration_inputs(epoch))
        evaluation = evaluate(self.extractor, self.test_data, self.prototypes, self.execution, gallery_size=0)
        totals, seen = state.epoch_totals, max(1.0, state.epoch_totals.get("seen", 0.0))
        metrics = EpochMetrics(
            epoch=epoch + 1,
            train_loss=totals.get("loss", 0.0) / seen,
            train_cross_entropy_loss=totals.get("cross_entropy_loss", 0.0) / seen,
            train_prototype_loss=totals["prototype_loss"] / seen if "prototype_loss" in totals else None,
            train_batchcam_loss=totals["batchcam_loss"] / seen if "batchcam_loss" in totals else None,
            train_annotation_loss=totals["annotation_loss"] / seen if "annotation_loss" in totals else None,
            train_accuracy=totals.get("correct", 0.0) / seen,
            test_accuracy=evaluation.accuracy,
            test_cam_distance_l1=evaluation.mean_distance("l1"),
            test_cam_distance_l2=evaluation.mean_distance("l2"),
            test_cam_distance_ssim=evaluation.mean_distance("ssim"),
            epoch_seconds=(time.perf_counter() - started) - epoch_started,
        )
        state.history.append(metrics.to_dict())
        state.epoch, state.batches_done = epoch + 1, 0
        state.epoch_totals = {"epoch_started_s": time.perf_counter() - started}
        progress = self._progress(state, epoch, started, "evaluate")
        for callback in self.callbacks:
            callback.on_epoch_end(metrics, progress)
        return self._checkpoint(state, started)

    def _progress(
        self, state: TrainingState, epoch: int, started: float, phase: str, loss: float | None = None
    ) -> Progress:
        return Progress(
            phase=phase,  # type: ignore[arg-type]
            epoch=epoch,
            epochs=self.config.epochs,
            step=state.global_step,
            total_steps=self.steps_per_epoch * self.config.epochs,
            elapsed_s=time.perf_counter() - started,
            loss=loss,
        )

    def _stop_reason(self, started: float) -> Outcome | None:
        if any(callback.should_stop() for callback in self.callbacks):
            return "cancelled"
        limit = self.config.max_runtime_s
        if limit is not None and time.perf_counter() - started > limit:
            return "timed_out"
        return None

    def _stopped(
        self, outcome: Outcome, state: TrainingState, saved: TrainingState | None, started: float
    ) -> TrainResult:
        # Stopping right after a checkpoint (an epoch's end, a step checkpoint, a resume) has nothing
        # new to save: a second checkpoint of the same step would be a duplicate (and a write-once
        # store refuses one).
        if saved is not None and saved.global_step == state.global_step:
            snapshot = saved
        else:
            snapshot = self._checkpoint(state, started)
        return TrainResult(outcome, snapshot, [EpochMetrics(**h) for h in state.history])

    def _step_checkpoint_due(self, state: TrainingState) -> bool:
        every = self.config.checkpoint_every_steps
        return (
            every is not None and state.global_step % every == 0 and state.batches_done < self.steps_per_epoch
        )

    # -- state --------------------------------------------------------------------------------

    def _initial_state(self) -> TrainingState:
        return TrainingState(
            model={},
            optimizer={},
            epoch=0,
            batches_done=0,
            global_step=0,
            elapsed_s=0.0,
            rng_cpu=torch.get_rng_state(),
            epoch_totals={"epoch_started_s": 0.0},
            config=self.config.to_dict(),
            data_fingerprint=self.train_data.fingerprint,
        )

    def _restore(self, state: TrainingState) -> None:
        differing = _result_affecting_differences(state.config, self.config.to_dict())
        if differing:
            raise ConfigError(
                f"cannot resume: the checkpoint was made with different {', '.join(differing)}; "
                "start a new run instead"
            )
        fingerprint = self.train_data.fingerprint
        # Checkpoints written before fingerprints were recorded hold "": nothing to compare.
        if state.data_fingerprint and state.data_fingerprint != fingerprint:
            raise ConfigError(
                "cannot resume: the checkpoint was made on different data (another training split); "
                "start a new run instead"
            )
        state.data_fingerprint = fingerprint
        if state.model:
            self.model.load_state_dict(state.model)
            self.optimizer.load_state_dict(state.optimizer)
        torch.set_rng_state(state.rng_cpu)
        if state.rng_cuda and torch.cuda.is_available():
            # The attempt that wrote the checkpoint may have seen more GPUs than this one does.
            for index, rng in enumerate(state.rng_cuda[: torch.cuda.device_count()]):
                torch.cuda.set_rng_state(rng, index)

    def _checkpoint(self, state: TrainingState, started: float) -> TrainingState:
        """Hand out a snapshot: copies of everything, since training goes on mutating the originals."""
        snapshot = replace(
            _copy_state(state),
            model={k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()},
            optimizer=_cpu_copy(self.optimizer.state_dict()),
            rng_cpu=torch.get_rng_state(),
            rng_cuda=torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            elapsed_s=time.perf_counter() - started,
        )
        for callback in self.callbacks:
            callback.on_checkpoint(snapshot)
        return snapshot


_TRAIN_DEFAULTS = {f.name: f.default for f in fields(TrainConfig)}
# Execution details may change between attempts (another GPU, a longer time limit); nothing else.
# Options that change how a run executes or what it reports, not the weights it trains.
_EXECUTION_ONLY = frozenset(
    {"device", "precision", "num_workers", "max_runtime_s", "checkpoint_every_steps", "faithfulness_images"}
)


def _result_affecting_differences(saved: dict[str, object], current: dict[str, object]) -> list[str]:
    """Options a checkpoint was made with that differ now. An option added after the checkpoint was
    written counts as its default there (an upgraded worker resumes the jobs of the old one)."""
    return sorted(
        key
        for key in current
        if key not in _EXECUTION_ONLY and saved.get(key, _TRAIN_DEFAULTS[key]) != current[key]
    )


def _copy_state(state: TrainingState) -> TrainingState:
    return replace(
        state, history=[dict(entry) for entry in state.history], epoch_totals=dict(state.epoch_totals)
    )


def _cpu_copy(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {k: _cpu_copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_cpu_copy(v) for v in value)
    return value


def _check_prototypes(prototypes: torch.Tensor, train_data: ImageDataset) -> None:
    """Before training, not at the first CAM loss or the final evaluation."""
    expected = (train_data.num_classes, *train_data.image_size)
    if tuple(prototypes.shape) != expected:
        raise ConfigError(
            f"prototypes must be {'×'.join(map(str, expected))} (one map per class, at the training "
            f"images' size), got {'×'.join(map(str, prototypes.shape))}; class_prototypes() makes them"
        )
