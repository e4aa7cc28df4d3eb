"""What generated clients need from the OpenAPI document beyond what FastAPI writes.

- Short, stable operation ids: the route function's name (``submit_job``), not FastAPI's default
  (``submit_job_v1_jobs_post``), which also named request-body schemas after the path.
- ``x-enum-varnames`` on every string enum, so names that differ only in punctuation (``gradcam``,
  ``gradcam++``) become distinct identifiers (``GRADCAM``, ``GRADCAM_PLUS_PLUS``); the wire values
  stay as they are.
- ``If-None-Match`` declared on every operation that can answer 304.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi.routing import APIRoute

IF_NONE_MATCH = {
    "name": "If-None-Match",
    "in": "header",
    "required": False,
    "description": "ETags from an earlier answer: 304 without a body if one is still current.",
    "schema": {"type": "string"},
}


def operation_id(route: APIRoute) -> str:
    """FastAPI's ``generate_unique_id_function``: the route function's name."""
    return route.name


def enum_variable_name(value: str) -> str:
    """``gradcam++`` → ``GRADCAM_PLUS_PLUS``, ``global-mean`` → ``GLOBAL_MEAN``."""
    spelled = value.replace("+", "_plus_")
    return re.sub(r"[^0-9A-Za-z]+", "_", spelled).strip("_").upper() or "EMPTY"


def name_enum_values(node: Any) -> None:
    """Adds ``x-enum-varnames`` to every string enum below ``node`` (in place)."""
    if isinstance(node, dict):
        values = node.get("enum")
        if isinstance(values, list) and values and all(isinstance(v, str) for v in values):
            node.setdefault("x-enum-varnames", [enum_variable_name(value) for value in values])
        for child in node.values():
            name_enum_values(child)
    elif isinstance(node, list):
        for child in node:
            name_enum_values(child)


def declare_conditional_requests(document: dict[str, Any]) -> None:
    """``If-None-Match`` on every operation with a 304 response (in place)."""
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            if "304" not in operation.get("responses", {}):
                continue
            parameters = operation.setdefault("parameters", [])
            if not any(parameter.get("name") == IF_NONE_MATCH["name"] for parameter in parameters):
                parameters.append(dict(IF_NONE_MATCH))


def for_generated_clients(document: dict[str, Any]) -> dict[str, Any]:
    name_enum_values(document)
    declare_conditional_requests(document)
    return document
