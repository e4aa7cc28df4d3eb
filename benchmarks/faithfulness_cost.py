"""Cost per image of the batched faithfulness metrics against external per-image implementations.

On the same images, maps and target classes, in one process:

- ROAD MoRF over 9 removal shares: ``batchcam.faithfulness.road`` (every share of every image
  imputed in one batched conjugate-gradient solve) against pytorch-grad-cam's
  ``ROADMostRelevantFirstAverage`` (one scipy sparse factorisation per image and percentile), and
  the imputation alone (``impute`` against ``NoisyLinearImputer``) on identical masks;
- deletion: ``batchcam.faithfulness.deletion`` against quantus' ``PixelFlipping`` with the same
  number of steps and a black baseline, through quantus' batched path and one image at a time;
- the whole report section, ``batchcam.faithfulness.assessment.assess``, split as it times itself.

    .venv/bin/python benchmarks/faithfulness_cost.py                 # full run (CPU)
    .venv/bin/python benchmarks/faithfulness_cost.py --quick         # smoke test (8 images)
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _timing import Timing, TimingPolicy, machine_info, markdown_table, measure, write_json
from torch import nn

from batchcam import grad_cam
from batchcam.cam.extractor import CamExtractor
from batchcam.data.dataset import ImageDataset
from batchcam.data.registry import load_dataset
from batchcam.device import select_execution
from batchcam.faithfulness.assessment import FaithfulnessSettings, assess
from batchcam.faithfulness.imputation import impute
from batchcam.faithfulness.ordering import relevance_ranks, removal_counts
from batchcam.faithfulness.perturbation import DEFAULT_STEPS, deletion
from batchcam.faithfulness.road import DEFAULT_FRACTIONS, road
from batchcam.models import build

DATASET = "shapes"
NUM_CLASSES = 10  # the metric-cost model's outputs (the assessment's model follows the dataset)
ROAD_PERCENTILES = [10, 20, 30, 40, 50, 60, 70, 80, 90]  # pytorch-grad-cam's, matching DEFAULT_FRACTIONS
AGREEMENT_IMAGES = 4  # images on which each pair is checked to compute the same thing
DEVICE = torch.device("cpu")
PIXELS = 28 * 28  # H·W of every input here


@dataclass(frozen=True)
class Options:
    images: int
    deletion_steps: int
    assessment_images: tuple[int, ...]
    assessment_repeats: int
    policy: TimingPolicy
    quick: bool
    json_path: Path | None


@dataclass(frozen=True)
class Inputs:
    """The first ``images`` test images of ``shapes``, their labels as targets, and Grad-CAMs."""

    model: nn.Module
    images: torch.Tensor  # B×1×28×28 float in [0, 1]
    targets: torch.Tensor  # B
    maps: torch.Tensor  # B×28×28 in [0, 1]


@dataclass(frozen=True)
class Row:
    metric: str
    implementation: str
    timing: Timing
    images: int
    baseline: str | None  # the implementation this one is compared against; None: it is ours

    @property
    def ms_per_image(self) -> float:
        return 1000 * self.timing.median_s / self.images

    @property
    def images_per_s(self) -> float:
        return self.images / self.timing.median_s

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "implementation": self.implementation,
            "images": self.images,
            "baseline": self.baseline,
            "ms_per_image": self.ms_per_image,
            "images_per_s": self.images_per_s,
            **self.timing.to_dict(),
        }


@dataclass(frozen=True)
class AssessmentResult:
    images: int
    seconds: list[dict[str, float]]  # each timed call's summary["seconds"]

    def median(self, key: str) -> float:
        return statistics.median(entry[key] for entry in self.seconds)

    @property
    def keys(self) -> list[str]:
        return list(self.seconds[0])

    def to_dict(self) -> dict[str, Any]:
        return {
            "images": self.images,
            "repeats": len(self.seconds),
            "median_seconds": {key: self.median(key) for key in self.keys},
            "samples_seconds": self.seconds,
        }


@dataclass(frozen=True)
class Checks:
    """What makes each pair a like-for-like comparison (printed under the table)."""

    deletion_max_abs_diff: float
    imputation_max_abs_diff: float
    grad_cam_removed_share: float  # mean share of pixels pytorch-grad-cam's thresholds remove


def parse_options(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--images", type=int, default=None, help="images per metric call (64; 8 with --quick)"
    )
    parser.add_argument(
        "--deletion-steps",
        type=int,
        default=16,
        help="deletion steps for the quantus comparison; must divide H·W = 784, which 20 does not "
        "(default 16: 49 pixels a step)",
    )
    parser.add_argument(
        "--assessment-images",
        type=int,
        nargs="*",
        default=None,
        help="FaithfulnessSettings(images=...) of each timed assessment (64 256; 8 with --quick; none: skip)",
    )
    parser.add_argument(
        "--assessment-repeats", type=int, default=None, help="timed assessments per size (3; 1 with --quick)"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch.set_num_threads(N) first (default: torch's choice)"
    )
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls first")
    parser.add_argument("--min-repeats", type=int, default=3, help="timed calls, at least")
    parser.add_argument("--min-time", type=float, default=1.0, help="timed seconds, at least")
    parser.add_argument("--quick", action="store_true", help="8 images, tiny repeat counts: a smoke test")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write raw results")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    quick = bool(args.quick)
    images = args.images if args.images is not None else (8 if quick else 64)
    if images < 1:
        parser.error("--images must be at least 1")
    if args.deletion_steps < 1 or PIXELS % args.deletion_steps:
        parser.error(f"--deletion-steps must divide {PIXELS} (quantus needs whole pixels per step)")
    sizes = args.assessment_images if args.assessment_images is not None else ([8] if quick else [64, 256])
    if any(size < 1 for size in sizes):
        parser.error("--assessment-images must be at least 1")
    repeats = args.assessment_repeats if args.assessment_repeats is not None else (1 if quick else 3)
    policy = (
        TimingPolicy.quick()
        if quick
        else TimingPolicy(warmup=args.warmup, min_repeats=args.min_repeats, min_time_s=args.min_time)
    )
    return Options(
        images=images,
        deletion_steps=args.deletion_steps,
        assessment_images=tuple(sizes),
        assessment_repeats=max(1, repeats),
        policy=policy,
        quick=quick,
        json_path=args.json,
    )


def make_inputs(test: ImageDataset, count: int) -> Inputs:
    if count > len(test):
        sys.exit(f"--images {count}: the {DATASET} test split has {len(test)} images")
    torch.manual_seed(0)  # random-init weights: the cost does not depend on training
    model = build("simple_cnn", num_classes=NUM_CLASSES, in_channels=1).eval()
    images_u8, labels = test[torch.arange(count)]
    images = select_execution("cpu", "fp32").model_input(images_u8)
    maps = grad_cam(model, images, labels).detach()
    return Inputs(model, images, labels, maps)


def removed_masks(inputs: Inputs, generator: torch.Generator) -> torch.Tensor:
    """S×B×H×W: the pixels ``road(order="morf")`` removes at each default share (the same ranking)."""
    batch, height, width = inputs.maps.shape
    ranks = relevance_ranks(inputs.maps, generator).view(batch, height, width)
    counts = removal_counts(torch.tensor(DEFAULT_FRACTIONS), height * width)
    return ranks[None] < counts[:, None, None, None]


def road_rows(inputs: Inputs, policy: TimingPolicy, report: Callable[[str], None]) -> list[Row]:
    from pytorch_grad_cam.metrics.road import NoisyLinearImputer, ROADMostRelevantFirstAverage
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget

    model, images, maps, targets = inputs.model, inputs.images, inputs.maps, inputs.targets
    count = len(images)
    generator = torch.Generator().manual_seed(0)
    metric = f"ROAD MoRF, {len(DEFAULT_FRACTIONS)} shares"
    ours = "batchcam road (batched)"
    timing = timed(
        lambda: road(model, images, maps, targets, order="morf", generator=generator), policy, report, ours
    )
    rows = [Row(metric, ours, timing, count, None)]
    theirs_metric = ROADMostRelevantFirstAverage(percentiles=ROAD_PERCENTILES)
    output_targets = [ClassifierOutputSoftmaxTarget(int(target)) for target in targets]
    cams = maps.numpy()
    name = "pytorch-grad-cam ROADMostRelevantFirstAverage (per image)"
    timing = timed(lambda: theirs_metric(images, cams, output_targets, model), policy, report, name)
    rows.append(Row(metric, name, timing, count, ours))

    removed = removed_masks(inputs, generator)
    flat_removed = removed.flatten(0, 1)
    repeated = images.repeat(len(DEFAULT_FRACTIONS), 1, 1, 1)
    metric = f"ROAD imputation only, {len(DEFAULT_FRACTIONS)} shares"
    ours = "batchcam impute (batched)"
    timing = timed(lambda: impute(repeated, flat_removed, generator=generator), policy, report, ours)
    rows.append(Row(metric, ours, timing, count, None))
    imputer = NoisyLinearImputer()
    keep = (~removed).float()  # pytorch-grad-cam's masks: 1 = kept

    def per_image() -> list[torch.Tensor]:
        return [imputer(images[i], keep[share, i]) for share in range(len(keep)) for i in range(count)]

    name = "pytorch-grad-cam NoisyLinearImputer (per image and share)"
    rows.append(Row(metric, name, timed(per_image, policy, report, name), count, ours))
    return rows


def deletion_rows(
    inputs: Inputs, steps: int, policy: TimingPolicy, report: Callable[[str], None]
) -> list[Row]:
    model, images, maps, targets = inputs.model, inputs.images, inputs.maps, inputs.targets
    count = len(images)
    generator = torch.Generator().manual_seed(0)
    metric = f"deletion, {steps} steps"
    ours = "batchcam deletion (batched)"
    timing = timed(
        lambda: deletion(model, images, maps, targets, steps=steps, generator=generator), policy, report, ours
    )
    rows = [Row(metric, ours, timing, count, None)]
    pixel_flipping = quantus_pixel_flipping(PIXELS // steps)
    x_batch, y_batch, a_batch = images.numpy(), targets.numpy(), maps[:, None].numpy()
    for batch_size, label in ((count, f"batch_size={count}"), (1, "batch_size=1, per image")):
        name = f"quantus PixelFlipping ({label})"

        def call(size: int = batch_size) -> object:
            return pixel_flipping(
                model=model, x_batch=x_batch, y_batch=y_batch, a_batch=a_batch, device="cpu", batch_size=size
            )

        rows.append(Row(metric, name, timed(call, policy, report, name), count, ours))
        if count == 1:
            break  # the two quantus rows would be the same call
    if steps != DEFAULT_STEPS:
        metric = f"deletion, {DEFAULT_STEPS} steps (the report's)"
        timing = timed(
            lambda: deletion(model, images, maps, targets, steps=DEFAULT_STEPS, generator=generator),
            policy,
            report,
            ours,
        )
        rows.append(Row(metric, ours, timing, count, None))
    return rows


def quantus_pixel_flipping(features_in_step: int) -> Any:
    import quantus

    # The raw map ranks pixels (no abs, no normalisation: neither changes the order of CAM values in
    # [0, 1]); "black" is each image's minimum, 0 for these images, as deletion's "zero" baseline.
    return quantus.PixelFlipping(
        features_in_step=features_in_step,
        perturb_baseline="black",
        abs=False,
        normalise=False,
        disable_warnings=True,
        display_progressbar=False,
    )


def timed(
    call: Callable[[], object], policy: TimingPolicy, report: Callable[[str], None], name: str
) -> Timing:
    timing = measure(call, DEVICE, policy)
    report(f"done {name}: median {timing.median_s:.3f} s over {timing.repeats} call(s)")
    return timing


def agreement(inputs: Inputs, steps: int) -> Checks:
    """Each pair computes the same thing on the first few images; how close, and where not, why."""
    from pytorch_grad_cam.metrics.road import NoisyLinearImputer

    few = min(AGREEMENT_IMAGES, len(inputs.images))
    model, images, maps, targets = (
        inputs.model,
        inputs.images[:few],
        inputs.maps[:few],
        inputs.targets[:few],
    )
    generator = torch.Generator().manual_seed(0)
    ours = deletion(model, images, maps, targets, steps=steps, generator=generator).scores[:, 1:]
    theirs = quantus_pixel_flipping(PIXELS // steps)(
        model=model,
        x_batch=images.numpy(),
        y_batch=targets.numpy(),
        a_batch=maps[:, None].numpy(),
        device="cpu",
        batch_size=few,
    )
    deletion_diff = float(np.abs(ours.numpy() - np.asarray(theirs)).max())

    small = Inputs(model, images, targets, maps)
    removed = removed_masks(small, generator)
    repeated = images.repeat(len(removed), 1, 1, 1)
    ours_imputed = impute(repeated, removed.flatten(0, 1), noise=0.0).view(
        len(removed), few, *images.shape[1:]
    )
    imputer = NoisyLinearImputer(noise=0.0)
    keep = (~removed).float()
    imputation_diff = max(
        float((imputer(images[i], keep[share, i]) - ours_imputed[share, i]).abs().max())
        for share in range(len(removed))
        for i in range(few)
    )

    cams = inputs.maps.numpy()
    shares = [
        float(1 - (cam < np.percentile(cam, percentile)).mean())
        for cam in cams
        for percentile in ROAD_PERCENTILES
    ]
    return Checks(deletion_diff, imputation_diff, float(np.mean(shares)))


def time_assessments(
    test: ImageDataset, sizes: Sequence[int], repeats: int, warmup: int, report: Callable[[str], None]
) -> list[AssessmentResult]:
    torch.manual_seed(0)
    model = build("simple_cnn", num_classes=test.num_classes, in_channels=test.images.shape[1]).eval()
    extractor = CamExtractor(model)
    execution = select_execution("cpu", "fp32")
    results = []
    for size in sizes:
        settings = FaithfulnessSettings(images=size)
        for _ in range(warmup):
            assess(extractor, test, execution, settings)
        seconds = []
        for _ in range(repeats):
            assessment = assess(extractor, test, execution, settings)
            assert assessment is not None
            seconds.append({key: float(value) for key, value in assessment.summary["seconds"].items()})
        result = AssessmentResult(size, seconds)
        results.append(result)
        report(f"done assessment of {size} images: median {result.median('total'):.2f} s")
    return results


def format_number(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def metric_table(rows: Sequence[Row]) -> str:
    ours = {(row.metric, row.implementation): row for row in rows if row.baseline is None}
    headers = ["metric", "implementation", "ms per image", "images/s", "ratio (external ÷ ours)"]
    lines = []
    for row in rows:
        if row.baseline is None:
            ratio = "1.00×"
        else:
            ratio = f"{row.ms_per_image / ours[(row.metric, row.baseline)].ms_per_image:.2f}×"
        lines.append(
            [
                row.metric,
                row.implementation,
                format_number(row.ms_per_image),
                format_number(row.images_per_s),
                ratio,
            ]
        )
    return markdown_table(headers, lines)


def assessment_table(results: Sequence[AssessmentResult]) -> str:
    keys = results[0].keys
    headers = ["images", "repeats", *(f"{key} s" for key in keys), "ms per image"]
    lines = [
        [
            str(result.images),
            str(len(result.seconds)),
            *(f"{result.median(key):.2f}" for key in keys),
            f"{1000 * result.median('total') / result.images:.1f}",
        ]
        for result in results
    ]
    return markdown_table(headers, lines)


def notes(options: Options, checks: Checks) -> list[str]:
    steps, images = options.deletion_steps, options.images
    few = min(AGREEMENT_IMAGES, images)
    shares = len(DEFAULT_FRACTIONS)
    return [
        f"Inputs: the first {images} `{DATASET}` test images (1×28×28, seed 0), their labels as targets, "
        "`simple_cnn` (10 classes, 1 channel) with random-init weights (torch seed 0: cost does not "
        "depend on training), eval mode, fp32, CPU; maps: `batchcam.grad_cam(model, images, targets)`.",
        "Ratio: the external implementation's median time on the same batch over ours in the same "
        "group, both measured in this run (> 1: ours is faster).",
        "ROAD: pytorch-grad-cam's `ROADMostRelevantFirstAverage` (percentiles 10…90, "
        "`ClassifierOutputSoftmaxTarget`s) builds and factorises one scipy sparse system per image and "
        "percentile, and scores the unperturbed batch once per percentile (its return_diff); ours "
        f"imputes all {shares}·B copies in one batched conjugate-gradient solve and scores them in "
        "one pass.",
        "ROAD removal: ours removes exactly 10 %…90 % of each image (ties ranked at random); "
        "pytorch-grad-cam removes every pixel at or above its percentile threshold, so CAM ties at 0 "
        f"go together: its {shares} percentiles removed {100 * checks.grad_cam_removed_share:.1f} % of the "
        "pixels on average (ours: 50.0 %), i.e. more unknowns per solve.",
        f"Imputation only: both fill the same masks (ours' ranking at the {shares} shares; theirs one "
        f"call per image and share, {shares}·B calls); without noise they agree to max |Δ| "
        f"{checks.imputation_max_abs_diff:.1e} on the first {few} images × {shares} shares.",
        f'Deletion: quantus `PixelFlipping(features_in_step={PIXELS // steps}, perturb_baseline="black", '
        'abs=False, normalise=False)` with softmax probabilities; "black" is each image\'s minimum, 0 for '
        f'these images, as deletion\'s "zero". H·W = {PIXELS} is not a multiple of {DEFAULT_STEPS} (the '
        f"report's steps), so both run {steps} steps ({PIXELS // steps} pixels each; ours also scores "
        f"the unperturbed image: {steps + 1} points to quantus' {steps}). Quantus 0.6.0 perturbs and "
        "predicts a whole batch of `batch_size` images per step; `batch_size=1` is its per-image loop.",
        f"Deletion agreement: ours vs quantus on the first {few} images, max |Δ| "
        f"{checks.deletion_max_abs_diff:.1e} over the {steps} shared points (tied map values are "
        "ordered differently).",
    ]


def assessment_notes(results: Sequence[AssessmentResult]) -> list[str]:
    if not results:
        return []
    return [
        f'Assessment: `assess(CamExtractor(model), {DATASET} test split (seed 0), select_execution("cpu", '
        '"fp32"), FaithfulnessSettings(images=N))`, other settings default (20 steps, 32 sanity '
        "images, 16 integrated-gradients steps); `simple_cnn` for the dataset's classes, random-init "
        'weights. Columns are the medians of each `summary["seconds"]` entry (the median total is not '
        "the sum of the medians); the dataset load is not included.",
    ]


def describe_policy(options: Options) -> str:
    policy = options.policy
    text = (
        f"Timing: {policy.warmup} warm-up call(s), then at least {policy.min_repeats} timed call(s) and "
        f"{policy.min_time_s:g} s per implementation; the median is reported. Assessments: "
        f"{policy.warmup} warm-up and {options.assessment_repeats} timed call(s) per size."
    )
    return text + (" --quick: a smoke test, not a measurement." if options.quick else "")


def main(argv: Sequence[str] | None = None) -> None:
    options = parse_options(argv)
    machine = machine_info()
    print(machine.header(), flush=True)
    print(describe_policy(options), flush=True)

    def report(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    test = load_dataset(DATASET, seed=0).test  # the dataset load is timed nowhere
    inputs = make_inputs(test, options.images)
    rows = road_rows(inputs, options.policy, report)
    rows += deletion_rows(inputs, options.deletion_steps, options.policy, report)
    checks = agreement(inputs, options.deletion_steps)
    assessments = time_assessments(
        test, options.assessment_images, options.assessment_repeats, options.policy.warmup, report
    )
    print()
    print(f"Metric cost, batch of {options.images} images:")
    print()
    print(metric_table(rows))
    print()
    for note in notes(options, checks):
        print(note)
    if assessments:
        print()
        print("Report assessment (`assess`), seconds per assessment:")
        print()
        print(assessment_table(assessments))
        print()
        for note in assessment_notes(assessments):
            print(note)
    if options.json_path is not None:
        write_json(
            options.json_path,
            machine,
            {
                "images": options.images,
                "deletion_steps": options.deletion_steps,
                "assessment_images": options.assessment_images,
                "assessment_repeats": options.assessment_repeats,
                "policy": asdict(options.policy),
                "quick": options.quick,
            },
            [
                *(row.to_dict() for row in rows),
                {"checks": asdict(checks)},
                *({"assessment": result.to_dict()} for result in assessments),
            ],
        )


if __name__ == "__main__":
    main()
