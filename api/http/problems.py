"""RFC 9457 problem details: the body of every error response."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://batchcam.dev/problems/"


def problem_type(code: str) -> str:
    """The stable ``type`` URI of an error kind."""
    return PROBLEM_TYPE_BASE + code


class FieldError(BaseModel):
    """One offending part of a request (a body field, a query parameter, a header)."""

    location: list[str | int] = Field(description='Where the problem is, e.g. ["body", "epochs"].')
    message: str
    type: str = Field(description="Machine-readable kind of the field error.")


class Problem(BaseModel):
    """An error, as ``application/problem+json`` (RFC 9457). Extra members depend on ``type``."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(
        description="A URI naming the kind of problem; stable, safe to branch on.",
        examples=[problem_type("unknown_model")],
    )
    title: str = Field(description="A short, human-readable summary of the kind of problem.")
    status: int = Field(description="The HTTP status code.")
    detail: str | None = Field(None, description="What went wrong in this occurrence, and what is accepted.")
    instance: str | None = Field(None, description="The request path this problem occurred on.")
    code: str = Field(description="The last segment of ``type``: a short machine-readable error code.")
    request_id: str | None = Field(None, description="Quote this when reporting a problem to the operators.")
    errors: list[FieldError] | None = Field(None, description="The offending fields (validation errors).")


def title_for(code: str) -> str:
    return code.replace("_", " ").capitalize()


def problem_body(
    *,
    status: int,
    code: str,
    detail: str | None,
    instance: str | None,
    request_id: str | None,
    title: str | None = None,
    **extensions: Any,
) -> dict[str, Any]:
    problem = Problem(
        type=problem_type(code),
        title=title or title_for(code),
        status=status,
        detail=detail,
        instance=instance,
        code=code,
        request_id=request_id,
        **extensions,
    )
    return problem.model_dump(mode="json", exclude_none=True)
