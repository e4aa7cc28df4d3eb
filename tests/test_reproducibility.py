"""CPU training is reproducible to the byte for one config, seed and torch thread count, also across
fresh processes (README, "Reproducibility"); the report records the thread count, the one input
outside the config that changes the weights.

An earlier check found "one of two weight files" across fresh processes: the tensors were identical,
but safetensors writes its metadata map in a random order (a Rust HashMap). ``save_model`` now writes
the metadata sorted."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from batchcam.data import DatasetSplits, load_shapes
from batchcam.models.registry import build_from_spec
from batchcam.pipeline import train_and_report
from batchcam.spec.model_spec import ModelSpec
from batchcam.spec.run_files import MODEL_FILE
from batchcam.training import TrainConfig
from batchcam.weights import load_model, save_model

CONFIG = TrainConfig(
    epochs=1, batch_size=32, mode="both", seed=0, faithfulness_images=0, bn_recalibration_batches=2
)
# The same training as a user's fresh `batchcam train` process would run it.
FRESH_RUN = textwrap.dedent(
    """
    import hashlib, sys
    from pathlib import Path
    import torch
    from batchcam.data import load_shapes
    from batchcam.pipeline import train_and_report
    from batchcam.training import TrainConfig
    torch.set_num_threads(1)
    config = TrainConfig(
        epochs=1, batch_size=32, mode="both", seed=0, faithfulness_images=0, bn_recalibration_batches=2
    )
    out = Path(sys.argv[1])
    splits = load_shapes(seed=3, n_train=320, n_test=64)
    train_and_report(config, out / "run", splits=splits, cache_dir=out / "cache")
    print(hashlib.sha256((out / "run" / "model.safetensors").read_bytes()).hexdigest())
    """
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


def test_the_report_records_the_thread_count(splits: DatasetSplits, tmp_path: Path) -> None:
    _, threads = trained_weights(splits, tmp_path / "one", tmp_path / "cache", threads=1)
    assert threads == 1


def test_a_model_saved_again_is_the_same_file(tmp_path: Path) -> None:
    """Unsorted, the metadata's two keys came out in either order: 12 saves all alike had odds 1 in 2048."""
    spec = ModelSpec("simple_cnn", 3, 1, (28, 28), "features", ("circle", "carré", "triangle"))
    model = build_from_spec(spec)
    digests = set()
    for index in range(12):
        path = tmp_path / f"{index}.safetensors"
        save_model(path, model, spec)
        digests.add(hashlib.sha256(path.read_bytes()).hexdigest())
    assert len(digests) == 1
    loaded, loaded_spec = load_model(path)
    assert loaded_spec == spec
    for name, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], value)


@pytest.mark.slow
def test_training_in_fresh_processes_gives_the_same_weights_file(tmp_path: Path) -> None:
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    digests = {
        subprocess.run(
            [sys.executable, "-c", FRESH_RUN, str(tmp_path / str(run))],
            capture_output=True,
            text=True,
            check=True,
            env=environment,
        ).stdout.split()[-1]
        for run in range(3)
    }
    assert len(digests) == 1
