"""Uploads as NumPy ``.npz`` archives: ``images`` and ``labels``, optionally class names and a test set."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from batchcam.archives.npy import (
    ArrayHeader,
    channels_first,
    check_image_header,
    npy_members,
    read_array,
    read_header,
)
from batchcam.archives.zips import UploadSource, check_archive, check_upload_size, open_zip
from batchcam.data.dataset import DatasetSplits, ImageDataset
from batchcam.data.labels import check_labels, class_names_or_default
from batchcam.data.split import split_dataset
from batchcam.errors import DataValidationError
from batchcam.spec.limits import UploadLimits

IMAGE_KEYS = ("images", "test_images")
LABEL_KEYS = ("labels", "test_labels")
MASK_KEYS = ("masks", "test_masks")
KNOWN_KEYS = (*IMAGE_KEYS, *LABEL_KEYS, *MASK_KEYS, "class_names")
ACCEPTED_LAYOUT = (
    "images uint8 N×H×W or N×H×W×C (C = 1 or 3), labels 1-D integers, optional class_names (strings), "
    "optional test_images/test_labels, and optional masks/test_masks (bool or uint8 N×H×W, nonzero = "
    "where the class evidence is; used to score how well the CAMs localise it)"
)


def load_npz(source: UploadSource, limits: UploadLimits, *, name: str, seed: int = 0) -> DatasetSplits:
    """Validate and load an ``.npz`` upload; without a test set, split 80/20 stratified by ``seed``.

    Every array's header (dtype, shape) is checked against the limits before any array is read.
    """
    check_upload_size(source, limits, name=name)
    with open_zip(source, limits, name=name, kind=".npz file", code="invalid_npz") as archive:
        members = npy_members(check_archive(archive, limits))
        headers = {key: read_header(archive, members[key]) for key in KNOWN_KEYS if key in members}
        check_keys(headers, found=sorted(members), name=name)
        check_headers(headers, limits, name=name)
        arrays = {key: read_array(archive, members[key]) for key in headers}
    return build_splits(arrays, limits, name=name, seed=seed)


def check_keys(headers: Mapping[str, ArrayHeader], *, found: list[str], name: str) -> None:
    required = ["images", "labels"]
    if "test_images" in headers or "test_labels" in headers:
        required += ["test_images", "test_labels"]  # a test set needs both halves
    missing = [key for key in required if key not in headers]
    if missing:
        raise DataValidationError(
            f"{name!r} has no array named {', '.join(map(repr, missing))} (found: {found or 'none'}); "
            f"expected {ACCEPTED_LAYOUT}",
            code="npz_missing_key",
        )


def check_headers(headers: Mapping[str, ArrayHeader], limits: UploadLimits, *, name: str) -> None:
    for key in IMAGE_KEYS:
        if key in headers:
            check_image_header(headers[key])
    for images_key, labels_key in zip(IMAGE_KEYS, LABEL_KEYS, strict=True):
        if labels_key in headers:
            check_label_header(headers[labels_key], n_images=headers[images_key].shape[0])
    if "class_names" in headers:
        check_class_names_header(headers["class_names"])
    for images_key, masks_key in zip(IMAGE_KEYS, MASK_KEYS, strict=True):
        if masks_key in headers:
            check_mask_header(headers[masks_key], headers.get(images_key), images_key=images_key)
    check_not_empty(headers, name=name)
    if "test_images" in headers and headers["test_images"].shape[1:] != headers["images"].shape[1:]:
        raise DataValidationError(
            f"test_images are {headers['test_images'].shape[1:]} per image but images are "
            f"{headers['images'].shape[1:]}; both sets must share height, width and channels",
            code="shape_mismatch",
        )
    check_size_limits([headers[key] for key in IMAGE_KEYS if key in headers], limits, name=name)


def check_label_header(header: ArrayHeader, *, n_images: int) -> None:
    if header.dtype.kind not in "iu":
        raise DataValidationError(
            f"array {header.key!r} has dtype {header.dtype}; labels must be integers (class indices)",
            code="npz_wrong_dtype",
        )
    if len(header.shape) != 1:
        raise DataValidationError(
            f"array {header.key!r} has shape {header.shape}; labels must be 1-D (one class index per image)",
            code="npz_wrong_shape",
        )
    if header.shape[0] != n_images:
        raise DataValidationError(
            f"array {header.key!r} has {header.shape[0]:,} labels for {n_images:,} images; "
            "exactly one label per image is accepted",
            code="length_mismatch",
        )


def check_mask_header(header: ArrayHeader, images: ArrayHeader | None, *, images_key: str) -> None:
    if images is None:
        raise DataValidationError(
            f"array {header.key!r} is given without {images_key!r}; masks mark regions of those images",
            code="npz_missing_key",
        )
    if header.dtype not in (np.dtype(bool), np.dtype(np.uint8)):
        raise DataValidationError(
            f"array {header.key!r} has dtype {header.dtype}; masks are bool or uint8 (nonzero = inside)",
            code="npz_wrong_dtype",
        )
    if header.shape != images.shape[:3]:
        raise DataValidationError(
            f"array {header.key!r} has shape {header.shape}; it must be N×H×W like {images_key!r} "
            f"({images.shape[:3]}): one mask per image",
            code="shape_mismatch",
        )


def check_class_names_header(header: ArrayHeader) -> None:
    if header.dtype.kind not in "US":
        raise DataValidationError(
            f"array 'class_names' has dtype {header.dtype}; a 1-D array of strings is accepted",
            code="npz_wrong_dtype",
        )
    if len(header.shape) != 1:
        raise DataValidationError(
            f"array 'class_names' has shape {header.shape}; a 1-D array of strings is accepted",
            code="npz_wrong_shape",
        )


def check_not_empty(headers: Mapping[str, ArrayHeader], *, name: str) -> None:
    """Training and (when given) test images each need at least one image."""
    if headers["images"].shape[0] == 0:
        raise DataValidationError(
            f"{name!r} holds no images in 'images'; at least two classes of training images are needed",
            code="empty_dataset",
        )
    if "test_images" in headers and headers["test_images"].shape[0] == 0:
        raise DataValidationError(
            f"{name!r} holds no images in 'test_images'; give at least one test image, or leave out "
            "test_images and test_labels to hold out 20% of the images for testing",
            code="empty_dataset",
        )


def check_size_limits(image_headers: list[ArrayHeader], limits: UploadLimits, *, name: str) -> None:
    n_images = sum(header.shape[0] for header in image_headers)
    height, width = image_headers[0].shape[1:3]
    if n_images == 0:
        raise DataValidationError(
            f"{name!r} holds no images; at least two classes of images are needed", code="empty_dataset"
        )
    if n_images > limits.max_images:
        raise DataValidationError(
            f"{name!r} holds {n_images:,} images; at most {limits.max_images:,} are accepted",
            code="too_many_images",
        )
    if height * width > limits.max_image_pixels:
        raise DataValidationError(
            f"images in {name!r} are {height}×{width} = {height * width:,} pixels; at most "
            f"{limits.max_image_pixels:,} pixels per image are accepted",
            code="image_too_large",
        )
    if n_images * height * width > limits.max_total_pixels:
        raise DataValidationError(
            f"{name!r} holds {n_images * height * width:,} pixels in all; at most "
            f"{limits.max_total_pixels:,} are accepted",
            code="too_many_pixels",
        )


def build_splits(
    arrays: Mapping[str, np.ndarray], limits: UploadLimits, *, name: str, seed: int
) -> DatasetSplits:
    class_names = class_names_or_default(
        arrays.get("class_names"), arrays["labels"], limits, source=f"{name!r}"
    )
    check_labels(arrays["labels"], class_names, key="labels", require_every_class=True)
    train = as_dataset(arrays["images"], arrays["labels"], class_names, name=name, masks=arrays.get("masks"))
    if "test_images" not in arrays:
        return split_dataset(train, name=name, seed=seed)  # the masks follow their images
    check_labels(arrays["test_labels"], class_names, key="test_labels", require_every_class=False)
    test = as_dataset(
        arrays["test_images"], arrays["test_labels"], class_names, name=name, masks=arrays.get("test_masks")
    )
    return DatasetSplits(name=name, train=train, test=test)


def as_dataset(
    images: np.ndarray,
    labels: np.ndarray,
    class_names: tuple[str, ...],
    *,
    name: str,
    masks: np.ndarray | None = None,
) -> ImageDataset:
    return ImageDataset(
        images=torch.from_numpy(np.ascontiguousarray(channels_first(images))),
        labels=torch.from_numpy(labels.astype(np.int64)),
        class_names=class_names,
        object_masks=None if masks is None else torch.from_numpy(masks != 0),
        description=f"uploaded .npz {name!r}",
    )
