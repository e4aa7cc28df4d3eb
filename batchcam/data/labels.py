"""Checks on class labels and class names shared by every upload format."""

from __future__ import annotations

import numpy as np

from batchcam.errors import DataValidationError
from batchcam.spec.limits import UploadLimits


def check_class_count(n_classes: int, limits: UploadLimits, *, source: str) -> None:
    if n_classes < limits.min_classes:
        raise DataValidationError(
            f"{source} has {n_classes} class(es); at least {limits.min_classes} are needed to train a "
            "classifier",
            code="too_few_classes",
        )
    if n_classes > limits.max_classes:
        raise DataValidationError(
            f"{source} has {n_classes:,} classes; at most {limits.max_classes:,} are accepted",
            code="too_many_classes",
        )


def class_names_or_default(
    names: np.ndarray | None, labels: np.ndarray, limits: UploadLimits, *, source: str
) -> tuple[str, ...]:
    """The given class names, validated; without them ``"0"``, ``"1"``, … up to the largest label."""
    if names is None:
        if len(labels) == 0:  # no largest label to count classes from
            raise DataValidationError(f"{source} holds no labelled images", code="empty_dataset")
        check_non_negative(labels, key="labels")
        # count before building names: a stray label of 10**9 must not allocate 10**9 strings
        check_class_count(int(labels.max()) + 1, limits, source=source)
        return tuple(str(index) for index in range(int(labels.max()) + 1))
    check_class_count(len(names), limits, source=source)
    class_names = tuple(decode_name(name) for name in names.tolist())
    check_names_usable(class_names)
    return class_names


def decode_name(name: str | bytes) -> str:
    if isinstance(name, str):
        return name
    try:
        return name.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DataValidationError(
            f"class name {name!r} is not valid UTF-8; class names must be text", code="invalid_class_names"
        ) from error


def check_names_usable(class_names: tuple[str, ...]) -> None:
    blank = [index for index, name in enumerate(class_names) if not name.strip()]
    if blank:
        raise DataValidationError(
            f"class names at positions {blank} are empty; every class needs a non-blank name",
            code="invalid_class_names",
        )
    duplicates = sorted({name for name in class_names if class_names.count(name) > 1})
    if duplicates:
        raise DataValidationError(
            f"class names {duplicates} appear more than once; class names must be unique",
            code="invalid_class_names",
        )


def check_non_negative(labels: np.ndarray, *, key: str) -> None:
    if len(labels) and int(labels.min()) < 0:
        raise DataValidationError(
            f"{key} contain {int(labels.min())}; labels are class indices 0, 1, 2, …",
            code="label_out_of_range",
        )


def check_labels(
    labels: np.ndarray, class_names: tuple[str, ...], *, key: str, require_every_class: bool
) -> None:
    """Labels index ``class_names``; with ``require_every_class``, no class may be empty."""
    check_non_negative(labels, key=key)
    n_classes = len(class_names)
    if len(labels) and int(labels.max()) >= n_classes:
        raise DataValidationError(
            f"{key} contain {int(labels.max())} but there are {n_classes} classes; labels must lie in "
            f"[0, {n_classes})",
            code="label_out_of_range",
        )
    if require_every_class:
        counts = np.bincount(labels.astype(np.int64), minlength=n_classes)
        check_no_empty_class(counts, class_names, source=key)


def check_no_empty_class(counts: np.ndarray, class_names: tuple[str, ...], *, source: str) -> None:
    empty = [f"{index} ({class_names[index]!r})" for index in np.flatnonzero(counts == 0).tolist()]
    if empty:
        raise DataValidationError(
            f"{source}: class {', '.join(empty[:10])}{' …' if len(empty) > 10 else ''} has no images; "
            "every class needs at least one training image",
            code="empty_class",
        )
