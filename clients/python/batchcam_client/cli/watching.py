"""Following a job in the terminal: a tqdm bar with the epoch, the service's ETA and the latest metrics.

Ctrl-C stops watching, never the job: it says how to reattach, and exits 130.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import typer
from tqdm import tqdm

from batchcam_client import Client, Job, JobEvent

STEPS = 1000  # the bar counts thousandths of the run (the service reports a fraction)
SHOWN_METRICS = 3


@dataclass
class Status:
    """What the bar's text shows: from live ``progress`` events, and from stored ``epoch`` events
    (all a replay of a finished job has)."""

    epochs: int
    fraction: float = 0.0
    epoch: str | None = None
    eta: str | None = None
    loss: str | None = None
    metrics: dict[str, str] = field(default_factory=dict)

    def seen(self, event: JobEvent) -> None:
        progress = event.progress
        if progress is not None:
            self.fraction = progress.fraction or self.fraction
            self.epoch = f"epoch {progress.epoch}/{progress.epochs or self.epochs}"
            self.eta = None if progress.eta_seconds is None else f"eta {progress.eta_seconds:.0f}s"
            self.loss = None if progress.loss is None else f"loss {progress.loss:.4g}"
        elif event.type == "epoch":
            done = int(event.data.get("epoch") or 0)
            self.fraction = max(self.fraction, done / max(self.epochs, 1))
            self.epoch = f"epoch {done}/{self.epochs}"
            self.metrics = metric_texts(event.data.get("metrics") or {})

    def text(self) -> str:
        parts = [part for part in (self.epoch, self.eta, self.loss) if part]
        return ", ".join(parts + [f"{name} {value}" for name, value in self.metrics.items()])


def watch(client: Client, job: Job) -> Job:
    """The job once it has ended, drawn while it runs; Ctrl-C stops watching, never the job."""
    try:
        return _draw_until_ended(client, job)
    except KeyboardInterrupt:  # wherever it lands, the bar included: the job is known, say how to reattach
        reattach = f"batchcam-client jobs watch {job.id}"
        typer.echo(f"\nstopped watching; job {job.id} keeps running. Reattach with: {reattach}", err=True)
        raise typer.Exit(130) from None


def _draw_until_ended(client: Client, job: Job) -> Job:
    status = Status(epochs=job.spec.epochs)
    with tqdm(total=STEPS, desc=f"job {str(job.id)[:8]} {job.state}", unit="‰", file=sys.stderr) as bar:

        def on_event(event: JobEvent) -> None:
            if event.state is not None:
                bar.set_description(f"job {str(job.id)[:8]} {event.state}")
            status.seen(event)
            bar.update(round(status.fraction * STEPS) - bar.n)
            bar.set_postfix_str(status.text())

        ended = client.jobs.wait(job.id, on_event=on_event)
        if ended.state == "succeeded":
            bar.update(STEPS - bar.n)
    return ended


def metric_texts(metrics: dict[str, object]) -> dict[str, str]:
    """A few of an epoch's numbers (accuracies first), short enough for a bar."""
    numbers = {name: value for name, value in metrics.items() if isinstance(value, int | float)}
    ordered = sorted(numbers, key=lambda name: ("acc" not in name, name))[:SHOWN_METRICS]
    return {name: f"{numbers[name]:.4g}" for name in ordered}
