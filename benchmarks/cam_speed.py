"""Images/s of Grad-CAM inference: forward only, Batch-CAM, a per-image hook loop and pytorch-grad-cam.

All four run on the same eval-mode fp32 model, the same inputs and the same target classes, in one
process, so the ratios printed next to the throughputs compare like with like on one machine.

    .venv/bin/python benchmarks/cam_speed.py                 # full run (CPU, plus CUDA if present)
    .venv/bin/python benchmarks/cam_speed.py --quick         # smoke test
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
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
from torch import nn

from batchcam import CamExtractor
from batchcam.models import build
from batchcam.spec.names import MODEL_NAMES

METHODS = ("forward", "batchcam", "hook_loop", "grad_cam")
METHOD_LABELS = {
    "forward": "forward img/s",
    "batchcam": "Batch-CAM img/s",
    "hook_loop": "hook loop img/s",
    "grad_cam": "grad-cam img/s",
}
NUM_CLASSES = 10
IMAGE_SHAPE = (1, 28, 28)
AGREEMENT_IMAGES = 4  # images per case on which Batch-CAM is checked against the hook loop
NORMALIZE_EPS = 1e-7  # the library's default min-max epsilon, so the two produce the same maps


@dataclass(frozen=True)
class Options:
    models: tuple[str, ...]
    batches: tuple[int, ...]
    devices: tuple[str, ...]
    policy: TimingPolicy
    hook_images_cpu: int
    quick: bool
    json_path: Path | None


@dataclass(frozen=True)
class Case:
    model_name: str
    batch: int
    device: str


@dataclass(frozen=True)
class MethodResult:
    """One method's timing; ``timed_images < batch`` means timed on a prefix and scaled per image."""

    timing: Timing
    batch: int
    timed_images: int

    @property
    def seconds_per_batch(self) -> float:
        return self.timing.median_s * self.batch / self.timed_images

    @property
    def images_per_s(self) -> float:
        return self.batch / self.seconds_per_batch

    @property
    def extrapolated(self) -> bool:
        return self.timed_images < self.batch

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.timing.to_dict(),
            "seconds_per_batch": self.seconds_per_batch,
            "images_per_s": self.images_per_s,
            "timed_images": self.timed_images,
            "extrapolated": self.extrapolated,
        }


@dataclass(frozen=True)
class CaseResult:
    case: Case
    methods: dict[str, MethodResult]  # a method is missing when it could not run (grad-cam absent)
    max_abs_diff_vs_hook_loop: float

    def ratio(self, numerator: str, denominator: str) -> float | None:
        """Seconds per batch of one method over another's, both from this run."""
        if numerator not in self.methods or denominator not in self.methods:
            return None
        return self.methods[numerator].seconds_per_batch / self.methods[denominator].seconds_per_batch

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.case.model_name,
            "batch": self.case.batch,
            "device": self.case.device,
            "methods": {name: result.to_dict() for name, result in self.methods.items()},
            "ratios": {
                "cam_over_forward": self.ratio("batchcam", "forward"),
                "hook_loop_over_cam": self.ratio("hook_loop", "batchcam"),
                "grad_cam_over_cam": self.ratio("grad_cam", "batchcam"),
            },
            "max_abs_diff_vs_hook_loop": self.max_abs_diff_vs_hook_loop,
        }


class PerImageHookGradCam:
    """The usual way to get Grad-CAMs: a forward hook keeps the layer's output, one backward per image.

    Written out here (not imported from the library or its tests) so that the baseline is exactly
    the code a user would write without Batch-CAM.
    """

    def __init__(self, model: nn.Module, layer: str) -> None:
        self.model = model
        self.module = dict(model.named_modules())[layer]

    def __call__(self, images: torch.Tensor, targets: Sequence[int]) -> torch.Tensor:
        captured: list[torch.Tensor] = []

        def keep(_module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
            output.retain_grad()
            captured.append(output)

        handle = self.module.register_forward_hook(keep)
        try:
            maps = [self._one(images[i : i + 1], target, captured) for i, target in enumerate(targets)]
        finally:
            handle.remove()
            self.model.zero_grad(set_to_none=True)  # leave no parameter gradients behind
        return torch.cat(maps)

    def _one(self, image: torch.Tensor, target: int, captured: list[torch.Tensor]) -> torch.Tensor:
        captured.clear()
        self.model.zero_grad(set_to_none=True)
        logits = self.model(image)
        logits[0, target].backward()
        activations = captured[0]
        assert activations.grad is not None
        with torch.no_grad():
            weights = activations.grad.mean(dim=(2, 3), keepdim=True)
            raw = (weights * activations).sum(dim=1, keepdim=True).clamp(min=0)
            cam = F.interpolate(raw, size=image.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
            low, high = cam.amin(), cam.amax()
            return (cam - low) / (high - low + NORMALIZE_EPS)


def parse_options(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", choices=MODEL_NAMES, default=["simple_cnn", "resnet18"])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 64, 256])
    parser.add_argument(
        "--hook-images-cpu",
        type=int,
        default=None,
        help="on CPU, time the hook loop on this many images of a larger batch and scale per image "
        "(default 64, 16 with --quick; 0 = always the whole batch)",
    )
    add_common_arguments(parser, TimingPolicy(warmup=2, min_repeats=3, min_time_s=1.0))
    args = parser.parse_args(argv)
    common = common_options(args)
    hook_images = args.hook_images_cpu if args.hook_images_cpu is not None else (16 if args.quick else 64)
    return Options(
        models=tuple(args.models),
        batches=tuple(args.batches),
        devices=common.devices,
        policy=common.policy,
        hook_images_cpu=hook_images,
        quick=common.quick,
        json_path=common.json_path,
    )


def eval_model(name: str, device: torch.device) -> nn.Module:
    torch.manual_seed(0)  # the same weights on every device
    return build(name, num_classes=NUM_CLASSES).eval().to(device)


def case_inputs(batch: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(batch)
    images = torch.rand(batch, *IMAGE_SHAPE, generator=generator)
    targets = torch.randint(0, NUM_CLASSES, (batch,), generator=generator)
    return images.to(device), targets.to(device)


def time_forward(model: nn.Module, images: torch.Tensor, policy: TimingPolicy) -> MethodResult:
    def forward() -> torch.Tensor:
        with torch.inference_mode():
            return model(images)

    return MethodResult(measure(forward, images.device, policy), len(images), len(images))


def time_batchcam(
    extractor: CamExtractor, images: torch.Tensor, targets: torch.Tensor, policy: TimingPolicy
) -> MethodResult:
    timing = measure(lambda: extractor(images, targets).maps, images.device, policy)
    return MethodResult(timing, len(images), len(images))


def time_hook_loop(
    hook_cam: PerImageHookGradCam,
    images: torch.Tensor,
    targets: Sequence[int],
    policy: TimingPolicy,
    max_images: int,
) -> MethodResult:
    timed = len(images) if max_images <= 0 else min(len(images), max_images)
    timing = measure(lambda: hook_cam(images[:timed], targets[:timed]), images.device, policy)
    return MethodResult(timing, len(images), timed)


def time_grad_cam(
    model: nn.Module, layer: str, images: torch.Tensor, targets: Sequence[int], policy: TimingPolicy
) -> MethodResult | None:
    try:
        from pytorch_grad_cam import GradCAM
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    except ImportError:
        return None
    # GradCAM keeps its hooks registered on the model it is given: give it a copy, so that the
    # other methods' timings never run its hooks (which copy every activation to the CPU).
    own_model = copy.deepcopy(model)
    target_layer = dict(own_model.named_modules())[layer]
    output_targets = [ClassifierOutputTarget(target) for target in targets]
    with GradCAM(model=own_model, target_layers=[target_layer]) as cam:  # built outside the timing
        timing = measure(lambda: cam(input_tensor=images, targets=output_targets), images.device, policy)
    return MethodResult(timing, len(images), len(images))


def max_abs_difference(
    extractor: CamExtractor, hook_cam: PerImageHookGradCam, images: torch.Tensor, targets: torch.Tensor
) -> float:
    """Both baselines must compute the same maps, or the speed comparison means nothing."""
    count = min(AGREEMENT_IMAGES, len(images))
    ours = extractor(images[:count], targets[:count]).maps
    theirs = hook_cam(images[:count], targets[:count].tolist())
    return float((ours - theirs).abs().max())


def run_case(
    case: Case,
    model: nn.Module,
    extractor: CamExtractor,
    hook_cam: PerImageHookGradCam,
    options: Options,
) -> CaseResult:
    device = torch.device(case.device)
    images, targets = case_inputs(case.batch, device)
    target_list = targets.tolist()  # Python ints up front: no device sync inside the loops
    policy = options.policy
    hook_images = options.hook_images_cpu if device.type == "cpu" else 0
    methods: dict[str, MethodResult] = {
        "forward": time_forward(model, images, policy),
        "batchcam": time_batchcam(extractor, images, targets, policy),
        "hook_loop": time_hook_loop(hook_cam, images, target_list, policy, hook_images),
    }
    grad_cam_result = time_grad_cam(model, extractor.layer, images, target_list, policy)
    if grad_cam_result is not None:
        methods["grad_cam"] = grad_cam_result
    difference = max_abs_difference(extractor, hook_cam, images, targets)
    return CaseResult(case, methods, difference)


def run_all(options: Options, report: Callable[[str], None]) -> list[CaseResult]:
    results: list[CaseResult] = []
    for device_name in options.devices:
        for model_name in options.models:
            model = eval_model(model_name, torch.device(device_name))
            extractor = CamExtractor(model)  # built once per model, as an application would
            hook_cam = PerImageHookGradCam(model, extractor.layer)
            for batch in options.batches:
                case = Case(model_name, batch, device_name)
                result = run_case(case, model, extractor, hook_cam, options)
                results.append(result)
                report(progress_line(result))
    return results


def progress_line(result: CaseResult) -> str:
    rates = ", ".join(f"{name} {m.images_per_s:,.0f} img/s" for name, m in result.methods.items())
    case = result.case
    return f"done {case.model_name} batch {case.batch} on {case.device}: {rates}"


def format_rate(result: MethodResult | None) -> str:
    if result is None:
        return "n/a"
    rate = result.images_per_s
    text = f"{rate:,.1f}" if rate < 100 else f"{rate:,.0f}"
    return text + ("*" if result.extrapolated else "")


def format_ratio(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{ratio:.2f}×"


def results_table(results: Sequence[CaseResult]) -> str:
    headers = [
        "model",
        "batch",
        "device",
        *(METHOD_LABELS[m] for m in METHODS),
        "CAM ÷ forward",
        "hook loop ÷ CAM",
        "grad-cam ÷ CAM",
    ]
    rows = [
        [
            r.case.model_name,
            str(r.case.batch),
            r.case.device,
            *(format_rate(r.methods.get(m)) for m in METHODS),
            format_ratio(r.ratio("batchcam", "forward")),
            format_ratio(r.ratio("hook_loop", "batchcam")),
            format_ratio(r.ratio("grad_cam", "batchcam")),
        ]
        for r in results
    ]
    return markdown_table(headers, rows)


def footnotes(results: Sequence[CaseResult], options: Options) -> list[str]:
    notes = [
        "Ratios are seconds per batch of one method over another, both measured in this run "
        "(> 1: the first is slower). All methods: fp32, eval mode, same inputs and target classes.",
    ]
    extrapolated = sorted(
        {r.case.batch for r in results if "hook_loop" in r.methods and r.methods["hook_loop"].extrapolated}
    )
    if extrapolated:
        notes.append(
            f"* hook loop on CPU timed on the first {options.hook_images_cpu} images of batch "
            f"{', '.join(map(str, extrapolated))} and scaled per image (its cost is linear in images)."
        )
    if any("grad_cam" not in r.methods for r in results):
        notes.append("grad-cam n/a: package `grad-cam` (import pytorch_grad_cam) is not installed.")
    worst = max((r.max_abs_diff_vs_hook_loop for r in results), default=0.0)
    notes.append(
        f"Batch-CAM vs hook loop, max |Δ| over the first {AGREEMENT_IMAGES} images of every case: "
        f"{worst:.1e} (same maps, so the same work)."
    )
    return notes


def describe_policy(options: Options) -> str:
    policy = options.policy
    text = (
        f"Timing: {policy.warmup} warm-up call(s), then at least {policy.min_repeats} timed call(s) and "
        f"{policy.min_time_s:g} s per method; the median is reported."
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
    for note in footnotes(results, options):
        print(note)
    if options.json_path is not None:
        write_json(
            options.json_path,
            machine,
            {
                "models": options.models,
                "batches": options.batches,
                "devices": options.devices,
                "policy": asdict(options.policy),
                "quick": options.quick,
                "hook_images_cpu": options.hook_images_cpu,
            },
            [r.to_dict() for r in results],
        )


if __name__ == "__main__":
    main()
