"""``batchcam-client jobs …``."""

from __future__ import annotations

import json
from itertools import islice
from pathlib import Path
from typing import Annotated, Any

import typer

from batchcam_client import Job, JobSpec, JobState
from batchcam_client.cli.options import ApiKey, Json, Url, connect
from batchcam_client.cli.output import FAILURE, print_json, print_rows, show
from batchcam_client.cli.watching import watch

app = typer.Typer(help="Training jobs: submit, list, get, watch, cancel.", no_args_is_help=True)


def spec_of(spec_file: Path | None, settings: list[str], shortcuts: dict[str, Any]) -> JobSpec:
    """A spec from a JSON file, then ``--set name=value`` (JSON values, else text), then shortcuts."""
    options: dict[str, Any] = json.loads(spec_file.read_text()) if spec_file else {}
    for setting in settings:
        name, equals, text = setting.partition("=")
        if not equals:
            raise ValueError(f"--set takes name=value, not {setting!r}")
        try:
            options[name.strip()] = json.loads(text)
        except json.JSONDecodeError:
            options[name.strip()] = text
    options |= {name: value for name, value in shortcuts.items() if value is not None}
    return JobSpec.model_validate(options)


def ended(job: Job) -> None:
    """Say how the job ended; anything but success exits 1."""
    if job.state == JobState.SUCCEEDED:
        typer.echo(f"job {job.id} succeeded: model {job.model_id}")
        return
    why = f": {job.failure.reason}: {job.failure.message}" if job.failure else ""
    typer.echo(f"job {job.id} {job.state}{why}", err=True)
    raise typer.Exit(FAILURE)


@app.command()
def submit(
    url: Url = None,
    api_key: ApiKey = None,
    spec: Annotated[Path | None, typer.Option(help="A JSON file with the job's spec.")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="name=value, repeatable.")] = None,
    dataset: Annotated[str | None, typer.Option(help="Built-in name or upload id.")] = None,
    model: Annotated[str | None, typer.Option(help="Architecture.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Epochs.")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the job with a progress bar.")] = False,
    as_json: Json = False,
) -> None:
    """Submit a training job (options as `batchcam train`'s, through --spec and --set)."""
    job_spec = spec_of(spec, set_ or [], {"dataset": dataset, "model": model, "epochs": epochs})
    with connect(url, api_key) as client:
        job = client.jobs.submit(job_spec)
        if as_json and not wait:
            print_json(job)
            return
        typer.echo(f"submitted job {job.id} ({job.state})")
        if wait:
            ended(watch(client, job))


@app.command("list")
def list_jobs(
    url: Url = None,
    api_key: ApiKey = None,
    state: Annotated[list[str] | None, typer.Option(help="Only these states (repeatable).")] = None,
    limit: Annotated[int, typer.Option(help="At most this many jobs, newest first.")] = 20,
    as_json: Json = False,
) -> None:
    with connect(url, api_key) as client:
        jobs = list(islice(client.jobs.list(state=state, page_size=min(limit, 100)), limit))
    if as_json:
        print_json(jobs)
        return
    rows = [(j.id, j.state, j.progress.epoch, j.spec.dataset, j.spec.model, j.created_at) for j in jobs]
    print_rows(("id", "state", "epoch", "dataset", "model", "created"), rows)


@app.command()
def get(job_id: str, url: Url = None, api_key: ApiKey = None, as_json: Json = False) -> None:
    with connect(url, api_key) as client:
        job = client.jobs.get(job_id)
    progress = job.progress
    show(
        job,
        as_json,
        [
            ("id", job.id),
            ("state", job.state),
            ("epoch", f"{progress.epoch}/{progress.epochs}" if progress.epoch else None),
            ("eta_seconds", progress.eta_seconds),
            ("latest_metrics", json.dumps(job.latest_metrics) if job.latest_metrics else None),
            ("failure", f"{job.failure.reason}: {job.failure.message}" if job.failure else None),
            ("model_id", job.model_id),
        ],
    )


@app.command("watch")
def watch_job(job_id: str, url: Url = None, api_key: ApiKey = None) -> None:
    """Follow a job until it ends (Ctrl-C stops watching, not the job)."""
    with connect(url, api_key) as client:
        ended(watch(client, client.jobs.get(job_id)))


@app.command()
def cancel(job_id: str, url: Url = None, api_key: ApiKey = None) -> None:
    with connect(url, api_key) as client:
        job = client.jobs.cancel(job_id)
    typer.echo(f"job {job.id} {job.state}")
