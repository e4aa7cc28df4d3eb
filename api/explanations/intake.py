"""Reading an explanation request: multipart images, or JSON naming dataset indices.

Uploaded images (PNG or JPEG files, or ``.npz`` files of many images in the dataset upload layout)
are decoded here, with the deployment's upload limits, before anything is stored: a corrupt,
oversized or unsupported file rejects the whole request with a 4xx problem that names the file, and
no row or object is left behind. The body is capped before it is spooled.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request

from api.context import ApiContext
from api.explanations.limits import ExplanationLimits
from api.explanations.schemas import DEFAULT_METHOD, DatasetExplanationRequest
from api.explanations.validation import (
    DatasetSelection,
    ExplanationSubmission,
    UploadedImages,
    check_count,
    check_method,
    check_metrics,
)
from api.http.client_text import storable
from api.http.errors import ProblemError
from api.http.json_bodies import loads_client_json, read_capped_body
from api.http.uploads import BodyTooLargeError, capped_receive, check_declared_length, too_large
from batchcam.errors import DataValidationError
from batchcam.pixels.decoding import decode_image_array
from batchcam.pixels.npz_images import is_npz, read_npz_images
from batchcam.spec.limits import UploadLimits

IMAGES_FIELD = "files"
TARGETS_FIELD = "targets"
METHOD_FIELD = "method"
METRICS_FIELD = "metrics"
MAX_FORM_FIELDS = 8
MAX_FILENAME_LENGTH = 200


async def read_submission(request: Request, context: ApiContext) -> ExplanationSubmission:
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        return await read_multipart(request, context.explanation_limits, context.upload_limits)
    if content_type.startswith("application/json"):
        return await read_json(request, context.explanation_limits)
    raise ProblemError(
        415,
        "unsupported_media_type",
        f"send images as multipart/form-data (field {IMAGES_FIELD!r}), "
        "or dataset indices as application/json",
    )


async def read_json(request: Request, limits: ExplanationLimits) -> ExplanationSubmission:
    body = await read_capped_body(request)
    try:
        parsed = DatasetExplanationRequest.model_validate_json(body)
    except ValidationError as error:
        raise RequestValidationError(
            [{**item, "loc": ("body", *item["loc"])} for item in error.errors(include_input=False)]
        ) from None
    check_count(len(parsed.indices), limits)
    check_method(parsed.method)
    metrics = check_metrics(parsed.metrics)
    return ExplanationSubmission(
        inputs=DatasetSelection(dataset=parsed.dataset, split=parsed.split, indices=parsed.indices),
        targets=parsed.targets,
        method=parsed.method,
        metrics=metrics,
        fingerprint=without_empty_metrics({**parsed.model_dump(mode="json"), "metrics": metrics}),
    )


async def read_multipart(
    request: Request, limits: ExplanationLimits, upload_limits: UploadLimits
) -> ExplanationSubmission:
    check_declared_length(request.headers, limits.max_body_bytes, limits.max_body_bytes)
    form = await read_form(request, limits)
    try:
        files = uploaded_files(form)
        check_count(len(files), limits)
        targets = parse_targets(form.get(TARGETS_FIELD))
        method = parse_method(form.get(METHOD_FIELD))
        metrics = parse_metrics(form.get(METRICS_FIELD))
        images, names, digests = await run_in_threadpool(decode_files, files, upload_limits, limits)
    finally:
        await form.close()
    return ExplanationSubmission(
        inputs=UploadedImages(names=names, images=images),
        targets=targets,
        method=method,
        metrics=metrics,
        fingerprint=without_empty_metrics(
            {"images": digests, "names": names, "targets": targets, "method": method, "metrics": metrics}
        ),
    )


async def read_form(request: Request, limits: ExplanationLimits) -> FormData:
    capped = Request(request.scope, capped_receive(request.receive, limits.max_body_bytes))
    try:
        # One file more than allowed, so that too many files is our own 422 with the limit in it.
        return await capped.form(max_files=limits.max_images + 1, max_fields=MAX_FORM_FIELDS)
    except BodyTooLargeError:
        raise too_large(limits.max_body_bytes) from None
    except HTTPException as error:  # Starlette's answer to a malformed (or too long) multipart body
        if "Too many files" in str(error.detail):
            raise ProblemError(
                422, "too_many_images", f"more than {limits.max_images} images in one request; split them"
            ) from None
        raise ProblemError(
            400, "invalid_multipart", f"the multipart body cannot be read: {error.detail}"
        ) from None


def uploaded_files(form: FormData) -> list[UploadFile]:
    files = [item for item in form.getlist(IMAGES_FIELD) if isinstance(item, UploadFile)]
    if not files:
        raise ProblemError(
            422,
            "missing_file",
            f"the form has no image in a field named {IMAGES_FIELD!r} (repeat it for several images)",
            errors=[{"location": ["body", IMAGES_FIELD], "message": "Field required", "type": "missing"}],
        )
    return files


def parse_targets(value: Any) -> list[int | None] | None:
    if value is None or value == "":
        return None
    try:
        targets = loads_client_json(value) if isinstance(value, str) else None
    except ValueError:  # not JSON, nested too deeply, or a number of more than 4,300 digits
        targets = None
    if not isinstance(targets, list) or not all(
        target is None or (isinstance(target, int) and not isinstance(target, bool)) for target in targets
    ):
        raise ProblemError(
            422,
            "invalid_targets",
            f"{TARGETS_FIELD!r} must be a JSON array of one class index (or null) per image, e.g. [3, null]",
        )
    return targets


def parse_method(value: Any) -> str:
    if value is None or value == "":
        return DEFAULT_METHOD
    if not isinstance(value, str):
        raise ProblemError(422, "invalid_request", f"{METHOD_FIELD!r} must be a text field")
    check_method(value)
    return value


def parse_metrics(value: Any) -> list[str]:
    """A comma-separated list of metric names ("deletion,insertion"); absent or empty: none."""
    if value is None or value == "":
        return []
    if not isinstance(value, str):
        raise ProblemError(422, "invalid_request", f"{METRICS_FIELD!r} must be a text field")
    return check_metrics([name.strip() for name in value.split(",") if name.strip()])


def without_empty_metrics(fingerprint: dict[str, Any]) -> dict[str, Any]:
    """A request without metrics keeps the fingerprint it had before metrics existed, so that an
    Idempotency-Key stored then still matches the same body sent again."""
    return {key: value for key, value in fingerprint.items() if key != "metrics" or value}


def file_name(file: UploadFile) -> str:
    name = storable(file.filename or "").replace("\\", "/").rsplit("/", 1)[-1]  # never a client path
    return name[:MAX_FILENAME_LENGTH]


def decode_files(
    files: list[UploadFile], upload_limits: UploadLimits, limits: ExplanationLimits
) -> tuple[list[np.ndarray], list[str], list[str]]:
    """Each image (a PNG or JPEG file, or each of an .npz file's ``images``), capped from its header
    before it is decoded, with its name and each file's digest; the total pixels capped too."""
    images: list[np.ndarray] = []
    names: list[str] = []
    digests: list[str] = []
    total_pixels = 0
    for position, file in enumerate(files):
        file.file.seek(0)
        data = file.file.read()
        name = file_name(file)
        label = f"{IMAGES_FIELD}[{position}] ({name or 'unnamed'})"
        if is_npz(data):  # DataValidationError → 4xx problem, as for an image
            stack = read_npz_images(
                data,
                upload_limits,
                name=label,
                max_images=limits.max_images - len(images),
                max_total_pixels=limits.max_total_pixels - total_pixels,
            )
            images.extend(stack)
            names.extend(f"{name}[{index}]" for index in range(len(stack)))
            total_pixels += stack.shape[0] * stack.shape[2] * stack.shape[3]
        else:
            image = decode_image(data, upload_limits, name=label)
            total_pixels += int(image.shape[1] * image.shape[2])
            if total_pixels > limits.max_total_pixels:
                raise ProblemError(
                    413,
                    "images_too_large",
                    f"the images hold more than {limits.max_total_pixels:,} pixels together; "
                    "send fewer or smaller images per request",
                )
            images.append(image)
            names.append(name)
        digests.append(hashlib.sha256(data).hexdigest())
    return images, names, digests


def decode_image(data: bytes, upload_limits: UploadLimits, *, name: str) -> np.ndarray:
    """One PNG or JPEG; a file of another format is refused naming every format a request accepts."""
    try:
        return decode_image_array(data, upload_limits, name=name)
    except DataValidationError as error:
        if error.code != "unsupported_image_format":
            raise
        raise DataValidationError(
            f"{name} is not a PNG or JPEG image, nor an .npz file of images; those are accepted",
            code=error.code,
        ) from None
