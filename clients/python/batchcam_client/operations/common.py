"""Helpers every operation uses: ids in paths, JSON parsing into a model, list parameters."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter

M = TypeVar("M", bound=BaseModel)
Id = uuid.UUID | str
MAX_PAGE = 100  # the service's largest page


def segment(value: Id | int) -> str:
    """A path segment: ids are UUIDs or names, so anything else is refused before it is sent."""
    text = str(value)
    if not text or "/" in text or text in (".", ".."):
        raise ValueError(f"not an id: {text!r}")
    return text


def parsed(model: type[M]) -> Callable[[httpx.Response], M]:
    def parse(response: httpx.Response) -> M:
        return model.model_validate_json(response.content)

    return parse


def parsed_json(response: httpx.Response) -> dict[str, Any]:
    return TypeAdapter(dict[str, Any]).validate_json(response.content)


def page_params(limit: int, **filters: Any) -> dict[str, Any]:
    params = {name: value for name, value in filters.items() if value not in (None, [], ())}
    return {**params, "limit": max(1, min(limit, MAX_PAGE))}
