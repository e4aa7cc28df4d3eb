"""``batchcam-client``: the service from a terminal. Errors are one ``error: code: detail`` line; exit
code 2 for bad input (a 4xx, a bad option or file), 1 for the service's or the network's failures."""

from __future__ import annotations

import json

import typer
from pydantic import ValidationError

from batchcam_client.cli import datasets, jobs, models
from batchcam_client.cli.explain import explain
from batchcam_client.cli.output import BAD_INPUT, FAILURE, fail
from batchcam_client.errors import BatchCamError, ClientError, ConfigurationError

app = typer.Typer(
    help="Batch-CAM service client (BATCHCAM_URL, BATCHCAM_API_KEY).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(jobs.app, name="jobs")
app.add_typer(models.app, name="models")
app.add_typer(datasets.app, name="datasets")
app.command(help="Heatmaps of local images by a model.")(explain)


def main() -> None:
    try:
        app()
    except (ClientError, ConfigurationError) as error:
        raise SystemExit(exit_code(fail(str(error), BAD_INPUT))) from None
    except BatchCamError as error:
        raise SystemExit(exit_code(fail(str(error), FAILURE))) from None
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise SystemExit(exit_code(fail(f"invalid_input: {problems}", BAD_INPUT))) from None
    except (OSError, ValueError, json.JSONDecodeError) as error:
        raise SystemExit(exit_code(fail(f"invalid_input: {error}", BAD_INPUT))) from None
    except KeyboardInterrupt:  # outside a watch (which says how to reattach): no traceback either
        raise SystemExit(130) from None


def exit_code(exit_: typer.Exit) -> int:
    return exit_.exit_code
