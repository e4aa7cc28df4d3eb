"""``batchcam-client datasets …``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from tqdm import tqdm

from batchcam_client.cli.options import ApiKey, Json, Url, connect
from batchcam_client.cli.output import print_json

app = typer.Typer(help="Datasets: upload.", no_args_is_help=True)


@app.command()
def upload(
    file: Annotated[Path, typer.Argument(help="A .npz or a .zip of one folder per class.")],
    name: Annotated[str | None, typer.Option(help="Defaults to the file name.")] = None,
    url: Url = None,
    api_key: ApiKey = None,
    as_json: Json = False,
) -> None:
    with connect(url, api_key) as client:
        size = file.stat().st_size
        with tqdm(total=size, unit="B", unit_scale=True, desc=file.name, file=sys.stderr) as bar:
            dataset = client.datasets.upload(
                file, name=name, progress=lambda sent, _: bar.update(sent - bar.n)
            )
    if as_json:
        print_json(dataset)
    else:
        typer.echo(f"dataset {dataset.id} ({dataset.name})")
