"""An explanation row as the API shows it: per-image results with class names and heatmap links;
in lists, a summary without them.

The worker stores per item either a result (``predicted``, ``probabilities``, ``target``, distances,
and where its maps are) or an ``error``; see ``worker.explain.runner``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row

from api.explanations.schemas import (
    ExplanationFailure,
    ExplanationLinks,
    ExplanationResource,
    ExplanationSummary,
)
from api.models.views import model_path
from persistence.models import Explanation
from persistence.states import TERMINAL_STATES, FailureReason, JobState

EXPLANATIONS_PATH = "/v1/explanations"


def explanation_path(explanation_id: uuid.UUID) -> str:
    return f"{EXPLANATIONS_PATH}/{explanation_id}"


def heatmap_path(explanation_id: uuid.UUID, index: int, suffix: str) -> str:
    return f"{explanation_path(explanation_id)}/heatmaps/{index}.{suffix}"


# What a list shows, read column by column: neither the per-image results nor the request's inputs
# (up to max_images entries each) leave the database for a page of summaries.
SUMMARY_COLUMNS = (
    Explanation.id,
    Explanation.model_id,
    Explanation.state,
    Explanation.request["method"].as_string().label("method"),
    Explanation.request["count"].as_integer().label("count"),
    Explanation.request["metrics"].label("metrics"),  # a short JSON array, or null for older rows
    Explanation.attempt,
    Explanation.failure_reason,
    Explanation.failure_message,
    Explanation.created_at,
    Explanation.finished_at,
)


@dataclass(frozen=True)
class ExplanationHead:
    """What a summary shows: from a loaded row, or from a row of ``SUMMARY_COLUMNS``."""

    id: uuid.UUID
    model_id: uuid.UUID
    state: str
    method: str
    count: int
    metrics: list[str] | None
    attempt: int
    failure_reason: str | None
    failure_message: str | None
    created_at: datetime
    finished_at: datetime | None

    @classmethod
    def of(cls, explanation: Explanation) -> ExplanationHead:
        return cls(
            id=explanation.id,
            model_id=explanation.model_id,
            state=explanation.state,
            method=explanation.request["method"],
            count=int(explanation.request["count"]),
            metrics=explanation.request.get("metrics"),
            attempt=explanation.attempt,
            failure_reason=explanation.failure_reason,
            failure_message=explanation.failure_message,
            created_at=explanation.created_at,
            finished_at=explanation.finished_at,
        )

    @classmethod
    def from_row(cls, row: Row[Any]) -> ExplanationHead:
        return cls(**row._mapping)


def explanation_summary(head: ExplanationHead) -> ExplanationSummary:
    return ExplanationSummary(
        id=head.id,
        model_id=head.model_id,
        state=JobState(head.state),
        terminal=head.state in TERMINAL_STATES,
        method=head.method,
        count=head.count,
        metrics=list(head.metrics or []),
        failure=explanation_failure(head.failure_reason, head.failure_message),
        attempt=head.attempt,
        created_at=head.created_at,
        finished_at=head.finished_at,
        links=ExplanationLinks(explanation=explanation_path(head.id), model=model_path(head.model_id)),
    )


def explanation_resource(explanation: Explanation, class_names: Sequence[str]) -> ExplanationResource:
    results: list[dict[str, Any]] = explanation.results or []
    items = [explanation_item(explanation.id, class_names, result) for result in results]
    # Items are plain dicts validated in one call: cheaper than a model constructor per item and nested
    # field for up to max_images items.
    return ExplanationResource.model_validate(
        {
            **dict(explanation_summary(ExplanationHead.of(explanation))),
            "failed_items": sum(1 for item in items if "error" in item),
            "items": items,
        }
    )


def explanation_item(
    explanation_id: uuid.UUID, class_names: Sequence[str], result: dict[str, Any]
) -> dict[str, Any]:
    """One ``ExplanationItem``'s fields, from what the worker stored for the image."""
    index = int(result["index"])
    if "error" in result:
        return {"index": index, "source": result["source"], "error": result["error"]}
    predicted = int(result["predicted"])
    probabilities = [float(p) for p in result["probabilities"]]
    label = result.get("true_label")
    overlay = heatmap_path(explanation_id, index, "png")
    return {
        "index": index,
        "source": result["source"],
        "predicted": class_ref(class_names, predicted),
        "confidence": probabilities[predicted],
        "probabilities": probabilities,
        "target": class_ref(class_names, int(result["target"])),
        "true_label": None if label is None else class_ref(class_names, int(label)),
        "distance_to_predicted": result["distance_to_predicted"],
        "distance_to_target": result["distance_to_target"],
        "distance_to_true": result.get("distance_to_true"),
        "faithfulness": result.get("faithfulness") or None,
        "links": {
            "overlay": overlay,
            "raw": overlay + "?style=raw",
            "array": heatmap_path(explanation_id, index, "npy"),
        },
    }


def class_ref(class_names: Sequence[str], index: int) -> dict[str, Any]:
    """A ``ClassRef``'s fields. A dataset label may lie outside a model's classes (explaining one
    dataset with another's model): its name is then the index."""
    name = class_names[index] if 0 <= index < len(class_names) else str(index)
    return {"index": index, "name": name}


def explanation_failure(failure_reason: str | None, message: str | None) -> ExplanationFailure | None:
    if failure_reason is None:
        return None
    try:
        reason = FailureReason(failure_reason)
    except ValueError:  # a reason outside the published vocabulary is a bug of ours
        reason = FailureReason.INTERNAL_ERROR
    return ExplanationFailure(reason=reason, message=message)
