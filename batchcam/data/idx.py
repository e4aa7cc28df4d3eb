"""MNIST and Fashion-MNIST read straight from the original IDX ``.gz`` files (torchvision's layout).

torchvision's dataset classes are the single source of truth for file names, MD5s, mirrors and
class names; the files themselves are parsed here, so a read-only data folder works as is.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import math
import os
import shutil
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from batchcam.data.dataset import DatasetSplits, ImageDataset
from batchcam.errors import DatasetUnavailableError, DataValidationError

DATA_DIR_ENV = "BATCHCAM_DATA_DIR"
IDX_UINT8 = 0x08
DOWNLOAD_ERRORS = (OSError, RuntimeError, ValueError, http.client.HTTPException)  # URLError is an OSError


@dataclass(frozen=True)
class IdxDataset:
    """Where one IDX dataset lives and how to check it, as torchvision publishes it."""

    name: str  # our dataset name
    folder: str  # torchvision's folder under the data dir (its class name)
    resources: tuple[tuple[str, str], ...]  # (file name, MD5 of the .gz)
    mirrors: tuple[str, ...]
    class_names: tuple[str, ...]
    description: str

    @property
    def file_names(self) -> tuple[str, ...]:
        return tuple(file_name for file_name, _ in self.resources)

    def raw_dir(self, data_dir: Path) -> Path:
        return data_dir / self.folder / "raw"


def default_data_dir() -> Path:
    """``$BATCHCAM_DATA_DIR``, else ``~/.cache/batchcam/data``."""
    configured = os.environ.get(DATA_DIR_ENV)
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "batchcam" / "data"


def mnist_source() -> IdxDataset:
    from torchvision.datasets import MNIST  # imported on use: torchvision takes seconds to import

    return IdxDataset(
        name="mnist",
        folder="MNIST",
        resources=tuple(MNIST.resources),
        mirrors=tuple(MNIST.mirrors),
        class_names=tuple(str(digit) for digit in range(10)),
        description="MNIST handwritten digits (LeCun et al.), 28×28 grayscale",
    )


def fashion_mnist_source() -> IdxDataset:
    from torchvision.datasets import FashionMNIST  # imported on use: torchvision takes seconds to import

    return IdxDataset(
        name="fashion-mnist",
        folder="FashionMNIST",
        resources=tuple(FashionMNIST.resources),
        mirrors=tuple(FashionMNIST.mirrors),
        class_names=tuple(FashionMNIST.classes),
        description="Fashion-MNIST clothing images (Xiao et al.), 28×28 grayscale",
    )


def load_mnist(data_dir: Path | None = None, download: bool = True) -> DatasetSplits:
    return load_idx_dataset(mnist_source(), data_dir=data_dir, download=download)


def load_fashion_mnist(data_dir: Path | None = None, download: bool = True) -> DatasetSplits:
    return load_idx_dataset(fashion_mnist_source(), data_dir=data_dir, download=download)


def load_idx_dataset(source: IdxDataset, *, data_dir: Path | None, download: bool) -> DatasetSplits:
    """The official train/test splits; missing files are downloaded only when ``download`` is set."""
    raw_dir = source.raw_dir(data_dir if data_dir is not None else default_data_dir())
    ensure_files(source, raw_dir, download=download)
    return DatasetSplits(
        name=source.name,
        train=read_split(source, raw_dir, prefix="train"),
        test=read_split(source, raw_dir, prefix="t10k"),
    )


def ensure_files(source: IdxDataset, raw_dir: Path, *, download: bool) -> None:
    missing = [file_name for file_name in source.file_names if not (raw_dir / file_name).is_file()]
    if not missing:
        return
    if not download:
        raise unavailable_error(source, raw_dir, missing, reason="download=False")
    for file_name in missing:
        download_file(source, raw_dir, file_name)


def download_file(source: IdxDataset, raw_dir: Path, file_name: str) -> None:
    """Try each mirror in turn (torchvision checks the MD5).

    Downloads land in a private folder and are moved into place whole, so another process sharing
    ``raw_dir`` never reads a half-written file, and a failed download leaves nothing behind.
    """
    from torchvision.datasets import utils as tv_utils  # imported on use: slow to import

    md5 = dict(source.resources)[file_name]
    errors: list[str] = []
    raw_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".download-", dir=raw_dir))
    try:
        for mirror in source.mirrors:
            try:
                tv_utils.download_url(f"{mirror}{file_name}", root=str(staging), filename=file_name, md5=md5)
            except DOWNLOAD_ERRORS as error:
                errors.append(f"{mirror}: {error}")
                (staging / file_name).unlink(missing_ok=True)
                continue
            os.replace(staging / file_name, raw_dir / file_name)
            return
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    raise unavailable_error(source, raw_dir, [file_name], reason="download failed: " + "; ".join(errors))


def unavailable_error(
    source: IdxDataset, raw_dir: Path, missing: list[str], *, reason: str
) -> DatasetUnavailableError:
    return DatasetUnavailableError(
        f"{source.name} is not available ({reason}): {raw_dir} lacks {', '.join(missing)}. Set "
        f"{DATA_DIR_ENV} to a folder holding {source.folder}/raw/ with the files "
        f"{', '.join(source.file_names)}, or allow the download with network access",
        code="dataset_unavailable",
    )


def read_split(source: IdxDataset, raw_dir: Path, *, prefix: str) -> ImageDataset:
    images = read_verified_idx(source, raw_dir / f"{prefix}-images-idx3-ubyte.gz", ndim=3)
    labels = read_verified_idx(source, raw_dir / f"{prefix}-labels-idx1-ubyte.gz", ndim=1)
    if len(images) != len(labels) or (len(labels) and int(labels.max()) >= len(source.class_names)):
        raise DataValidationError(
            f"{raw_dir} holds {len(images)} {prefix} images but {len(labels)} labels (or labels beyond "
            f"{len(source.class_names)} classes); replace the files with the official ones",
            code="corrupt_idx",
        )
    return ImageDataset(
        images=torch.from_numpy(images).unsqueeze(1),
        labels=torch.from_numpy(labels.astype(np.int64)),
        class_names=source.class_names,
        description=f"{source.description}, {prefix} split",
    )


def read_verified_idx(source: IdxDataset, path: Path, *, ndim: int) -> np.ndarray:
    """Read a ``.gz`` IDX file after checking its MD5 against torchvision's."""
    compressed = path.read_bytes()
    expected = dict(source.resources)[path.name]
    actual = hashlib.md5(compressed, usedforsecurity=False).hexdigest()
    if actual != expected:
        raise DatasetUnavailableError(
            f"{path} has MD5 {actual} but the official file has {expected}; delete it (it will be "
            "downloaded again) or replace it with the official file",
            code="dataset_checksum_mismatch",
        )
    return parse_idx_gz(compressed, ndim=ndim, name=str(path))


def read_idx(path: Path, *, ndim: int) -> np.ndarray:
    """Read any gzip-compressed IDX file of uint8 values, without a checksum."""
    return parse_idx_gz(path.read_bytes(), ndim=ndim, name=str(path))


def parse_idx_gz(compressed: bytes, *, ndim: int, name: str) -> np.ndarray:
    try:
        content = gzip.decompress(compressed)
    except (OSError, EOFError, zlib.error) as error:  # gzip.BadGzipFile is an OSError
        raise DataValidationError(
            f"{name} is not a readable gzip file ({error}); expected a gzip-compressed IDX file",
            code="corrupt_idx",
        ) from error
    return parse_idx(content, ndim=ndim, name=name)


def parse_idx(content: bytes, *, ndim: int, name: str) -> np.ndarray:
    """IDX: two zero bytes, a type byte (0x08 = uint8), the rank, big-endian int32 sizes, then data."""
    header_size = 4 + 4 * ndim
    if len(content) < header_size or content[:4] != bytes((0, 0, IDX_UINT8, ndim)):
        raise DataValidationError(
            f"{name} does not start with the IDX magic for a {ndim}-D uint8 array "
            f"(00 00 08 {ndim:02x}, found {content[:4].hex(' ') or 'nothing'})",
            code="corrupt_idx",
        )
    shape = tuple(int(size) for size in np.frombuffer(content, dtype=">u4", count=ndim, offset=4))
    expected = header_size + math.prod(shape)
    if len(content) != expected:
        raise DataValidationError(
            f"{name} declares shape {shape} ({expected:,} bytes) but holds {len(content):,} bytes; "
            "the file is truncated or corrupt",
            code="corrupt_idx",
        )
    # a copy: torch tensors need writable memory, and bytes are read-only
    return np.frombuffer(content, dtype=np.uint8, offset=header_size).reshape(shape).copy()
