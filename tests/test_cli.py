"""The command line: a real run, explaining images, resuming, and one-line errors."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from typer.testing import CliRunner

from batchcam import cli
from batchcam.cli import StopOnInterrupt, app
from batchcam.data import make_shapes
from batchcam.models import build
from batchcam.training import Progress

runner = CliRunner()


def invoke(*args: str, env: dict[str, str] | None = None):
    return runner.invoke(app, list(args), env=env)


def save_npz(path: Path, n_images: int, seed: int) -> Path:
    data = make_shapes(n_images, seed=seed)
    np.savez(
        path,
        images=data.images[:, 0].numpy(),
        labels=data.labels.numpy(),
        class_names=np.array(data.class_names),
    )
    return path


@pytest.fixture(scope="module")
def tiny_npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """200 images: a one-epoch run takes about a second."""
    return save_npz(tmp_path_factory.mktemp("data") / "tiny.npz", 200, seed=6)


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
    assert stopped.exit_code == 3
    # The limit counts the whole job, so the same limit would stop again: the hint says so.
    assert "--max-runtime 1 s reached" in stopped.output
    assert "--resume and a larger --max-runtime" in stopped.output
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
        (["train", "--out", "x", "--prototype-mask", "decoy"], "needs a dataset with planted decoy patches"),
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


def test_train_holds_batch_statistics_constant_in_the_loss_cams_when_asked(
    tmp_path: Path, tiny_npz: Path
) -> None:
    out = tmp_path / "run"
    options = ("--target-layer", "features.2", "--cam-batch-statistics", "constant", "--epochs", "1")
    result = invoke("train", "--out", str(out), "--data-file", str(tiny_npz), "--batch-size", "32", *options)
    assert result.exit_code == 0, result.output
    assert "mix the batch" not in result.output  # the warning the default would give
    assert json.loads((out / "report.json").read_text())["config"]["cam_batch_statistics"] == "constant"
    refused = invoke("train", "--out", str(tmp_path / "x"), "--cam-batch-statistics", "frozen")
    assert refused.exit_code == 2 and "differentiable" in refused.output


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
    train_help = invoke("train", "--help").output
    assert "--lambda-batchcam" in train_help and "--checkpoint-every-steps" in train_help
    assert "--overwrite" in train_help and "baseline|prototype|batchcam|both" in train_help


def test_samples_writes_one_png_per_class(tmp_path: Path) -> None:
    result = invoke("samples", "--dataset", "shapes", "--out", str(tmp_path), "--per-class", "2")
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(
        f"{c}_{i}.png" for c in ("circle", "square", "triangle", "plus", "ring") for i in (0, 1)
    )
    with Image.open(tmp_path / "ring_0.png") as image:
        assert image.size == (28, 28) and image.mode == "L"


class CtrlCAt(cli.ProgressBar):
    """The progress bar, plus ``presses`` Ctrl-Cs (real SIGINTs) after training step ``step``."""

    step, presses = 5, 1

    def on_progress(self, progress: Progress) -> None:
        super().on_progress(progress)
        if progress.phase == "train" and progress.step == self.step:
            for _ in range(self.presses):
                signal.raise_signal(signal.SIGINT)


def test_ctrl_c_stops_with_a_checkpoint_and_resume_completes(
    tmp_path: Path, tiny_npz: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "run"
    args = ["train", "--out", str(out), "--data-file", str(tiny_npz), "--epochs", "2", "--batch-size", "16"]
    monkeypatch.setattr(cli, "ProgressBar", CtrlCAt)
    handler_before = signal.getsignal(signal.SIGINT)

    stopped = invoke(*args, "--checkpoint-every-steps", "2", "--resume")

    assert stopped.exit_code == 130, stopped.output
    assert f"no checkpoint in {out}; starting from scratch" in stopped.output  # --resume, nothing there
    assert "stopped at step 5" in stopped.output and "--resume" in stopped.output
    assert signal.getsignal(signal.SIGINT) is handler_before
    assert torch.load(out / "checkpoint.pt", weights_only=True)["global_step"] == 5
    assert not (out / "report.json").exists()

    monkeypatch.undo()
    resumed = invoke(*args, "--checkpoint-every-steps", "2", "--resume")
    assert resumed.exit_code == 0, resumed.output
    report = json.loads((out / "report.json").read_text())
    assert [h["epoch"] for h in report["history"]] == [1, 2]
    assert report["config"]["checkpoint_every_steps"] == 2


def test_second_ctrl_c_interrupts_at_once(
    tmp_path: Path, tiny_npz: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "ProgressBar", type("CtrlCTwice", (CtrlCAt,), {"step": 1, "presses": 2}))
    out = tmp_path / "run"
    result = invoke("train", "--out", str(out), "--data-file", str(tiny_npz), "--batch-size", "16")
    assert result.exit_code == 130
    assert "interrupted; no checkpoint was written yet" in result.output


def test_interrupt_handler_is_restored_and_asks_to_stop_once() -> None:
    before = signal.getsignal(signal.SIGINT)
    stop = StopOnInterrupt()
    with stop.installed():
        assert not stop.should_stop()
        signal.raise_signal(signal.SIGINT)
        assert stop.should_stop()
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before


def test_out_holding_a_run_needs_resume_or_overwrite(tmp_path: Path, tiny_npz: Path) -> None:
    out = tmp_path / "run"
    (out / "prototypes").mkdir(parents=True)
    (out / "report.json").write_text("{}")
    (out / "checkpoint.pt").write_bytes(b"old")
    (out / "prototypes" / "7.png").write_bytes(b"old")
    (out / "my notes.txt").write_text("not the run's")
    args = ["train", "--out", str(out), "--data-file", str(tiny_npz), "--epochs", "1", "--batch-size", "32"]

    refused = runner.invoke(app, args, catch_exceptions=False)
    assert refused.exit_code == 2
    assert "already holds a run (report.json, checkpoint.pt)" in refused.output
    both = runner.invoke(app, [*args, "--resume", "--overwrite"], catch_exceptions=False)
    assert both.exit_code == 2 and "choose one" in both.output
    assert (out / "report.json").read_text() == "{}"

    initial = tmp_path / "init.safetensors"
    save_file({k: v.contiguous() for k, v in build("simple_cnn", 10).state_dict().items()}, str(initial))
    replaced = invoke(*args, "--overwrite", "--initial-weights", str(initial))
    assert replaced.exit_code == 0, replaced.output
    assert "0 adapted, 2 skipped (head.2.bias, head.2.weight), 2 missing" in replaced.output
    assert json.loads((out / "report.json").read_text())["config"]["epochs"] == 1
    assert not (out / "prototypes" / "7.png").exists()
    assert (out / "my notes.txt").read_text() == "not the run's"


def test_overwrite_with_a_bad_option_keeps_the_previous_run(tmp_path: Path, tiny_npz: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "report.json").write_text('{"old": true}')
    args = ["train", "--out", str(out), "--data-file", str(tiny_npz), "--epochs", "1", "--overwrite"]

    result = runner.invoke(app, [*args, "--target-layer", "no.such.layer"], catch_exceptions=False)

    assert result.exit_code == 2 and "no.such.layer" in result.output
    assert (out / "report.json").read_text() == '{"old": true}'


def test_a_subcommand_without_its_dependencies_says_what_to_install() -> None:
    # As on a library-only install: the service's `keys` plugin cannot import SQLAlchemy.
    script = (
        "import sys; sys.modules['sqlalchemy'] = None; sys.argv = ['batchcam', *sys.argv[1:]]\n"
        "from batchcam.cli import main; main()"
    )
    keys = subprocess.run([sys.executable, "-c", script, "keys"], capture_output=True, text=True)
    models = subprocess.run([sys.executable, "-c", script, "models"], capture_output=True, text=True)

    assert keys.returncode == 2 and "Traceback" not in keys.stderr
    assert "pip install 'batchcam[service]'" in keys.stderr and "sqlalchemy" in keys.stderr
    assert models.returncode == 0 and "resnet18" in models.stdout


def test_a_damaged_checkpoint_is_one_line_not_a_traceback(tmp_path: Path, tiny_npz: Path) -> None:
    (tmp_path / "checkpoint.pt").write_bytes(b"\x80\x02 not a checkpoint")
    result = runner.invoke(
        app,
        ["train", "--out", str(tmp_path), "--data-file", str(tiny_npz), "--resume"],
        catch_exceptions=False,
    )
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"{tmp_path / 'checkpoint.pt'} is not a usable Batch-CAM training checkpoint" in result.output
    assert "--overwrite" in result.output


def test_explain_names_a_missing_prototypes_file(run_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes((run_dir / "model.safetensors").read_bytes())
    image = run_dir / "prototypes" / "0.png"
    result = runner.invoke(app, ["explain", "--run", str(tmp_path), str(image)], catch_exceptions=False)
    assert result.exit_code == 2
    assert "not a finished run: prototypes.safetensors is missing" in result.output


def test_explain_cannot_write_its_output_is_one_line(run_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "a_file").write_text("")
    image = run_dir / "prototypes" / "0.png"
    result = runner.invoke(
        app,
        ["explain", "--run", str(run_dir), "--out", str(tmp_path / "a_file" / "out"), str(image)],
        catch_exceptions=False,
    )
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"error: cannot write {tmp_path / 'a_file' / 'out'}" in result.output


def test_explain_keeps_inputs_with_the_same_name_apart(run_dir: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "a" / "x.png", tmp_path / "b" / "x.png"
    for folder, source in ((first, "0.png"), (second, "3.png")):
        folder.parent.mkdir()
        folder.write_bytes((run_dir / "prototypes" / source).read_bytes())
    out = tmp_path / "out"
    result = invoke("explain", "--run", str(run_dir), "--out", str(out), str(first), str(second))
    assert result.exit_code == 0, result.output
    overlays = [record["overlay"] for record in json.loads((out / "predictions.json").read_text())]
    assert overlays == [str(out / "0_x_overlay.png"), str(out / "1_x_overlay.png")]
    assert all(Path(overlay).exists() for overlay in overlays)
