"""Datasets by name (the built-ins) and uploads by content."""

from __future__ import annotations

from pathlib import Path

from batchcam.archives.zips import ZIP_MAGICS, check_upload_size, open_zip
from batchcam.data.dataset import DatasetSplits
from batchcam.data.decoy import make_decoy
from batchcam.data.folder_zip import load_image_folder_zip
from batchcam.data.idx import load_fashion_mnist, load_mnist
from batchcam.data.npz import load_npz
from batchcam.data.resize import resize_splits
from batchcam.data.shapes import load_shapes
from batchcam.data.validation import holdout_validation
from batchcam.errors import ConfigError, DataValidationError
from batchcam.spec.datasets import BUILTIN_DATASETS, UPLOAD_FORMATS, clean_name, decoy_patch_size
from batchcam.spec.limits import DEFAULT_UPLOAD_LIMITS, UploadLimits


def load_dataset(
    name: str,
    *,
    data_dir: Path | None = None,
    download: bool = True,
    seed: int = 0,
    image_size: int | None = None,
    validation: bool = False,
) -> DatasetSplits:
    """A built-in dataset by name; ``seed`` fixes the procedural data and the decoy patches.

    ``image_size`` resizes the finished dataset (decoy patches included) to a model's input size.
    ``validation`` replaces the test split by one held out of the training images (see
    ``batchcam.data.validation``), painted like a test split in decoy variants.
    """
    if name not in BUILTIN_DATASETS:
        raise ConfigError(
            f"unknown dataset {name!r}; the built-in datasets are {', '.join(BUILTIN_DATASETS)}",
            code="unknown_dataset",
        )
    patch_size = decoy_patch_size(name)
    splits = load_base_dataset(clean_name(name), data_dir=data_dir, download=download, seed=seed)
    if validation:
        splits = holdout_validation(splits)
    if patch_size is not None:
        splits = make_decoy(splits, seed=seed, patch_size=patch_size)
    return splits if image_size is None else resize_splits(splits, image_size)


def load_base_dataset(name: str, *, data_dir: Path | None, download: bool, seed: int) -> DatasetSplits:
    match name:
        case "shapes":
            return load_shapes(seed=seed)
        case "mnist":
            return load_mnist(data_dir, download=download)
        case "fashion-mnist":
            return load_fashion_mnist(data_dir, download=download)
    raise AssertionError(f"no loader for built-in dataset {name!r}")  # BUILTIN_DATASETS lists only these


def load_upload(
    path: Path,
    limits: UploadLimits = DEFAULT_UPLOAD_LIMITS,
    *,
    seed: int = 0,
    name: str | None = None,
    image_size: int | None = None,
) -> DatasetSplits:
    """An uploaded dataset, recognised by its content (never its extension), validated and split.

    ``name`` defaults to the file's stem.
    """
    dataset_name = name if name is not None else path.stem
    if not path.is_file():
        raise DataValidationError(f"cannot read {path}: no such file", code="file_not_found")
    check_upload_size(path, limits, name=dataset_name)
    loader = load_npz if is_npz(path, limits, name=dataset_name) else load_image_folder_zip
    splits = loader(path, limits, name=dataset_name, seed=seed)
    return splits if image_size is None else resize_splits(splits, image_size)


def is_npz(path: Path, limits: UploadLimits, *, name: str) -> bool:
    """An .npz is a zip whose files are all ``.npy`` arrays; any other zip is a class-folder zip."""
    with path.open("rb") as file:
        magic = file.read(4)
    if magic not in ZIP_MAGICS:
        raise DataValidationError(
            f"upload {name!r} is neither a zip nor an .npz archive; accepted: {UPLOAD_FORMATS}",
            code="unsupported_format",
        )
    with open_zip(path, limits, name=name, kind="zip file", code="invalid_zip") as archive:
        files = [member.filename for member in archive.infolist() if not member.is_dir()]
    return bool(files) and all(file_name.endswith(".npy") for file_name in files)
