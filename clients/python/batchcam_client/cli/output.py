"""What the CLI prints: resources as JSON or as a short table, and errors as one line."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import typer
from pydantic import BaseModel

BAD_INPUT, FAILURE = 2, 1


def print_json(value: BaseModel | Sequence[BaseModel] | dict[str, Any]) -> None:
    if isinstance(value, BaseModel):
        data: Any = value.model_dump(mode="json")
    elif isinstance(value, dict):
        data = value
    else:
        data = [item.model_dump(mode="json") for item in value]
    typer.echo(json.dumps(data, indent=2))


def show(value: BaseModel, as_json: bool, fields: Sequence[tuple[str, object]]) -> None:
    """One resource: as JSON, or as a two-column table of the fields a person looks at first."""
    if as_json:
        print_json(value)
    else:
        print_rows(("field", "value"), fields)


def print_rows(header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    table = [list(header)] + [["" if cell is None else str(cell) for cell in row] for row in rows]
    widths = [max(len(row[column]) for row in table) for column in range(len(header))]
    for row in table:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def fail(message: str, code: int) -> typer.Exit:
    """Print ``error: …`` on one line (stderr) and return the Exit to raise."""
    sys.stderr.write(f"error: {' '.join(message.split())}\n")
    return typer.Exit(code)
