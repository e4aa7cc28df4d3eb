"""How much longer does a training job get when its report measures faithfulness?

Runs ``train_and_report`` (the CLI's and the workers' code path, pictures included) for each job
with ``faithfulness_images`` 0 (no assessment: the baseline) and each size asked for, in one run on
one machine, and prints the job's wall time, the assessment's own seconds and the overhead.

    .venv/bin/python benchmarks/faithfulness_job_overhead.py                      # shapes, default job
    .venv/bin/python benchmarks/faithfulness_job_overhead.py --mnist-dir ../shared/data  # + MNIST
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from _timing import machine_info, markdown_table

from batchcam.pipeline import train_and_report
from batchcam.training import TrainConfig


@dataclass(frozen=True)
class Job:
    label: str
    config: TrainConfig
    data_dir: Path | None = None


def jobs(mnist_dir: Path | None, quick: bool) -> list[Job]:
    default = TrainConfig(device="cpu", precision="fp32")  # the service's default job: shapes, 3 epochs
    listed = [
        Job(
            "shapes, simple_cnn, 3 epochs (the default job)", replace(default, epochs=1) if quick else default
        )
    ]
    if mnist_dir is not None and not quick:
        mnist = replace(default, dataset="mnist", epochs=1, batch_size=256)
        listed.append(Job("MNIST, simple_cnn, 1 epoch, batch 256", mnist, mnist_dir))
    return listed


def run(job: Job, images: int, scratch: Path) -> tuple[float, float]:
    """(job seconds, assessment seconds) for one training job with ``images`` assessed."""
    started = time.perf_counter()
    output = train_and_report(
        replace(job.config, faithfulness_images=images),
        scratch / f"{images}",
        data_dir=job.data_dir,
        download=False,
        cache_dir=scratch / "cache",
    )
    seconds = time.perf_counter() - started
    assert output.report is not None
    section = output.report["faithfulness"]
    return seconds, 0.0 if section is None else float(section["seconds"]["total"])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, nargs="+", default=[64, 256], help="assessment sizes")
    parser.add_argument("--mnist-dir", type=Path, default=None, help="folder holding MNIST/raw (adds a job)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--quick", action="store_true", help="one epoch of shapes: a smoke test")
    options = parser.parse_args()
    if options.threads:
        torch.set_num_threads(options.threads)
    print(machine_info().header())
    print("Timing: one job per row, wall clock of train_and_report (data, training, evaluation, pictures).")
    rows = []
    for job in jobs(options.mnist_dir, options.quick):
        with tempfile.TemporaryDirectory() as folder:
            scratch = Path(folder)
            run(job, 0, scratch / "warm-up")  # data generation/reading and prototype cache warmed once
            baseline, _ = run(job, 0, scratch)
            rows.append([job.label, "0 (off)", f"{baseline:.1f}", "0.0", "—"])
            for images in options.images:
                print(f"{job.label}: {images} images ...", file=sys.stderr)
                seconds, assessing = run(job, images, scratch)
                rows.append(
                    [
                        job.label,
                        str(images),
                        f"{seconds:.1f}",
                        f"{assessing:.1f}",
                        f"{100 * (seconds - baseline) / baseline:+.0f} %",
                    ]
                )
    print(markdown_table(["job", "faithfulness_images", "job s", "assessment s", "overhead"], rows))
    print(
        "Overhead: the job's extra wall time over the same job without the assessment, measured in this "
        "run (it includes drawing faithfulness.png); 'assessment s' is the assessment's own timer."
    )


if __name__ == "__main__":
    main()
