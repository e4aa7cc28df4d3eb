"""The trainer: learning in every mode, the Batch-CAM effect, resume, stop, NaN, device choice."""

from __future__ import annotations

import warnings
from dataclasses import asdict, replace
from typing import get_args

import pytest
import torch
from torch import nn

from batchcam.data import DatasetSplits, load_shapes
from batchcam.data.dataset import as_model_input
from batchcam.device import Execution, select_execution
from batchcam.errors import ConfigError, TrainingDivergedError
from batchcam.models import build
from batchcam.pipeline import prototypes_for
from batchcam.spec.names import (
    CAM_BATCH_STATISTICS,
    CAM_GRADIENTS,
    DEVICES,
    EVALUATION_SPLITS,
    LOSS_MAPS,
    METRICS,
    MODES,
    OPTIMIZERS,
    PRECISIONS,
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
    PrototypeStatistic,
    PrototypeTarget,
)
from batchcam.training import Callback, Progress, TrainConfig, Trainer, TrainingState
from batchcam.training.batchnorm import recalibrate_batchnorm

CPU = select_execution("cpu")


@pytest.fixture(scope="module")
def shapes() -> DatasetSplits:
    return load_shapes(seed=0, n_train=2000, n_test=500)


def make_trainer(
    splits: DatasetSplits,
    config: TrainConfig,
    callbacks: list[Callback] | None = None,
    *,
    dropout: bool = False,
    execution: Execution = CPU,
) -> Trainer:
    torch.manual_seed(config.seed)
    model = build(config.model, splits.train.num_classes)
    if dropout:  # training then draws from the global RNG at every step
        model.head = nn.Sequential(*model.head[:-1], nn.Dropout(0.3), model.head[-1])
    prototypes = prototypes_for(splits.train)
    return Trainer(model, splits.train, splits.test, prototypes, config, execution, callbacks or [])


@pytest.fixture(scope="module")
def trained_per_mode(shapes: DatasetSplits) -> dict[str, list]:
    """Two epochs of each mode from the same seed (shared by the tests below: ~10 s in all)."""
    results = {}
    for mode in ("baseline", "prototype", "batchcam", "both"):
        config = TrainConfig(mode=mode, epochs=2, batch_size=32, seed=0)
        results[mode] = make_trainer(shapes, config).fit().history
    return results


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["baseline", "prototype", "batchcam", "both"])
def test_every_mode_learns_far_above_chance(trained_per_mode, mode: str) -> None:
    assert trained_per_mode[mode][-1].test_accuracy > 0.7  # chance is 0.2 (5 classes)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["prototype", "batchcam", "both"])
def test_cam_losses_pull_cam_prototypes_toward_class_prototypes(trained_per_mode, mode: str) -> None:
    baseline = trained_per_mode["baseline"][-1]
    pulled = trained_per_mode[mode][-1]
    assert pulled.test_cam_distance_l1 < 0.75 * baseline.test_cam_distance_l1
    assert pulled.test_cam_distance_l2 < baseline.test_cam_distance_l2


@pytest.mark.slow
def test_history_reports_the_loss_terms_of_the_mode(trained_per_mode) -> None:
    assert trained_per_mode["baseline"][0].train_prototype_loss is None
    assert trained_per_mode["baseline"][0].train_batchcam_loss is None
    both = trained_per_mode["both"][0]
    assert both.train_prototype_loss is not None and both.train_batchcam_loss is not None
    assert both.train_loss == pytest.approx(
        both.train_cross_entropy_loss + both.train_prototype_loss + both.train_batchcam_loss, rel=1e-5
    )


@pytest.mark.slow
@pytest.mark.parametrize("metric", ["ssim", "l2"])
def test_other_metrics_and_constant_weights_train(shapes: DatasetSplits, metric: str) -> None:
    small = DatasetSplits(
        "small", shapes.train.subset(torch.arange(800)), shapes.test.subset(torch.arange(200))
    )
    # Small batches: BatchNorm's running statistics need some 50 steps before eval mode is reliable.
    config = TrainConfig(
        mode="both", metric=metric, cam_gradients="constant_weights", epochs=2, batch_size=16
    )
    history = make_trainer(small, config).fit().history
    assert history[-1].test_accuracy > 0.5
    assert history[-1].train_loss < history[0].train_loss


class StopAfter(Callback):
    def __init__(self, steps: int) -> None:
        self.steps, self.seen = steps, 0

    def on_progress(self, progress: Progress) -> None:
        self.seen = progress.step

    def should_stop(self) -> bool:
        return self.seen >= self.steps


class KeepCheckpoints(Callback):
    def __init__(self) -> None:
        self.states: list[TrainingState] = []

    def on_checkpoint(self, state: TrainingState) -> None:
        self.states.append(state)


@pytest.fixture(scope="module")
def small(shapes: DatasetSplits) -> DatasetSplits:
    return DatasetSplits(
        "small", shapes.train.subset(torch.arange(480)), shapes.test.subset(torch.arange(100))
    )


RESUME_CONFIG = TrainConfig(mode="both", epochs=2, batch_size=32, seed=3, checkpoint_every_steps=4)


@pytest.fixture(scope="module")
def uninterrupted(small: DatasetSplits):
    return make_trainer(small, RESUME_CONFIG, dropout=True).fit()


@pytest.mark.parametrize("stop_at", [9, 15, 20])  # mid-epoch, on an epoch boundary, after a step checkpoint
def test_resume_ends_with_the_same_weights_as_an_uninterrupted_run(
    small, uninterrupted, tmp_path, stop_at: int
) -> None:
    """Bit-exact even with dropout: the data order must not draw from the RNG the model uses."""
    first = make_trainer(small, RESUME_CONFIG, [StopAfter(stop_at)], dropout=True).fit()
    assert first.outcome == "cancelled" and first.state.global_step == stop_at
    first.state.save(tmp_path / "checkpoint.pt")
    restored = TrainingState.load(tmp_path / "checkpoint.pt")
    resumed = make_trainer(small, replace(RESUME_CONFIG, seed=3), dropout=True).fit(resume=restored)

    assert resumed.outcome == "completed"
    for name, tensor in uninterrupted.state.model.items():
        assert torch.equal(tensor, resumed.state.model[name]), name
    assert [h.test_accuracy for h in resumed.history] == [h.test_accuracy for h in uninterrupted.history]
    assert [h.train_loss for h in resumed.history] == pytest.approx(
        [h.train_loss for h in uninterrupted.history]
    )


def test_data_order_leaves_the_global_rng_alone(small) -> None:
    trainer = make_trainer(small, TrainConfig(epochs=1, batch_size=32))
    before = torch.get_rng_state()
    next(iter(trainer._batches(epoch=0, start_batch=3)))
    assert torch.equal(torch.get_rng_state(), before)


def test_checkpoints_come_after_every_epoch_and_every_n_steps(small) -> None:
    keeper = KeepCheckpoints()
    make_trainer(small, TrainConfig(epochs=2, batch_size=32, checkpoint_every_steps=4), [keeper]).fit()
    positions = [(s.epoch, s.batches_done, s.global_step) for s in keeper.states]
    # 15 batches per epoch: steps 4, 8, 12, then the epoch end (epoch 1, batch 0) at step 15, ...
    assert positions == [
        (0, 4, 4),
        (0, 8, 8),
        (0, 12, 12),
        (1, 0, 15),
        (1, 1, 16),
        (1, 5, 20),
        (1, 9, 24),
        (1, 13, 28),
        (2, 0, 30),
    ]
    assert len(keeper.states[3].history) == 1 and keeper.states[0].history == []
    assert not torch.equal(keeper.states[0].model["head.2.weight"], keeper.states[-1].model["head.2.weight"])


def test_resume_refuses_a_checkpoint_of_another_configuration(small) -> None:
    state = make_trainer(small, TrainConfig(epochs=1, batch_size=32), [StopAfter(2)]).fit().state
    with pytest.raises(ConfigError, match="different lr"):
        make_trainer(small, TrainConfig(epochs=1, batch_size=32, lr=0.01)).fit(resume=state)
    # Execution details may change between attempts.
    result = make_trainer(small, TrainConfig(epochs=1, batch_size=32, max_runtime_s=600)).fit(resume=state)
    assert result.outcome == "completed"


def test_a_checkpoint_written_before_an_option_existed_resumes_with_its_default(small) -> None:
    """An upgraded worker resumes the old one's jobs: a missing option means its default."""
    state = make_trainer(small, TrainConfig(epochs=1, batch_size=32), [StopAfter(2)]).fit().state
    state.config = {
        k: v for k, v in state.config.items() if k not in ("prototype_mask", "bn_recalibration_batches")
    }
    resumed = make_trainer(small, TrainConfig(epochs=1, batch_size=32)).fit(resume=state)
    assert resumed.outcome == "completed"
    with pytest.raises(ConfigError, match="different bn_recalibration_batches"):
        make_trainer(small, TrainConfig(epochs=1, batch_size=32, bn_recalibration_batches=0)).fit(
            resume=state
        )


def batchnorm_buffers(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items() if "running_" in k}


def test_batchnorm_recalibration_averages_the_statistics_of_each_batch(small) -> None:
    """Reference: each BatchNorm's inputs captured per batch; mean of the batch means and of the
    batches' unbiased variances (what cumulative averaging of train-mode batches amounts to)."""
    torch.manual_seed(0)
    model = build("simple_cnn", small.train.num_classes)
    batches = [as_model_input(small.train.images[i : i + 32]) for i in range(0, 96, 32)]
    norms = {name: m for name, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)}
    seen: dict[str, list[torch.Tensor]] = {name: [] for name in norms}
    hooks = [
        m.register_forward_hook(lambda m, x, _, n=name: seen[n].append(x[0].detach()))
        for name, m in norms.items()
    ]
    model.train()
    with torch.no_grad():
        for batch in batches:
            model(batch)
    for hook in hooks:
        hook.remove()
    model.eval()
    recalibrate_batchnorm(model, iter(batches))
    assert not model.training  # its mode is restored
    for name, norm in norms.items():
        means = torch.stack([x.mean(dim=(0, 2, 3)) for x in seen[name]]).mean(dim=0)
        variances = torch.stack([x.var(dim=(0, 2, 3), unbiased=True) for x in seen[name]]).mean(dim=0)
        assert torch.allclose(norm.running_mean, means, atol=1e-5), name
        assert torch.allclose(norm.running_var, variances, rtol=1e-4, atol=1e-5), name
        assert norm.momentum == 0.1  # restored


def test_each_epoch_is_evaluated_with_statistics_of_its_final_weights(small) -> None:
    config = TrainConfig(epochs=1, batch_size=32, bn_recalibration_batches=4)
    trainer = make_trainer(small, config)
    result = trainer.fit()
    recalibrated = batchnorm_buffers(trainer.model)
    recalibrate_batchnorm(trainer.model, trainer._recalibration_inputs(0))  # the same sample again
    for name, value in batchnorm_buffers(trainer.model).items():
        assert torch.allclose(value, recalibrated[name]), name
        assert torch.equal(result.state.model[name], recalibrated[name]), name  # what the checkpoint holds
    plain = make_trainer(small, replace(config, bn_recalibration_batches=0))
    plain.fit()
    running = batchnorm_buffers(plain.model)  # the same weights' momentum averages: not the same
    assert any(
        not torch.allclose(running[name], recalibrated[name]) for name in recalibrated if "var" in name
    )


def test_a_trainer_trains_once_unless_told_to_resume(small) -> None:
    trainer = make_trainer(small, TrainConfig(epochs=1, batch_size=32), [StopAfter(2)])
    stopped = trainer.fit()
    with pytest.raises(ConfigError, match="already trained its model; build a new Trainer"):
        trainer.fit()  # would silently train on from the trained weights with stale optimiser state
    trainer.callbacks.clear()
    assert trainer.fit(resume=stopped.state).outcome == "completed"


def test_resume_refuses_a_checkpoint_made_on_other_data(small, tmp_path) -> None:
    state = make_trainer(small, TrainConfig(epochs=1, batch_size=32), [StopAfter(2)]).fit().state
    assert state.data_fingerprint == small.train.fingerprint
    other = DatasetSplits("other", small.train.subset(torch.arange(1, 480)), small.test)
    with pytest.raises(ConfigError, match="the checkpoint was made on different data"):
        make_trainer(other, TrainConfig(epochs=1, batch_size=32)).fit(resume=state)

    # Checkpoints from before the fingerprint was recorded still load and resume.
    old = {k: v for k, v in asdict(state).items() if k != "data_fingerprint"}
    torch.save(old, tmp_path / "old.pt")
    restored = TrainingState.load(tmp_path / "old.pt")
    assert restored.data_fingerprint == ""
    result = make_trainer(small, TrainConfig(epochs=1, batch_size=32)).fit(resume=restored)
    assert result.outcome == "completed" and result.state.data_fingerprint == small.train.fingerprint


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"not a checkpoint", "UnpicklingError"),
        (b"", "EOFError"),
        ({"epoch": 1, "weights": {}}, "missing"),
        (torch.zeros(3), "holds a Tensor"),
    ],
)
def test_a_foreign_or_damaged_checkpoint_is_a_config_error(tmp_path, content, reason: str) -> None:
    path = tmp_path / "checkpoint.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    with pytest.raises(ConfigError, match=f"{path}.*{reason}") as error:
        TrainingState.load(path)
    assert error.value.code == "invalid_checkpoint" and "\n" not in error.value.message


def test_time_limit_stops_resumably(small) -> None:
    class Slow(Callback):
        def on_progress(self, progress: Progress) -> None:
            import time

            time.sleep(0.15)

    result = make_trainer(small, TrainConfig(epochs=5, batch_size=32, max_runtime_s=1.0), [Slow()]).fit()
    assert result.outcome == "timed_out"
    assert 0 < result.state.global_step < 75 and result.state.model


def test_nan_loss_fails_clearly_before_touching_the_weights(small) -> None:
    config = TrainConfig(mode="prototype", epochs=1, batch_size=32)
    torch.manual_seed(0)
    model = build("simple_cnn", 5)
    before = {k: v.clone() for k, v in model.named_parameters()}
    prototypes = torch.full((5, 28, 28), float("nan"))
    keeper = KeepCheckpoints()
    trainer = Trainer(model, small.train, small.test, prototypes, config, CPU, [keeper])
    with pytest.raises(TrainingDivergedError, match="loss became nan at epoch 1, step 1") as error:
        trainer.fit()
    assert error.value.code == "nan_loss" and error.value.step == 0
    assert keeper.states == []
    assert all(torch.equal(before[k], v) for k, v in model.named_parameters())


def test_progress_reports_steps_and_eta(small) -> None:
    seen: list[Progress] = []

    class Record(Callback):
        def on_progress(self, progress: Progress) -> None:
            seen.append(progress)

    make_trainer(small, TrainConfig(epochs=2, batch_size=32), [Record()]).fit()
    train_steps = [p for p in seen if p.phase == "train"]
    assert [p.step for p in train_steps] == list(range(1, 31))
    assert all(p.total_steps == 30 for p in seen)
    assert train_steps[-1].eta_s == pytest.approx(0.0) and train_steps[0].eta_s > 0
    assert {p.phase for p in seen} == {"train", "evaluate"}


def test_config_rejects_bad_values_with_what_is_accepted() -> None:
    with pytest.raises(ConfigError, match="accepted: adam, adamw, sgd"):
        TrainConfig(optimizer="lbfgs")
    with pytest.raises(ConfigError, match=r"batch_size must be a whole number in \[1, 8192\]"):
        TrainConfig(batch_size=0)
    for counted in ({"epochs": 2.5}, {"batch_size": 64.0}, {"seed": True}, {"bn_recalibration_batches": -1}):
        with pytest.raises(ConfigError, match=f"{next(iter(counted))} must be a whole number"):
            TrainConfig(**counted)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown training option"):
        TrainConfig.from_dict({"epochs": 1, "learning_rate": 0.1})
    assert TrainConfig.from_dict(TrainConfig(epochs=2).to_dict()) == TrainConfig(epochs=2)


def test_choice_constants_list_exactly_the_literal_values() -> None:
    """The tuples feed validation and the CLI's choices; the Literals feed the type checker."""
    for literal, values in (
        (Mode, MODES),
        (Metric, METRICS),
        (Optimizer, OPTIMIZERS),
        (CamGradients, CAM_GRADIENTS),
        (CamBatchStatistics, CAM_BATCH_STATISTICS),
        (Precision, PRECISIONS),
        (Device, DEVICES),
        (LossMaps, LOSS_MAPS),
        (EvaluationSplit, EVALUATION_SPLITS),
        (PrototypeTarget, PROTOTYPE_TARGETS),
        (PrototypeStatistic, PROTOTYPE_STATISTICS),
    ):
        assert get_args(literal) == values


def test_device_selection() -> None:
    """auto: CUDA with bf16 (where supported) and channels-last; elsewhere plain fp32."""
    execution = select_execution("auto", "auto")
    cpu = select_execution("cpu", "auto")
    assert cpu.device.type == "cpu" and not cpu.bf16 and not cpu.channels_last
    with pytest.raises(ConfigError, match="needs a CUDA GPU"):
        select_execution("cpu", "bf16")
    if torch.cuda.is_available():
        assert execution.device.type == "cuda" and execution.channels_last
        assert execution.bf16 == torch.cuda.is_bf16_supported()
        assert not select_execution("cuda", "fp32").bf16
    else:
        assert execution.device.type in ("cpu", "mps") and not execution.bf16 and not execution.channels_last
        with pytest.raises(ConfigError, match="no CUDA GPU is available"):
            select_execution("cuda")


class RecordObjective:
    """Stands in for the trainer's objective and keeps the inputs of every call."""

    def __init__(self, objective) -> None:
        self.objective = objective
        self.inputs: list[tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]] = []

    def __getattr__(self, name: str):  # needs_cams, needs_masks, …: the real objective's answers
        return getattr(self.objective, name)

    def __call__(self, logits, cams, labels, masks=None, inputs=None):
        self.inputs.append((logits.detach(), None if cams is None else cams.detach(), labels))
        return self.objective(logits, cams, labels, masks, inputs)


@pytest.mark.parametrize("metric", ["l1", "ssim"])
def test_bf16_autocast_computes_the_objective_in_float32(small, metric: str) -> None:
    """bf16 is for the forward pass only: the loss of that pass's logits and CAMs must be their
    float32 loss (in bf16 the Batch-CAM matmul and the SSIM convolutions keep ~3 digits)."""
    bf16_cpu = Execution(device=torch.device("cpu"), bf16=True, channels_last=False)
    trainer = make_trainer(small, TrainConfig(mode="both", metric=metric, batch_size=32), execution=bf16_cpu)
    recorder = RecordObjective(trainer.objective)
    trainer.objective = recorder  # type: ignore[assignment]
    images, labels = small.train[torch.arange(32)]

    terms, _ = trainer.train_step(images, labels)

    logits, cams, _ = recorder.inputs[0]
    assert torch.equal(logits.float(), logits.bfloat16().float())  # the forward really ran in bf16
    assert cams is not None and cams.dtype == torch.float32
    with torch.no_grad():
        expected = recorder.objective(logits.float(), cams, labels)
    for name in ("total", "cross_entropy", "prototype", "batchcam"):
        assert float(getattr(terms, name).detach()) == pytest.approx(float(getattr(expected, name)), rel=1e-6)


def test_stopping_right_after_a_checkpoint_writes_no_duplicate(small) -> None:
    keeper = KeepCheckpoints()
    first = make_trainer(small, RESUME_CONFIG, [StopAfter(4), keeper]).fit()  # step 4 is a step checkpoint
    assert first.outcome == "cancelled"
    assert [s.global_step for s in keeper.states] == [4]
    assert first.state is keeper.states[0]

    again = KeepCheckpoints()
    resumed = make_trainer(small, RESUME_CONFIG, [StopAfter(0), again]).fit(first.state)
    assert resumed.outcome == "cancelled" and resumed.state.global_step == 4
    assert again.states == []  # stopped before any step: the resumed checkpoint is still the latest


def test_prototypes_of_the_wrong_shape_are_refused_before_training(shapes: DatasetSplits) -> None:
    model = build("simple_cnn", shapes.train.num_classes)
    wrong = prototypes_for(shapes.train)[:-1]  # one class short
    with pytest.raises(ConfigError, match=r"prototypes must be \d+×28×28 .*got \d+×28×28"):
        Trainer(model, shapes.train, shapes.test, wrong, TrainConfig(mode="baseline"), CPU)


def test_model_input_is_made_from_uint8_images_only(shapes: DatasetSplits) -> None:
    images = shapes.train.images[:4]
    scaled = as_model_input(images)
    assert scaled.dtype == torch.float32 and torch.equal(scaled * 255, images.float())
    with pytest.raises(ConfigError, match="must be uint8"):
        as_model_input(scaled)  # a second scaling would divide by 255 again


def test_a_cam_layer_before_batchnorm_warns_that_the_loss_mixes_images(shapes: DatasetSplits) -> None:
    config = TrainConfig(model="resnet18", mode="batchcam", metric="l1", target_layer="layer3", epochs=1)
    expected = r"'layer3' is followed by BatchNorm \(layer4\.0\.bn1, .*not per-image"
    with pytest.warns(UserWarning, match=expected) as caught:
        make_trainer(shapes, config)
    assert [warning.filename for warning in caught] == [__file__]  # the caller's line, not the library's
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # neither the default layer nor a baseline run warns
        make_trainer(shapes, replace(config, target_layer=None))
        make_trainer(shapes, replace(config, mode="baseline"))
