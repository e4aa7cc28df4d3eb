"""``batchcam``: train and explain from the command line."""

from __future__ import annotations

import inspect
import json
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from types import FrameType
from typing import Annotated, Any, NoReturn

import torch
import typer
from PIL import Image
from tqdm import tqdm

from batchcam import render
from batchcam.artifacts import EXPLANATIONS_DIR, RunFiles
from batchcam.cam.methods import CAM_METHODS
from batchcam.cli_options import config_from_options, config_parameters
from batchcam.data.images import decode_image
from batchcam.data.registry import load_dataset, load_upload
from batchcam.errors import BatchCamError, ConfigError
from batchcam.explain import Explainer, Explanation
from batchcam.pipeline import RunOutput, train_and_report
from batchcam.spec.datasets import BUILTIN_DATASETS
from batchcam.spec.image_metrics import IMAGE_METRICS
from batchcam.spec.limits import DEFAULT_UPLOAD_LIMITS
from batchcam.spec.names import (
    MODEL_NAMES,
)
from batchcam.spec.training import TrainConfig
from batchcam.training.callbacks import Callback, CheckpointToFile
from batchcam.training.progress import EpochMetrics, Progress
from batchcam.training.state import TrainingState

app = typer.Typer(
    help="Batch-CAM: train image classifiers with a CAM-to-prototype loss, and explain their predictions.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # plain help: readable in narrow terminals and logs, greppable
)

# Choices built from the library's own lists, so the CLI accepts exactly what the library does.
Method = StrEnum("Method", {name: name for name in CAM_METHODS})  # type: ignore[misc]


class ProgressBar(Callback):
    """A tqdm bar over all optimisation steps, with a line per finished epoch."""

    def __init__(self) -> None:
        self.bar: tqdm | None = None

    def on_progress(self, progress: Progress) -> None:
        if self.bar is None:
            self.bar = tqdm(
                total=progress.total_steps, initial=progress.step, unit="step", dynamic_ncols=True
            )
        self.bar.set_description(
            f"epoch {progress.epoch + 1}/{progress.epochs} {progress.phase}", refresh=False
        )
        if progress.loss is not None:
            self.bar.set_postfix(loss=f"{progress.loss:.4f}", refresh=False)
        self.bar.update(progress.step - self.bar.n)  # redraws at most every tqdm.mininterval

    def on_epoch_end(self, metrics: EpochMetrics, progress: Progress) -> None:
        tqdm.write(
            f"epoch {metrics.epoch}: train loss {metrics.train_loss:.4f}, test accuracy "
            f"{metrics.test_accuracy:.2%}, CAM-prototype L1 {metrics.test_cam_distance_l1:.3f}"
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class StopOnInterrupt(Callback):
    """Ctrl-C asks the trainer to stop after the current step (it writes a checkpoint first, so
    ``--resume`` continues from there); a second Ctrl-C raises KeyboardInterrupt as usual."""

    def __init__(self) -> None:
        self.requested = False
        self.owner = os.getpid()

    def should_stop(self) -> bool:
        return self.requested

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if os.getpid() != self.owner:
            return  # a forked DataLoader worker inherited the handler: the main process decides
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        tqdm.write(
            "\nstopping after this step, with a checkpoint (Ctrl-C again to abort now)", file=sys.stderr
        )

    @contextmanager
    def installed(self) -> Iterator[None]:
        """The handler for the duration of the block, then whatever was there before."""
        if threading.current_thread() is not threading.main_thread():
            yield  # signal handlers can only be set from the main thread (e.g. a caller's thread)
            return
        previous = signal.signal(signal.SIGINT, self.handle)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, signal.SIG_DFL if previous is None else previous)


def _fail(error: BatchCamError) -> typer.Exit:
    typer.echo(f"error: {error.message}", err=True)
    return typer.Exit(code=2)


def train(
    out: Path,
    data_file: Path | None,
    data_dir: Path | None,
    download: bool,
    resume: bool,
    overwrite: bool,
    **options: Any,
) -> None:
    """Train a model and write its weights, report and pictures into OUT.

    Ctrl-C stops after the current step and writes a checkpoint: continue with --resume.
    """
    files, bar, interrupt = RunFiles(out), ProgressBar(), StopOnInterrupt()
    try:
        overrides = {"dataset": data_file.name} if data_file else {}
        config = config_from_options(options, **overrides)
        _check_out_dir(files, resume=resume, overwrite=overwrite)
        state = _resume_state(files) if resume else None
        splits = load_upload(data_file, seed=config.seed) if data_file else None
        with interrupt.installed():
            result = train_and_report(
                config,
                out,
                splits=splits,
                callbacks=[bar, interrupt, CheckpointToFile(files.checkpoint)],
                resume=state,
                data_dir=data_dir,
                download=download,
                # only once everything is checked: bad options or data leave the previous run alone
                on_ready=files.remove_run if overwrite else None,
            )
    except BatchCamError as error:
        raise _fail(error) from None
    except KeyboardInterrupt:
        hint = (
            f"continue from the last checkpoint ({files.checkpoint}) with the same command plus --resume"
            if files.checkpoint.exists()
            else "no checkpoint was written yet"
        )
        typer.echo(f"\ninterrupted; {hint}", err=True)
        raise typer.Exit(code=130) from None
    finally:
        bar.close()
    if result.initial_weights is not None:
        typer.echo(f"initial weights {config.initial_weights}: {result.initial_weights.describe()}")
    if result.report is None:
        _explain_stop(result, config)
    test = result.report["test"]
    typer.echo(
        f"test accuracy {test['accuracy']:.2%}, CAM-prototype distance L1 "
        f"{test['cam_prototype_distance']['l1']['mean']:.3f}\n"
        f"wrote {out}/: {', '.join(result.report['artifacts'].values())}\n"
        f"explain new images with: batchcam explain --run {out} IMAGE.png ..."
    )


def _option(flag: str, kind: Any, default: Any, help_text: str) -> inspect.Parameter:
    annotation = Annotated[kind, typer.Option(flag, help=help_text)]
    return inspect.Parameter(
        flag.split("/")[0].strip("-").replace("-", "_"),
        inspect.Parameter.KEYWORD_ONLY,
        default=default,
        annotation=annotation,
    )


# The training options come from TrainConfig (batchcam.spec.training); these are the command's own.
train.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    [
        _option(
            "--out",
            Path,
            inspect.Parameter.empty,
            "Run directory: weights, report.json, PNGs and the checkpoint go here.",
        ),
        _option(
            "--data-file",
            Path | None,
            None,
            "Your own dataset: a .npz (images, labels) or a .zip of class folders; replaces --dataset.",
        ),
        *config_parameters(),
        _option(
            "--data-dir",
            Path | None,
            None,
            "Where MNIST/FashionMNIST raw files live (default $BATCHCAM_DATA_DIR).",
        ),
        _option("--download/--no-download", bool, True, "Download missing MNIST/Fashion-MNIST files."),
        _option("--resume/--no-resume", bool, False, "Continue from OUT/checkpoint.pt if it exists."),
        _option(
            "--overwrite/--no-overwrite",
            bool,
            False,
            "Delete the run already in OUT (weights, report, pictures, checkpoint) first.",
        ),
    ]
)
app.command()(train)


def _check_out_dir(files: RunFiles, *, resume: bool, overwrite: bool) -> None:
    if resume and overwrite:
        raise ConfigError("--resume continues the run in OUT and --overwrite deletes it; choose one")
    existing = files.existing_run()
    if existing and not (resume or overwrite):
        raise ConfigError(
            f"{files.root} already holds a run ({', '.join(path.name for path in existing)}); "
            "continue it with --resume, replace it with --overwrite, or choose another --out",
            code="run_exists",
        )


def _resume_state(files: RunFiles) -> TrainingState | None:
    if not files.checkpoint.exists():
        typer.echo(f"warning: no checkpoint in {files.root}; starting from scratch", err=True)
        return None
    try:
        return TrainingState.load(files.checkpoint)
    except ConfigError as error:
        raise ConfigError(
            f"{error.message}; start the run again with --overwrite instead of --resume", code=error.code
        ) from error


def _explain_stop(result: RunOutput, config: TrainConfig) -> NoReturn:
    """How a run that stopped early can go on; exit 3 after the time limit, 130 after Ctrl-C."""
    checkpoint = result.files.checkpoint
    if result.outcome == "timed_out":
        # The limit is the job's total: resuming with the same limit would stop again at once.
        typer.echo(
            f"stopped: --max-runtime {config.max_runtime_s:g} s reached after "
            f"{result.final_state.elapsed_s:.0f} s of training in all (the limit counts every resume); "
            f"continue from {checkpoint} with --resume and a larger --max-runtime",
            err=True,
        )
        raise typer.Exit(code=3)
    typer.echo(
        f"stopped at step {result.final_state.global_step} with a checkpoint in {checkpoint}; "
        "continue with the same command plus --resume",
        err=True,
    )
    raise typer.Exit(code=130)


@app.command()
def explain(
    images: Annotated[list[Path], typer.Argument(help="PNG or JPEG files to explain.")],
    run: Annotated[Path, typer.Option(help="A run directory written by `batchcam train`.")],
    out: Annotated[
        Path | None, typer.Option(help="Where to write results (default RUN/explanations).")
    ] = None,
    target: Annotated[
        int | None,
        typer.Option(help="Explain this class index for every image (default: the predicted class)."),
    ] = None,
    method: Annotated[Method, typer.Option(help="CAM method.")] = Method("gradcam"),  # noqa: B008
    colormap: Annotated[str, typer.Option(help="Any matplotlib colormap name.")] = render.DEFAULT_COLORMAP,
    scale: Annotated[int, typer.Option(help="Upscale the written PNGs by this factor.")] = 8,
    metrics: Annotated[
        str,
        typer.Option(
            help=f"Comma-separated faithfulness metrics per image ({', '.join(IMAGE_METRICS)}, or all), "
            "each beside a random map's score: written to predictions.json."
        ),
    ] = "",
) -> None:
    """Write a heatmap overlay per image next to predictions.json."""
    out = out or run / EXPLANATIONS_DIR
    try:
        explainer = Explainer.from_run(run)
        decoded = [
            explainer.conform(decode_image(_read(path), DEFAULT_UPLOAD_LIMITS, name=path.name))
            for path in images
        ]
        chosen = _metric_names(metrics)
        results = explainer.explain(torch.stack(decoded), [target] * len(decoded), method.value, chosen)
        records = _write_explanations(
            out, images, decoded, results, explainer.spec.class_names, colormap, scale
        )
    except BatchCamError as error:
        raise _fail(error) from None
    for record, result in zip(records, results, strict=True):
        typer.echo(
            f"{record['image']}: {record['predicted']} ({record['probability']:.1%}) → {record['overlay']}"
        )
        for name, score in result.faithfulness.items():
            typer.echo(
                f"  {name}: {score['score']:.3f} (random map {score['random']:.3f}; "
                f"{score['better']} is better)"
            )
    typer.echo(f"wrote {out}/predictions.json")


def _write_explanations(
    out: Path,
    images: list[Path],
    decoded: list[torch.Tensor],
    results: list[Explanation],
    names: tuple[str, ...],
    colormap: str,
    scale: int,
) -> list[dict[str, object]]:
    """One overlay PNG per image and predictions.json; a failed write is a one-line error."""
    records = []
    try:
        out.mkdir(parents=True, exist_ok=True)
        for path, name, image, result in zip(images, _overlay_names(images), decoded, results, strict=True):
            overlay = render.overlay_image(image, result.cam, colormap=colormap, scale=scale)
            overlay_path = out / name
            overlay_path.write_bytes(render.png_bytes(overlay))
            records.append(
                {
                    "image": str(path),
                    "predicted": names[result.predicted],
                    "probability": max(result.probabilities),
                    "probabilities": dict(zip(names, result.probabilities, strict=True)),
                    "explained_class": names[result.target],
                    "distance_to_predicted_prototype": result.distance_to_predicted,
                    **({"faithfulness": result.faithfulness} if result.faithfulness else {}),
                    "overlay": str(overlay_path),
                }
            )
        (out / "predictions.json").write_text(json.dumps(records, indent=2))
    except OSError as error:
        where = error.filename or out
        raise BatchCamError(
            f"cannot write {where}: {error.strerror or error}", code="unwritable_output"
        ) from error
    return records


def _metric_names(option: str) -> list[str]:
    """``--metrics`` → names, ``all`` meaning every per-image metric; unknown names fail in the library."""
    names = [name.strip() for name in option.split(",") if name.strip()]
    return list(IMAGE_METRICS) if names == ["all"] else names


def _overlay_names(images: list[Path]) -> list[str]:
    """``STEM_overlay.png``; when two inputs share a stem (a/x.png, b/x.png, x.jpg) every name gets
    its input's position in front, so no overlay overwrites another."""
    stems = [path.stem.casefold() for path in images]  # casefold: case-insensitive file systems
    if len(set(stems)) == len(stems):
        return [f"{path.stem}_overlay.png" for path in images]
    return [f"{index}_{path.stem}_overlay.png" for index, path in enumerate(images)]


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise BatchCamError(f"cannot read {path}: {error.strerror}", code="unreadable_file") from error


@app.command()
def samples(
    out: Annotated[Path, typer.Option(help="Folder to write the PNGs into.")],
    dataset: Annotated[
        str, typer.Option(help=f"Built-in dataset: {', '.join(BUILTIN_DATASETS)}.")
    ] = "shapes",
    per_class: Annotated[int, typer.Option(help="Images per class, from the test split.")] = 1,
    data_dir: Annotated[Path | None, typer.Option(help="Where MNIST/FashionMNIST raw files live.")] = None,
    download: Annotated[bool, typer.Option(help="Download missing MNIST/Fashion-MNIST files.")] = True,
) -> None:
    """Write a few test images of a dataset as PNGs (handy inputs for `batchcam explain`)."""
    try:
        splits = load_dataset(dataset, data_dir=data_dir, download=download)
    except BatchCamError as error:
        raise _fail(error) from None
    out.mkdir(parents=True, exist_ok=True)
    test = splits.test
    for label, name in enumerate(test.class_names):
        for rank, index in enumerate(torch.nonzero(test.labels == label).flatten()[:per_class].tolist()):
            image = test.images[index]
            pixels = image[0].numpy() if image.shape[0] == 1 else image.permute(1, 2, 0).numpy()
            path = out / f"{_safe(name)}_{rank}.png"
            path.write_bytes(render.png_bytes(Image.fromarray(pixels)))
            typer.echo(str(path))


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


@app.command()
def datasets() -> None:
    """List the built-in datasets."""
    for name, description in BUILTIN_DATASETS.items():
        typer.echo(f"{name:22} {description}")


@app.command()
def models() -> None:
    """List the models with their default CAM layer."""
    from batchcam.models import build

    for name in MODEL_NAMES:
        model = build(name, num_classes=2)
        typer.echo(f"{name:16} layer {model.default_target_layer:10} {getattr(model, 'adaptation', '')}")


PLUGIN_GROUP = "batchcam.cli"  # e.g. the service's `batchcam keys ...`, installed with it


def main() -> None:
    from importlib.metadata import entry_points

    for plugin in entry_points(group=PLUGIN_GROUP):
        try:
            app.add_typer(plugin.load(), name=plugin.name)
        except ImportError as error:  # the package is installed without its service extra
            app.add_typer(_unavailable(plugin.name, error), name=plugin.name)
    app()


def _unavailable(name: str, error: ImportError) -> typer.Typer:
    """Stands in for a sub-command whose dependencies are missing: says so instead of a traceback."""
    stub = typer.Typer(help=f"(unavailable: needs the service dependencies, missing {error.name})")

    @stub.callback(invoke_without_command=True)
    def explain_missing() -> None:
        typer.echo(
            f"error: `batchcam {name}` needs the service dependencies (missing module {error.name!r}); "
            "install them with: pip install 'batchcam[service]'",
            err=True,
        )
        raise typer.Exit(code=2)

    return stub
