"""The misclassified test images of a model's report as a cursor-paginated gallery.

The gallery is frozen with the model, so a page is simply a slice; the cursor is the opaque form of
the position where the next page starts.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from typing import Any

from api.http.errors import ProblemError
from api.http.json_bodies import loads_client_json
from api.http.pages import PageLinks
from api.models.schemas import ClassRef, MisclassifiedItem, MisclassifiedLinks, MisclassifiedPage
from api.models.views import misclassified_artifact, misclassified_image_path, model_path
from persistence.models import Model


def encode_position(position: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"at": position}).encode()).decode().rstrip("=")


def decode_position(cursor: str) -> int:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        position = loads_client_json(base64.urlsafe_b64decode(padded))["at"]
    except (binascii.Error, ValueError, TypeError, KeyError, UnicodeDecodeError):
        position = None
    if not isinstance(position, int) or isinstance(position, bool) or position < 0:
        raise ProblemError(400, "invalid_cursor", "the cursor is not one this API handed out; use links.next")
    return position


def gallery_page(
    model: Model, class_names: Sequence[str], report: Mapping[str, Any], *, after: int, limit: int
) -> MisclassifiedPage:
    recorded: list[dict[str, Any]] = list(report.get("misclassified", []))
    page = recorded[after : after + limit]
    end = after + len(page)
    next_cursor = encode_position(end) if end < len(recorded) else None
    return MisclassifiedPage(
        model_id=model.id,
        total=len(recorded),
        items=[gallery_item(model, class_names, record) for record in page],
        next_cursor=next_cursor,
        links=PageLinks(
            next=f"{model_path(model.id)}/misclassified?limit={limit}&cursor={next_cursor}"
            if next_cursor
            else None
        ),
    )


def gallery_item(model: Model, class_names: Sequence[str], record: Mapping[str, Any]) -> MisclassifiedItem:
    index = int(record["index"])
    has_image = misclassified_artifact(index) in model.artifacts
    return MisclassifiedItem(
        index=index,
        true_label=class_ref(class_names, int(record["true_label"])),
        predicted_label=class_ref(class_names, int(record["predicted_label"])),
        confidence=float(record["confidence"]),
        distance_to_true=dict(record.get("distance_to_true", {})),
        distance_to_predicted=dict(record.get("distance_to_predicted", {})),
        links=MisclassifiedLinks(image=misclassified_image_path(model.id, index) if has_image else None),
    )


def class_ref(class_names: Sequence[str], index: int) -> ClassRef:
    return ClassRef(index=index, name=class_names[index])
