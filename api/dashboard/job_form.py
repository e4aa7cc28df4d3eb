"""The new-job form, described from the JSON API's own submission model (``JobSubmission``): every
field, its choices, bounds, default and help text come from there, so the form cannot drift from
what the API accepts. Values arrive as text; they are typed here and validated by the API's path."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import FormData

from api.jobs.schemas import JobSubmission

# Shown first; the rest of the spec sits under "More options".
ESSENTIAL_FIELDS = ("dataset", "model", "mode", "metric", "lambda_prototype", "lambda_batchcam", "epochs")


@dataclass(frozen=True)
class FormField:
    name: str
    label: str
    kind: str  # select | integer | number | text
    help: str
    default: Any
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    optional: bool = False  # empty means "unset" (the API's null)

    @property
    def step(self) -> str:
        return "1" if self.kind == "integer" else "any"


def submission_fields() -> list[FormField]:
    schema = JobSubmission.model_json_schema()
    return [form_field(name, spec) for name, spec in schema["properties"].items()]


def form_field(name: str, spec: Mapping[str, Any]) -> FormField:
    variants = spec.get("anyOf", [spec])
    types = {variant.get("type") for variant in variants}
    kind = (
        "select"
        if "enum" in spec
        else ("integer" if "integer" in types else "number" if "number" in types else "text")
    )
    return FormField(
        name=name,
        label=name.replace("_", " ").replace("lambda", "λ"),
        kind=kind,
        help=spec.get("description", ""),
        default=spec.get("default"),
        choices=tuple(spec.get("enum", ())),
        minimum=spec.get("minimum"),
        maximum=spec.get("maximum"),
        optional="null" in types,
    )


def typed_values(fields: list[FormField], form: FormData) -> tuple[dict[str, Any], dict[str, str]]:
    """The submission's JSON-typed values, and what was typed (to show the form again as it was).

    A number that does not parse is passed on as text, so the API's validation names the field."""
    values: dict[str, Any] = {}
    entered: dict[str, str] = {}
    for field in fields:
        raw = form.get(field.name)
        if not isinstance(raw, str):
            continue
        entered[field.name] = raw
        text = raw.strip()
        if text == "" and field.optional:
            values[field.name] = None
        elif field.kind == "integer":
            values[field.name] = int(text) if re.fullmatch(r"[+-]?\d+", text) else text
        elif field.kind == "number":
            values[field.name] = parse_number(text)
        else:
            values[field.name] = text
    return values, entered


def parse_number(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text


def field_of_message(fields: list[FormField], message: str) -> str | None:
    """The form field a library error is about: the first field name it mentions (TrainConfig's
    messages start from the option's name, as the command line shows them)."""
    found = [
        (match.start(), field.name) for field in fields if (match := re.search(rf"\b{field.name}\b", message))
    ]
    return min(found)[1] if found else None
