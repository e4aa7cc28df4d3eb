"""Shared by the benchmarks: which machine produced the numbers, a median-of-repeats timer, output.

Scripts in this folder import it as ``_timing`` (they are run as ``python benchmarks/<script>.py``,
so this folder is on ``sys.path``).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch


@dataclass(frozen=True)
class TimingPolicy:
    """Warm-up calls, then timed calls until both ``min_repeats`` and ``min_time_s`` are reached."""

    warmup: int = 2
    min_repeats: int = 3
    min_time_s: float = 1.0
    max_repeats: int = 200

    @classmethod
    def quick(cls) -> TimingPolicy:
        """Smoke test: checks that everything runs and prints, not that the numbers are stable."""
        return cls(warmup=1, min_repeats=3, min_time_s=0.0, max_repeats=3)


@dataclass(frozen=True)
class Timing:
    """Wall-clock seconds of each timed call (device work included)."""

    samples_s: tuple[float, ...]

    @property
    def median_s(self) -> float:
        return statistics.median(self.samples_s)

    @property
    def repeats(self) -> int:
        return len(self.samples_s)

    def to_dict(self) -> dict[str, Any]:
        return {"median_s": self.median_s, "repeats": self.repeats, "samples_s": list(self.samples_s)}


def add_common_arguments(parser: argparse.ArgumentParser, defaults: TimingPolicy) -> None:
    """Options every benchmark takes: devices, threads, timing policy, ``--quick``, ``--json``."""
    parser.add_argument(
        "--devices",
        nargs="+",
        choices=["cpu", "cuda"],
        default=None,
        help="default: cpu, plus cuda if present",
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch.set_num_threads(N) first (default: torch's choice)"
    )
    parser.add_argument("--warmup", type=int, default=defaults.warmup, help="untimed calls first")
    parser.add_argument("--min-repeats", type=int, default=defaults.min_repeats, help="timed calls, at least")
    parser.add_argument("--min-time", type=float, default=defaults.min_time_s, help="timed seconds, at least")
    parser.add_argument("--quick", action="store_true", help="tiny repeat counts: a smoke test")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write raw results")


@dataclass(frozen=True)
class CommonOptions:
    devices: tuple[str, ...]
    policy: TimingPolicy
    quick: bool
    json_path: Path | None


def common_options(args: argparse.Namespace) -> CommonOptions:
    """Validates the devices and applies ``--threads`` (process-wide, so before any timing)."""
    devices = tuple(args.devices or available_devices())
    check_devices(devices)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    policy = (
        TimingPolicy.quick()
        if args.quick
        else TimingPolicy(warmup=args.warmup, min_repeats=args.min_repeats, min_time_s=args.min_time)
    )
    return CommonOptions(devices=devices, policy=policy, quick=args.quick, json_path=args.json)


def synchronize(device: torch.device) -> None:
    """Wait for queued device work, so that a host-side clock measures it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def measure(call: Callable[[], object], device: torch.device, policy: TimingPolicy) -> Timing:
    """Median-ready samples of ``call()``; each sample is synchronised at both ends."""
    for _ in range(policy.warmup):
        call()
    synchronize(device)
    gc.collect()  # a collection triggered by an earlier case must not land inside this one
    samples: list[float] = []
    while len(samples) < policy.max_repeats and (
        len(samples) < policy.min_repeats or sum(samples) < policy.min_time_s
    ):
        start = time.perf_counter()
        call()
        synchronize(device)
        samples.append(time.perf_counter() - start)
    return Timing(tuple(samples))


@dataclass(frozen=True)
class MachineInfo:
    """Everything needed to tell whose numbers these are and whether the machine was busy."""

    cpu: str
    logical_cores: int
    usable_cores: int
    torch_threads: int
    load_average_1min: float | None
    gpu: str | None
    torch_version: str
    cuda_version: str | None
    python_version: str
    system: str

    def header(self) -> str:
        load = "n/a" if self.load_average_1min is None else f"{self.load_average_1min:.2f}"
        gpu = self.gpu or "none"
        cuda = f", CUDA {self.cuda_version}" if self.gpu and self.cuda_version else ""
        return (
            f"Machine: {self.cpu}; {self.logical_cores} logical cores ({self.usable_cores} usable), "
            f"torch threads {self.torch_threads}, load avg {load} at start; GPU: {gpu}; "
            f"torch {self.torch_version}{cuda}; Python {self.python_version}; {self.system}"
        )


def machine_info() -> MachineInfo:
    has_cuda = torch.cuda.is_available()
    return MachineInfo(
        cpu=cpu_model(),
        logical_cores=os.cpu_count() or 1,
        usable_cores=usable_cores(),
        torch_threads=torch.get_num_threads(),
        load_average_1min=os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        gpu=torch.cuda.get_device_name(0) if has_cuda else None,
        torch_version=torch.__version__,
        cuda_version=torch.version.cuda,
        python_version=platform.python_version(),
        system=platform.platform(terse=True),
    )


def usable_cores() -> int:
    """Cores this process may run on (a container or taskset may allow fewer than exist)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def cpu_model() -> str:
    """The CPU's marketing name (Linux ``/proc/cpuinfo``), else whatever ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def available_devices() -> list[str]:
    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


def check_devices(devices: Sequence[str]) -> None:
    """Refuse before any work starts, rather than after minutes of CPU timings."""
    if "cuda" in devices and not torch.cuda.is_available():
        sys.exit("--devices cuda was requested but torch.cuda.is_available() is False")


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured table; numeric-looking columns are right-aligned."""
    numeric = [all(_looks_numeric(row[i]) for row in rows) if rows else False for i in range(len(headers))]
    align = ["---:" if is_numeric else "---" for is_numeric in numeric]
    lines = [headers, align, *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


def _looks_numeric(cell: str) -> bool:
    stripped = cell.replace(",", "").replace("×", "").replace("*", "").strip()
    try:
        float(stripped)
    except ValueError:
        return stripped in ("", "n/a")
    return True


def write_json(
    path: Path, machine: MachineInfo, options: dict[str, Any], results: list[dict[str, Any]]
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"machine": asdict(machine), "options": options, "results": results}
    path.write_text(json.dumps(payload, indent=2) + "\n")
