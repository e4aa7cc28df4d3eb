"""An explanation row as the API shows it: per-image results with class names and heatmap links.

The worker stores per item either a result (``predicted``, ``probabilities``, ``target``, distances,
and where its maps are) or an ``error``; see ``worker.explain_runner``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from api.model_views import model_path
from api.schemas.explanations import (
    ExplanationFailure,
    ExplanationItem,
    ExplanationLinks,
    ExplanationResource,
    ItemError,
    ItemLinks,
    ItemSource,
)
from api.schemas.models import ClassRef
from persistence.explanation_states import TERMINAL_EXPLANATION_STATES, ExplanationState
from persistence.job_states import FailureReason
from persistence.models import Explanation

EXPLANATIONS_PATH = "/v1/explanations"


def explanation_path(explanation_id: uuid.UUID) -> str:
    return f"{EXPLANATIONS_PATH}/{explanation_id}"


def heatmap_path(explanation_id: uuid.UUID, index: int, suffix: str) -> str:
    return f"{explanation_path(explanation_id)}/heatmaps/{index}.{suffix}"


def explanation_resource(explanation: Explanation, class_names: Sequence[str]) -> ExplanationResource:
    results: list[dict[str, Any]] = explanation.results or []
    items = [explanation_item(explanation.id, class_names, result) for result in results]
    return ExplanationResource(
        id=explanation.id,
        model_id=explanation.model_id,
        state=ExplanationState(explanation.state),
        terminal=explanation.state in TERMINAL_EXPLANATION_STATES,
        method=explanation.request["method"],
        count=int(explanation.request["count"]),
        failed_items=sum(1 for item in items if item.error is not None),
        items=items,
        failure=explanation_failure(explanation),
        attempt=explanation.attempt,
        created_at=explanation.created_at,
        finished_at=explanation.finished_at,
        links=ExplanationLinks(
            explanation=explanation_path(explanation.id), model=model_path(explanation.model_id)
        ),
    )


def explanation_item(
    explanation_id: uuid.UUID, class_names: Sequence[str], result: dict[str, Any]
) -> ExplanationItem:
    index = int(result["index"])
    source = ItemSource.model_validate(result["source"])
    if "error" in result:
        return ExplanationItem(index=index, source=source, error=ItemError.model_validate(result["error"]))
    predicted = int(result["predicted"])
    probabilities = [float(p) for p in result["probabilities"]]
    label = result.get("true_label")
    return ExplanationItem(
        index=index,
        source=source,
        predicted=class_ref(class_names, predicted),
        confidence=probabilities[predicted],
        probabilities=probabilities,
        target=class_ref(class_names, int(result["target"])),
        true_label=None if label is None else class_ref(class_names, int(label)),
        distance_to_predicted=result["distance_to_predicted"],
        distance_to_target=result["distance_to_target"],
        distance_to_true=result.get("distance_to_true"),
        links=ItemLinks(
            overlay=heatmap_path(explanation_id, index, "png"),
            raw=heatmap_path(explanation_id, index, "png") + "?style=raw",
            array=heatmap_path(explanation_id, index, "npy"),
        ),
    )


def class_ref(class_names: Sequence[str], index: int) -> ClassRef:
    # A dataset label may lie outside a model's classes (explaining one dataset with another's model).
    name = class_names[index] if 0 <= index < len(class_names) else str(index)
    return ClassRef(index=index, name=name)


def explanation_failure(explanation: Explanation) -> ExplanationFailure | None:
    if explanation.failure_reason is None:
        return None
    try:
        reason = FailureReason(explanation.failure_reason)
    except ValueError:  # a reason outside the published vocabulary is a bug of ours
        reason = FailureReason.INTERNAL_ERROR
    return ExplanationFailure(reason=reason, message=explanation.failure_message)
