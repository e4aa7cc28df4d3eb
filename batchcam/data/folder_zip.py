"""Uploads as a zip of one folder per class holding PNG/JPEG images (``cat/001.png``)."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath

import torch

from batchcam.archives.zips import UploadSource, check_archive, check_upload_size, open_zip, read_member
from batchcam.data.dataset import DatasetSplits, ImageDataset
from batchcam.data.images import decode_image, with_common_channels
from batchcam.data.labels import check_class_count
from batchcam.data.split import split_dataset
from batchcam.errors import DataValidationError
from batchcam.spec.limits import UploadLimits

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
OS_CLUTTER = frozenset({"__MACOSX", "Thumbs.db", "desktop.ini"})  # added by archivers, not by users
EXPECTED_LAYOUT = "<class>/<image>.png|.jpg, optionally all inside one root folder"


@dataclass(frozen=True)
class ClassLayout:
    """The classes an archive defines and its image members, sorted by class then path."""

    class_names: tuple[str, ...]
    members: tuple[tuple[int, zipfile.ZipInfo], ...]  # (label, member)


def load_image_folder_zip(
    source: UploadSource, limits: UploadLimits, *, name: str, seed: int = 0
) -> DatasetSplits:
    """Validate and load a class-folder zip, read in memory (nothing is extracted), split 80/20.

    Member count, declared sizes, compression ratios, paths and layout are all checked before any
    member is decompressed. Class names are the folder names, sorted.
    """
    check_upload_size(source, limits, name=name)
    with open_zip(source, limits, name=name, kind="zip file", code="invalid_zip") as archive:
        layout = class_layout(check_archive(archive, limits))
        check_class_count(len(layout.class_names), limits, source=f"{name!r}")
        check_image_count(len(layout.members), limits, name=name)
        images = decode_members(archive, layout, limits)
    dataset = ImageDataset(
        images=torch.stack(with_common_channels(images)),
        labels=torch.tensor([label for label, _ in layout.members], dtype=torch.int64),
        class_names=layout.class_names,
        description=f"uploaded image-folder zip {name!r}",
    )
    return split_dataset(dataset, name=name, seed=seed)


def is_clutter(path: PurePosixPath) -> bool:
    """Archiver by-products (``__MACOSX/``, ``.DS_Store``, ``Thumbs.db``) and other dot-files."""
    return any(part in OS_CLUTTER or part.startswith(".") for part in path.parts)


def class_layout(members: list[zipfile.ZipInfo]) -> ClassLayout:
    files = [m for m in members if not m.is_dir() and not is_clutter(PurePosixPath(m.filename))]
    folders = [m for m in members if m.is_dir() and not is_clutter(PurePosixPath(m.filename))]
    for member in files:
        check_image_suffix(member)
    root = common_root([PurePosixPath(m.filename) for m in files])
    labelled = [(class_folder(member, root), member) for member in files]
    declared = {relative_parts(PurePosixPath(m.filename), root) for m in folders}
    class_names = tuple(sorted({folder for folder, _ in labelled}))
    check_no_empty_folder(declared, class_names)
    label_of = {folder: label for label, folder in enumerate(class_names)}
    ordered = sorted(labelled, key=lambda pair: (pair[0], pair[1].filename))
    return ClassLayout(class_names, tuple((label_of[folder], member) for folder, member in ordered))


def check_image_suffix(member: zipfile.ZipInfo) -> None:
    if not member.filename.lower().endswith(IMAGE_SUFFIXES):
        raise DataValidationError(
            f"archive member {member.filename!r} is not an image file; only PNG and JPEG images "
            f"(.png, .jpg, .jpeg) laid out as {EXPECTED_LAYOUT} are accepted",
            code="unsupported_member",
        )


def common_root(paths: list[PurePosixPath]) -> str | None:
    """The single top folder every image sits under, when the class folders are one level deeper."""
    tops = {path.parts[0] for path in paths}
    if len(tops) == 1 and all(len(path.parts) >= 3 for path in paths):
        return tops.pop()
    return None


def relative_parts(path: PurePosixPath, root: str | None) -> tuple[str, ...]:
    return path.parts[1:] if root is not None else path.parts


def class_folder(member: zipfile.ZipInfo, root: str | None) -> str:
    parts = relative_parts(PurePosixPath(member.filename), root)
    if len(parts) == 1:
        raise DataValidationError(
            f"archive member {member.filename!r} is not inside a class folder; expected {EXPECTED_LAYOUT}",
            code="file_outside_class_folder",
        )
    if len(parts) > 2:
        raise DataValidationError(
            f"archive member {member.filename!r} is nested too deep; expected {EXPECTED_LAYOUT}",
            code="nesting_too_deep",
        )
    return parts[0]


def check_no_empty_folder(declared: set[tuple[str, ...]], class_names: tuple[str, ...]) -> None:
    """A class folder the archive lists but that holds no image is almost always a mistake."""
    empty = sorted(parts[0] for parts in declared if len(parts) == 1 and parts[0] not in class_names)
    if empty:
        raise DataValidationError(
            f"class folder(s) {empty} contain no images; every class folder needs at least one PNG or JPEG",
            code="empty_class",
        )


def check_image_count(n_images: int, limits: UploadLimits, *, name: str) -> None:
    if n_images > limits.max_images:
        raise DataValidationError(
            f"{name!r} holds {n_images:,} images; at most {limits.max_images:,} are accepted",
            code="too_many_images",
        )


def decode_members(archive: zipfile.ZipFile, layout: ClassLayout, limits: UploadLimits) -> list[torch.Tensor]:
    """Decode every image; all must share the first image's size."""
    images: list[torch.Tensor] = []
    first: zipfile.ZipInfo | None = None
    for _, member in layout.members:
        image = decode_image(read_member(archive, member), limits, name=f"archive member {member.filename!r}")
        if first is None:
            first = member
            check_total_pixels(image, len(layout.members), limits)
        elif image.shape[1:] != images[0].shape[1:]:
            raise size_mismatch_error(member, image, first, images[0])
        images.append(image)
    return images


def check_total_pixels(image: torch.Tensor, n_images: int, limits: UploadLimits) -> None:
    total = n_images * image.shape[1] * image.shape[2]
    if total > limits.max_total_pixels:
        raise DataValidationError(
            f"{n_images:,} images of {image.shape[2]}×{image.shape[1]} make {total:,} pixels; at most "
            f"{limits.max_total_pixels:,} pixels in all are accepted",
            code="too_many_pixels",
        )


def size_mismatch_error(
    member: zipfile.ZipInfo, image: torch.Tensor, first: zipfile.ZipInfo, first_image: torch.Tensor
) -> DataValidationError:
    return DataValidationError(
        f"archive member {member.filename!r} is {image.shape[2]}×{image.shape[1]} (width×height) but "
        f"{first.filename!r} is {first_image.shape[2]}×{first_image.shape[1]}; all images must share one "
        "size (resize them before uploading)",
        code="image_size_mismatch",
    )
