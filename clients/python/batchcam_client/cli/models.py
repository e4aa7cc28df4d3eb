"""``batchcam-client models …``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from batchcam_client.cli.options import ApiKey, Json, Url, connect
from batchcam_client.cli.output import show

app = typer.Typer(help="Trained models: get, download.", no_args_is_help=True)


@app.command()
def get(model_id: str, url: Url = None, api_key: ApiKey = None, as_json: Json = False) -> None:
    with connect(url, api_key) as client:
        model = client.models.get(model_id)
    show(
        model,
        as_json,
        [
            ("id", model.id),
            ("architecture", model.architecture),
            ("input", f"{model.input.channels}×{model.input.height}×{model.input.width}"),
            ("classes", ", ".join(c.name for c in model.classes)),
            ("accuracy", model.summary.accuracy),
        ],
    )


@app.command()
def download(
    model_id: str,
    out: Annotated[Path, typer.Option(help="Folder to write model.safetensors and report.json into.")],
    url: Url = None,
    api_key: ApiKey = None,
) -> None:
    """The weights (safetensors) and the report."""
    out.mkdir(parents=True, exist_ok=True)
    with connect(url, api_key) as client:
        weights = client.models.download_weights(model_id, out / "model.safetensors")
        report = out / "report.json"
        report.write_text(json.dumps(client.models.report(model_id), indent=2))
    typer.echo(f"wrote {weights} and {report}")
