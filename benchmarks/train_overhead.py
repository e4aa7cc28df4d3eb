"""Cost of one training step for each Batch-CAM objective, relative to plain cross-entropy.

Times ``Trainer.train_step``, the whole step of the real training
loop: input transfer and conversion, forward pass, differentiable CAMs (except for ``baseline``),
losses, backward pass, optimizer step. Data loading, evaluation and checkpoints are left out; they
do not depend on the mode.

    .venv/bin/python benchmarks/train_overhead.py            # full run (CPU, plus CUDA if present)
    .venv/bin/python benchmarks/train_overhead.py --quick    # smoke test
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from _timing import (
    Timing,
    TimingPolicy,
    add_common_arguments,
    common_options,
    machine_info,
    markdown_table,
    measure,
    write_json,
)

from batchcam.data import ImageDataset, make_shapes
from batchcam.models import build
from batchcam.prototypes import class_prototypes
from batchcam.spec.names import METRICS, MODEL_NAMES, CamGradients, Metric, Mode
from batchcam.training import TrainConfig, Trainer, select_execution

BATCHES_IN_ROTATION = 4  # distinct batches cycled through, so steps do not all see one batch
TRAIN_SEED, TEST_SEED = 0, 1


@dataclass(frozen=True)
class Variant:
    """One way to train: the objective's mode and how the CAM's channel weights are differentiated."""

    mode: Mode
    cam_gradients: CamGradients = "exact"

    @property
    def cam_gradients_label(self) -> str:
        return "—" if self.mode == "baseline" else self.cam_gradients.replace("_", " ")


VARIANTS = (
    Variant("baseline"),
    Variant("prototype"),
    Variant("batchcam"),
    Variant("both"),
    Variant("batchcam", "constant_weights"),
)
BASELINE = VARIANTS[0]


@dataclass(frozen=True)
class Options:
    models: tuple[str, ...]
    batches: tuple[int, ...]
    metrics: tuple[Metric, ...]
    devices: tuple[str, ...]
    precision: str
    policy: TimingPolicy
    quick: bool
    json_path: Path | None


@dataclass(frozen=True)
class Setting:
    """What stays fixed while the variants are compared."""

    model_name: str
    batch: int
    metric: Metric
    device: str


@dataclass(frozen=True)
class StepResult:
    setting: Setting
    variant: Variant
    execution: dict[str, object]
    timing: Timing

    @property
    def ms_per_step(self) -> float:
        return self.timing.median_s * 1000.0

    def to_dict(self, baseline_ms: float | None) -> dict[str, Any]:
        return {
            **asdict(self.setting),
            **asdict(self.variant),
            "execution": self.execution,
            "ms_per_step": self.ms_per_step,
            "ratio_vs_baseline": None if baseline_ms is None else self.ms_per_step / baseline_ms,
            **self.timing.to_dict(),
        }


@dataclass(frozen=True)
class TrainingData:
    train: ImageDataset
    test: ImageDataset
    prototypes: torch.Tensor

    @classmethod
    def shapes(cls, batch: int) -> TrainingData:
        train = make_shapes(batch * BATCHES_IN_ROTATION, TRAIN_SEED)
        test = make_shapes(batch, TEST_SEED)  # the trainer wants one; a step never reads it
        prototypes = class_prototypes([(train.images, train.labels)], train.num_classes)
        return cls(train, test, prototypes)

    def batches(self, batch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """uint8 image batches with labels, as the trainer's data loader hands them over."""
        return [self.train[start : start + batch] for start in range(0, len(self.train), batch)]


def parse_options(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", choices=MODEL_NAMES, default=["simple_cnn", "resnet18"])
    parser.add_argument("--batches", nargs="+", type=int, default=[64])
    parser.add_argument("--metrics", nargs="+", choices=METRICS, default=["l1"])
    parser.add_argument(
        "--precision",
        choices=["auto", "fp32", "bf16"],
        default="auto",
        help="as in training: auto = bf16 autocast and channels-last on CUDA, fp32 on CPU",
    )
    add_common_arguments(parser, TimingPolicy(warmup=3, min_repeats=5, min_time_s=2.0))
    args = parser.parse_args(argv)
    common = common_options(args)
    return Options(
        models=tuple(args.models),
        batches=tuple(args.batches),
        metrics=tuple(args.metrics),
        devices=common.devices,
        precision=args.precision,
        policy=common.policy,
        quick=common.quick,
        json_path=common.json_path,
    )


def make_trainer(setting: Setting, variant: Variant, data: TrainingData, precision: str) -> Trainer:
    config = TrainConfig(
        model=setting.model_name,
        mode=variant.mode,
        metric=setting.metric,
        cam_gradients=variant.cam_gradients,
        batch_size=setting.batch,
        device=setting.device,  # type: ignore[arg-type]
        precision=precision,  # type: ignore[arg-type]
    )
    torch.manual_seed(0)  # every variant starts from the same weights
    model = build(setting.model_name, num_classes=data.train.num_classes, in_channels=data.train.in_channels)
    trainer = Trainer(
        model, data.train, data.test, data.prototypes, config, select_execution(setting.device, precision)
    )
    trainer.model.train()  # as in fit(): batch-norm layers use batch statistics
    return trainer


def time_variant(setting: Setting, variant: Variant, data: TrainingData, options: Options) -> StepResult:
    trainer = make_trainer(setting, variant, data, options.precision)
    batches: Iterator[tuple[torch.Tensor, torch.Tensor]] = itertools.cycle(data.batches(setting.batch))
    train_step = trainer.train_step

    def step() -> None:
        images_u8, labels = next(batches)
        train_step(images_u8, labels)

    timing = measure(step, trainer.execution.device, options.policy)
    return StepResult(setting, variant, trainer.execution.describe(), timing)


def run_all(options: Options, report: Callable[[str], None]) -> list[StepResult]:
    results: list[StepResult] = []
    for batch in options.batches:
        data = TrainingData.shapes(batch)
        for device, model_name, metric in itertools.product(options.devices, options.models, options.metrics):
            setting = Setting(model_name, batch, metric, device)
            for variant in VARIANTS:
                result = time_variant(setting, variant, data, options)
                results.append(result)
                report(
                    f"done {model_name} batch {batch} {metric} on {device}: {variant.mode} "
                    f"({variant.cam_gradients_label}) {result.ms_per_step:.1f} ms/step"
                )
    return results


def baseline_ms(results: Sequence[StepResult], setting: Setting) -> float | None:
    for result in results:
        if result.setting == setting and result.variant == BASELINE:
            return result.ms_per_step
    return None


def precision_label(execution: dict[str, object]) -> str:
    return "bf16" if execution.get("bf16") else "fp32"


def results_table(results: Sequence[StepResult]) -> str:
    headers = [
        "model",
        "batch",
        "metric",
        "device",
        "precision",
        "mode",
        "CAM gradients",
        "ms/step",
        "× baseline",
    ]
    rows = []
    for result in results:
        reference = baseline_ms(results, result.setting)
        ratio = "n/a" if reference is None else f"{result.ms_per_step / reference:.2f}×"
        rows.append(
            [
                result.setting.model_name,
                str(result.setting.batch),
                result.setting.metric,
                result.setting.device,
                precision_label(result.execution),
                result.variant.mode,
                result.variant.cam_gradients_label,
                f"{result.ms_per_step:.1f}",
                ratio,
            ]
        )
    return markdown_table(headers, rows)


def describe_policy(options: Options) -> str:
    policy = options.policy
    text = (
        f"Timing: Trainer.train_step on shapes data, {policy.warmup} warm-up step(s), then at least "
        f"{policy.min_repeats} timed step(s) and {policy.min_time_s:g} s per variant; the median is reported."
    )
    return text + (" --quick: a smoke test, not a measurement." if options.quick else "")


def main(argv: Sequence[str] | None = None) -> None:
    options = parse_options(argv)
    machine = machine_info()
    print(machine.header(), flush=True)
    print(describe_policy(options), flush=True)
    results = run_all(options, lambda line: print(line, file=sys.stderr, flush=True))
    print()
    print(results_table(results))
    print()
    print(
        "× baseline: median step time over that of mode baseline (cross-entropy only) for the same "
        "model, batch, metric and device, measured in this run."
    )
    if options.json_path is not None:
        write_json(
            options.json_path,
            machine,
            {
                "models": options.models,
                "batches": options.batches,
                "metrics": options.metrics,
                "devices": options.devices,
                "precision": options.precision,
                "policy": asdict(options.policy),
                "quick": options.quick,
            },
            [result.to_dict(baseline_ms(results, result.setting)) for result in results],
        )


if __name__ == "__main__":
    main()
