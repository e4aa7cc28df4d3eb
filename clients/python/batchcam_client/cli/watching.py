"""Following a job in the terminal: a tqdm bar with the epoch, the service's ETA and the latest metrics.

Ctrl-C stops watching, never the job: it says how to reattach, and exits 130.
"""

from __future__ import annotations

import sys

import typer
from tqdm import tqdm

from batchcam_client import Client, Job, JobEvent

STEPS = 1000  # the bar counts thousandths of the run (the service reports a fraction)
SHOWN_METRICS = 3


def watch(client: Client, job: Job) -> Job:
    """The job once it has ended, drawn while it runs."""
    latest: dict[str, str] = {}
    with tqdm(total=STEPS, desc=f"job {str(job.id)[:8]} {job.state}", unit="‰", file=sys.stderr) as bar:

        def on_event(event: JobEvent) -> None:
            if event.state is not None:
                bar.set_description(f"job {str(job.id)[:8]} {event.state}")
            elif event.type == "epoch":
                latest.update(metric_texts(event.data.get("metrics") or {}))
            progress = event.progress
            if progress is not None:
                bar.update(round((progress.fraction or 0.0) * STEPS) - bar.n)
                parts = [f"epoch {progress.epoch}/{progress.epochs}"]
                if progress.eta_seconds is not None:
                    parts.append(f"eta {progress.eta_seconds:.0f}s")
                if progress.loss is not None:
                    parts.append(f"loss {progress.loss:.4g}")
                bar.set_postfix_str(", ".join(parts + [f"{k} {v}" for k, v in latest.items()]))
            bar.refresh()

        try:
            ended = client.jobs.wait(job.id, on_event=on_event)
        except KeyboardInterrupt:
            bar.close()
            reattach = f"batchcam-client jobs watch {job.id}"
            typer.echo(f"stopped watching; job {job.id} keeps running. Reattach with: {reattach}", err=True)
            raise typer.Exit(130) from None
        if ended.state == "succeeded":
            bar.update(STEPS - bar.n)
    return ended


def metric_texts(metrics: dict[str, object]) -> dict[str, str]:
    """A few of an epoch's numbers (accuracies first), short enough for a bar."""
    numbers = {name: value for name, value in metrics.items() if isinstance(value, int | float)}
    ordered = sorted(numbers, key=lambda name: ("acc" not in name, name))[:SHOWN_METRICS]
    return {name: f"{numbers[name]:.4g}" for name in ordered}
