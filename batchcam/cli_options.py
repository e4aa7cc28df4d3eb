"""``batchcam train``'s training options, generated from ``TrainConfig``'s fields.

One definition (``batchcam.spec.training``) gives the CLI flags, their help, defaults and choices,
and the API's request schema: an option added there appears in both, with the same text.
"""

from __future__ import annotations

import inspect
import types
from dataclasses import Field, fields
from enum import StrEnum
from typing import Annotated, Any, Union, get_args, get_origin, get_type_hints

import typer

from batchcam.spec.training import TrainConfig, option_choices


def config_parameters() -> list[inspect.Parameter]:
    """One keyword parameter per TrainConfig field, annotated for typer."""
    hints = get_type_hints(TrainConfig)
    return [_parameter(spec, hints[spec.name]) for spec in fields(TrainConfig)]


def config_from_options(options: dict[str, Any], **overrides: Any) -> TrainConfig:
    """The TrainConfig of parsed options (choices arrive as enums); ``overrides`` win."""
    values = {spec.name: _plain(options[spec.name]) for spec in fields(TrainConfig) if spec.name in options}
    return TrainConfig(**(values | overrides))


def _parameter(spec: Field[Any], kind: Any) -> inspect.Parameter:
    flag = "--" + (spec.metadata["cli_name"] or spec.name).replace("_", "-")
    choices = option_choices(spec.name)
    default: Any = spec.default  # every TrainConfig field has one
    annotation: Any = _scalar(kind)
    if choices is not None:
        annotation = StrEnum(_enum_name(spec.name), {value: value for value in choices})  # type: ignore[misc,no-redef]
        default = annotation(default)
    help_text = spec.metadata["help"]
    return inspect.Parameter(
        spec.name,
        inspect.Parameter.KEYWORD_ONLY,
        default=default,
        annotation=Annotated[annotation, typer.Option(flag, help=help_text)],
    )


def _scalar(kind: Any) -> Any:
    """``int``, ``float``, ``str`` or ``X | None`` as typer reads them."""
    if get_origin(kind) in (Union, types.UnionType):
        (inner,) = [arg for arg in get_args(kind) if arg is not type(None)]
        return inner | None
    return kind


def _enum_name(field_name: str) -> str:
    return "".join(part.title() for part in field_name.split("_"))


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, StrEnum) else value
