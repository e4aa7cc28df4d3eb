"""MNIST and Fashion-MNIST from the original IDX ``.gz`` files; never touches the network."""

from __future__ import annotations

import gzip
import os
import shutil
import struct
import time
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.datasets import MNIST, FashionMNIST
from torchvision.datasets import utils as tv_utils

from batchcam.data import default_data_dir, load_dataset, load_fashion_mnist, load_mnist
from batchcam.data.idx import read_idx
from batchcam.errors import DatasetUnavailableError, DataValidationError

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_FILES = [file_name for file_name, _ in MNIST.resources]


def shared_data_dir() -> Path | None:
    """The read-only copy of the official files: $BATCHCAM_TEST_DATA_DIR or <repo>/../shared/data."""
    configured = os.environ.get("BATCHCAM_TEST_DATA_DIR")
    candidate = Path(configured) if configured else Path(__file__).resolve().parents[2] / "shared" / "data"
    return candidate if (candidate / "MNIST" / "raw").is_dir() else None


@pytest.fixture(scope="module")
def data_dir() -> Path:
    found = shared_data_dir()
    if found is None:
        message = "official MNIST files not found: set BATCHCAM_TEST_DATA_DIR to a folder with MNIST/raw/"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI always has ../shared/data: a missing copy is a broken setup, not a skip
        # The official files are not in the repository (tens of MB, MD5-checked originals) and tests
        # never download, so a clone without the shared data beside it cannot test them; the IDX
        # parser itself is still tested on files these tests write (test_idx_reader_round_trips, …).
        pytest.skip(
            f"{message}: they are not part of the repository and tests never download "
            "(required under CI, where .ci/run sets CI and this fails instead)"
        )
    return found


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every download attempt fails as it would offline, after leaving a partial file behind."""
    attempts: list[str] = []

    def offline_download(url: str, root: str, filename: str, md5: str | None = None) -> None:
        attempts.append(url)
        Path(root).mkdir(parents=True, exist_ok=True)
        (Path(root) / filename).write_bytes(b"partial")
        raise urllib.error.URLError(OSError(101, "Network is unreachable"))

    monkeypatch.setattr(tv_utils, "download_url", offline_download)
    return attempts


def test_mnist_from_the_official_files(data_dir: Path) -> None:
    before = sorted(os.listdir(data_dir / "MNIST" / "raw"))
    start = time.perf_counter()
    splits = load_mnist(data_dir, download=False)
    elapsed = time.perf_counter() - start
    assert splits.name == "mnist"
    assert splits.train.images.shape == (60000, 1, 28, 28) and splits.test.images.shape == (10000, 1, 28, 28)
    assert splits.train.class_counts().tolist() == MNIST_TRAIN_COUNTS
    assert splits.train.images.float().mean().item() == pytest.approx(33.318, abs=1e-3)
    assert splits.test.images.float().mean().item() == pytest.approx(33.791, abs=1e-3)
    assert splits.class_names == tuple("0123456789")
    # ~0.3 s quiet; the bound only catches a per-pixel Python loop (minutes), not a busy machine.
    assert elapsed < 15.0, f"loading MNIST took {elapsed:.2f} s"
    assert sorted(os.listdir(data_dir / "MNIST" / "raw")) == before, "the data folder is read-only"


def test_fashion_mnist_from_the_official_files(data_dir: Path) -> None:
    splits = load_fashion_mnist(data_dir, download=False)
    assert splits.name == "fashion-mnist"
    assert splits.train.class_counts().tolist() == [6000] * 10
    assert splits.test.class_counts().tolist() == [1000] * 10
    assert splits.class_names == tuple(FashionMNIST.classes)
    assert splits.train.images.float().mean().item() == pytest.approx(72.940, abs=1e-3)


def test_download_fetches_missing_files_into_the_data_dir(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fake mirror serving the official files: only the missing ones are fetched."""
    fetched: list[str] = []

    def mirror(url: str, root: str, filename: str, md5: str | None = None) -> None:
        fetched.append(filename)
        assert not (raw / filename).exists()  # written elsewhere: readers of raw/ never see it half-done
        shutil.copy(data_dir / "MNIST" / "raw" / filename, Path(root) / filename)

    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    shutil.copy(data_dir / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz", raw)
    monkeypatch.setattr(tv_utils, "download_url", mirror)
    splits = load_mnist(tmp_path, download=True)
    assert sorted(fetched) == sorted(set(MNIST_FILES) - {"t10k-labels-idx1-ubyte.gz"})
    assert sorted(os.listdir(raw)) == sorted(MNIST_FILES)  # moved into place, no staging left
    assert splits.test.class_counts().tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_offline_download_failure_says_what_is_missing_and_how_to_fix(
    tmp_path: Path, no_network: list[str]
) -> None:
    with pytest.raises(DatasetUnavailableError) as caught:
        load_mnist(tmp_path, download=True)
    error = caught.value
    assert error.code == "dataset_unavailable"
    assert str(tmp_path / "MNIST" / "raw") in error.message
    assert all(file_name in error.message for file_name in MNIST_FILES)
    assert "BATCHCAM_DATA_DIR" in error.message and "Network is unreachable" in error.message
    assert len(no_network) == len(MNIST.mirrors), "every mirror was tried"
    assert list((tmp_path / "MNIST" / "raw").iterdir()) == [], "no partial download is left behind"


def test_missing_files_without_download_never_touch_the_network(
    tmp_path: Path, no_network: list[str]
) -> None:
    with pytest.raises(DatasetUnavailableError) as caught:
        load_fashion_mnist(tmp_path, download=False)
    assert caught.value.code == "dataset_unavailable"
    assert "FashionMNIST/raw" in caught.value.message and "train-images-idx3-ubyte.gz" in caught.value.message
    assert no_network == []
    assert not (tmp_path / "FashionMNIST").exists(), "nothing is written without a download"


def test_registry_uses_the_data_dir_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_network: list[str]
) -> None:
    monkeypatch.setenv("BATCHCAM_DATA_DIR", str(tmp_path))
    assert default_data_dir() == tmp_path
    with pytest.raises(DatasetUnavailableError) as caught:
        load_dataset("decoy-mnist", download=False)
    assert str(tmp_path) in caught.value.message
    monkeypatch.delenv("BATCHCAM_DATA_DIR")
    assert default_data_dir() == Path.home() / ".cache" / "batchcam" / "data"


def test_a_file_with_the_wrong_checksum_is_refused(tmp_path: Path) -> None:
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for file_name in MNIST_FILES:
        (raw / file_name).write_bytes(gzip.compress(idx_bytes(np.zeros((2, 28, 28), np.uint8))))
    with pytest.raises(DatasetUnavailableError) as caught:
        load_mnist(tmp_path, download=False)
    assert caught.value.code == "dataset_checksum_mismatch"
    assert "train-images-idx3-ubyte.gz" in caught.value.message and "f68b3c2d" in caught.value.message


def idx_bytes(array: np.ndarray) -> bytes:
    return bytes((0, 0, 8, array.ndim)) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def test_idx_reader_round_trips(tmp_path: Path) -> None:
    images = np.random.default_rng(0).integers(0, 256, (5, 3, 4), dtype=np.uint8)
    path = tmp_path / "images.gz"
    path.write_bytes(gzip.compress(idx_bytes(images)))
    assert np.array_equal(read_idx(path, ndim=3), images)
    assert torch.from_numpy(read_idx(path, ndim=3)).is_contiguous()


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (bytes((0, 0, 8, 1)) + struct.pack(">I", 3) + b"abc", "IDX magic"),  # labels, not images
        (b"\x00\x00\x0d\x03" + struct.pack(">3I", 1, 2, 2) + bytes(16), "IDX magic"),  # float32 type
        (b"GIF89a" + bytes(40), "IDX magic"),
        (bytes((0, 0, 8, 3)) + struct.pack(">3I", 10, 28, 28) + bytes(100), "truncated"),
    ],
)
def test_corrupt_idx_files_are_refused_clearly(tmp_path: Path, content: bytes, fragment: str) -> None:
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(content))
    with pytest.raises(DataValidationError) as caught:
        read_idx(path, ndim=3)
    assert caught.value.code == "corrupt_idx"
    assert fragment in caught.value.message and str(path) in caught.value.message


def test_a_file_that_is_not_gzip_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "labels.gz"
    path.write_bytes(b"not gzip at all")
    with pytest.raises(DataValidationError) as caught:
        read_idx(path, ndim=1)
    assert caught.value.code == "corrupt_idx" and "gzip" in caught.value.message
