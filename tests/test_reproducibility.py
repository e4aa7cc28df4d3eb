"""What a CPU training run's weights depend on (README, "Reproducibility"): the same config, seed and
torch thread count give the same bytes, whether the class prototypes come fresh or from the cache;
the report records the thread count, the one input outside the config that can change them."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from batchcam.data import DatasetSplits, load_shapes
from batchcam.pipeline import train_and_report
from batchcam.spec.run_files import MODEL_FILE
from batchcam.training import TrainConfig

CONFIG = TrainConfig(
    epochs=1, batch_size=32, mode="both", seed=0, faithfulness_images=0, bn_recalibration_batches=2
)


@pytest.fixture(scope="module")
def splits() -> DatasetSplits:
    return load_shapes(seed=3, n_train=320, n_test=64)


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def trained_weights(splits: DatasetSplits, out: Path, cache: Path, threads: int) -> tuple[str, int]:
    """The SHA-256 of the weights file and the thread count the report recorded."""
    with torch_threads(threads):
        output = train_and_report(CONFIG, out, splits=splits, cache_dir=cache)
    assert output.report is not None
    digest = hashlib.sha256((out / MODEL_FILE).read_bytes()).hexdigest()
    return digest, output.report["execution"]["torch_threads"]


def test_the_same_config_seed_and_threads_give_the_same_weights(
    splits: DatasetSplits, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    fresh = trained_weights(splits, tmp_path / "a", cache, threads=2)  # prototypes computed and cached
    cached = trained_weights(splits, tmp_path / "b", cache, threads=2)  # prototypes read from the cache
    assert fresh == cached
    assert fresh[1] == 2


def test_the_report_records_the_thread_count(splits: DatasetSplits, tmp_path: Path) -> None:
    _, threads = trained_weights(splits, tmp_path / "one", tmp_path / "cache", threads=1)
    assert threads == 1
