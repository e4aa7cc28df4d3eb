"""The command line: a real run, explaining images, resuming, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from batchcam.cli import app
from batchcam.data import make_shapes

runner = CliRunner()


def invoke(*args: str, env: dict[str, str] | None = None):
    return runner.invoke(app, list(args), env=env)


@pytest.fixture(scope="module")
def small_npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1,000 procedural images as a user upload: keeps CLI runs to seconds."""
    data = make_shapes(1000, seed=5)
    path = tmp_path_factory.mktemp("data") / "shapes-small.npz"
    np.savez(
        path,
        images=data.images[:, 0].numpy(),
        labels=data.labels.numpy(),
        class_names=np.array(data.class_names),
    )
    return path


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory, small_npz: Path) -> Path:
    out = tmp_path_factory.mktemp("cli") / "run"
    result = invoke(
        "train", "--out", str(out), "--data-file", str(small_npz), "--epochs", "3", "--batch-size", "16"
    )
    assert result.exit_code == 0, result.output
    assert "test accuracy" in result.output and f"wrote {out}/" in result.output
    return out


def test_train_writes_a_complete_run(run_dir: Path) -> None:
    report = json.loads((run_dir / "report.json").read_text())
    assert report["config"]["epochs"] == 3 and report["test"]["accuracy"] > 0.5
    assert report["dataset"]["name"] == "shapes-small" and report["dataset"]["train_images"] == 800
    assert (run_dir / "model.safetensors").exists() and (run_dir / "checkpoint.pt").exists()


def test_explain_writes_overlays_and_predictions(run_dir: Path, tmp_path: Path) -> None:
    prototype = run_dir / "prototypes" / "0.png"  # the circle prototype: a clear circle
    rgb = tmp_path / "colour.png"
    Image.open(prototype).convert("RGB").resize((56, 56)).save(rgb)
    result = invoke(
        "explain", "--run", str(run_dir), "--out", str(tmp_path / "out"), str(prototype), str(rgb)
    )
    assert result.exit_code == 0, result.output
    predictions = json.loads((tmp_path / "out" / "predictions.json").read_text())
    assert [p["image"] for p in predictions] == [str(prototype), str(rgb)]
    assert predictions[0]["predicted"] == "circle"
    for record in predictions:
        with Image.open(record["overlay"]) as overlay:
            assert overlay.size == (28 * 8, 28 * 8) and overlay.mode == "RGB"


def test_explain_a_chosen_class(run_dir: Path, tmp_path: Path) -> None:
    image = run_dir / "prototypes" / "1.png"
    result = invoke("explain", "--run", str(run_dir), "--out", str(tmp_path), "--target", "4", str(image))
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "predictions.json").read_text())[0]["explained_class"] == "ring"


@pytest.mark.slow
def test_interrupted_run_resumes_to_completion(tmp_path: Path, small_npz: Path) -> None:
    out = tmp_path / "run"
    args = ["train", "--out", str(out), "--data-file", str(small_npz), "--epochs", "8", "--batch-size", "16"]
    stopped = invoke(*args, "--max-runtime", "1")
    assert stopped.exit_code == 3 and "--resume" in stopped.output
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=True)
    assert 0 < checkpoint["global_step"] < 8 * 50
    resumed = invoke(*args, "--resume")
    assert resumed.exit_code == 0, resumed.output
    report = json.loads((out / "report.json").read_text())
    assert [h["epoch"] for h in report["history"]] == list(range(1, 9))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--out", "x", "--dataset", "cifar"], "unknown dataset 'cifar'"),
        (["train", "--out", "x", "--lr", "-1"], "lr must be a number in"),
        (["train", "--out", "x", "--image-size", "4"], "image_size"),
        (["train", "--out", "x", "--data-file", "missing.npz"], "missing.npz"),
        (["explain", "--run", "nowhere", "a.png"], "not a finished run"),
    ],
)
def test_bad_input_ends_with_one_line_and_exit_2(args: list[str], message: str, tmp_path: Path) -> None:
    result = runner.invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_bad_option_values_are_usage_errors() -> None:
    result = invoke("train", "--out", "x", "--model", "vgg")
    assert result.exit_code == 2 and "simple_cnn" in result.output


def test_explain_rejects_files_that_are_not_images(run_dir: Path, tmp_path: Path) -> None:
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    result = runner.invoke(app, ["explain", "--run", str(run_dir), str(text)], catch_exceptions=False)
    assert result.exit_code == 2 and "PNG" in result.output
    missing = runner.invoke(app, ["explain", "--run", str(run_dir), "nope.png"], catch_exceptions=False)
    assert missing.exit_code == 2 and "cannot read nope.png" in missing.output


def test_offline_mnist_names_the_missing_files(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "train",
            "--out",
            str(tmp_path / "r"),
            "--dataset",
            "mnist",
            "--data-dir",
            str(tmp_path),
            "--no-download",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 2
    assert "train-images-idx3-ubyte.gz" in result.output and "BATCHCAM_DATA_DIR" in result.output


def test_listing_commands() -> None:
    datasets = invoke("datasets")
    assert datasets.exit_code == 0 and "decoy-fashion-mnist" in datasets.output
    models = invoke("models")
    assert models.exit_code == 0 and "convnextv2_tiny" in models.output and "stages.3" in models.output


def test_every_command_has_help() -> None:
    for command in ("train", "explain", "samples", "datasets", "models"):
        result = invoke(command, "--help")
        assert result.exit_code == 0 and "Usage" in result.output
    assert "--lambda-batchcam" in invoke("train", "--help").output


def test_samples_writes_one_png_per_class(tmp_path: Path) -> None:
    result = invoke("samples", "--dataset", "shapes", "--out", str(tmp_path), "--per-class", "2")
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(
        f"{c}_{i}.png" for c in ("circle", "square", "triangle", "plus", "ring") for i in (0, 1)
    )
    with Image.open(tmp_path / "ring_0.png") as image:
        assert image.size == (28, 28) and image.mode == "L"
