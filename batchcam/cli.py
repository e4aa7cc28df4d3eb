"""``batchcam``: train and explain from the command line."""

from __future__ import annotations

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
from batchcam.data.images import decode_image
from batchcam.data.limits import DEFAULT_UPLOAD_LIMITS
from batchcam.data.registry import BUILTIN_DATASETS, load_dataset, load_upload
from batchcam.errors import BatchCamError, ConfigError
from batchcam.explain import Explainer, Explanation
from batchcam.faithfulness.image_scores import IMAGE_METRICS
from batchcam.losses import MODES
from batchcam.metrics import METRICS
from batchcam.models.registry import MODEL_NAMES
from batchcam.pipeline import RunOutput, train_and_report
from batchcam.prototypes import PROTOTYPE_MASKS
from batchcam.training.callbacks import Callback, CheckpointToFile
from batchcam.training.config import CAM_GRADIENTS, DEVICES, OPTIMIZERS, PRECISIONS, TrainConfig
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
Model = StrEnum("Model", {name: name for name in MODEL_NAMES})  # type: ignore[misc]
Method = StrEnum("Method", {name: name for name in CAM_METHODS})  # type: ignore[misc]
Mode = StrEnum("Mode", {name: name for name in MODES})  # type: ignore[misc]
Metric = StrEnum("Metric", {name: name for name in METRICS})  # type: ignore[misc]
Optimizer = StrEnum("Optimizer", {name: name for name in OPTIMIZERS})  # type: ignore[misc]
PrototypeMask = StrEnum("PrototypeMask", {name: name for name in PROTOTYPE_MASKS})  # type: ignore[misc]
CamGradients = StrEnum("CamGradients", {name: name for name in CAM_GRADIENTS})  # type: ignore[misc]
Device = StrEnum("Device", {name: name for name in DEVICES})  # type: ignore[misc]
Precision = StrEnum("Precision", {name: name for name in PRECISIONS})  # type: ignore[misc]


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


@app.command()
def train(
    out: Annotated[
        Path, typer.Option(help="Run directory: weights, report.json, PNGs and the checkpoint go here.")
    ],
    dataset: Annotated[
        str, typer.Option(help=f"Built-in dataset: {', '.join(BUILTIN_DATASETS)}. Ignored with --data-file.")
    ] = "shapes",
    data_file: Annotated[
        Path | None,
        typer.Option(help="Your own dataset: a .npz (images, labels) or a .zip of class folders."),
    ] = None,
    model: Annotated[Model, typer.Option(help="Architecture.")] = Model("simple_cnn"),  # noqa: B008
    mode: Annotated[
        Mode,
        typer.Option(help="Which CAM-to-prototype terms join the cross-entropy."),
    ] = Mode("batchcam"),  # noqa: B008
    metric: Annotated[
        Metric,
        typer.Option(help="Distance of the CAM terms (ssim means 1 − SSIM)."),
    ] = Metric("l1"),  # noqa: B008
    lambda_prototype: Annotated[float, typer.Option(help="Weight of the per-image prototype loss.")] = 1.0,
    lambda_batchcam: Annotated[float, typer.Option(help="Weight of the per-batch Batch-CAM loss.")] = 1.0,
    prototype_mask: Annotated[
        PrototypeMask,
        typer.Option(help="decoy: leave the decoy patch out of the class prototypes (decoy-… datasets)."),
    ] = PrototypeMask("none"),  # noqa: B008
    cam_method: Annotated[Method, typer.Option(help="CAM used inside the loss.")] = Method("gradcam"),  # noqa: B008
    cam_gradients: Annotated[
        CamGradients,
        typer.Option(help="exact: second-order through the CAM weights; constant_weights: cheaper."),
    ] = CamGradients("exact"),  # noqa: B008
    target_layer: Annotated[str | None, typer.Option(help="CAM layer (default: the model's own).")] = None,
    epochs: Annotated[int, typer.Option(help="Passes over the training split.")] = 3,
    batch_size: Annotated[int, typer.Option(help="Images per step.")] = 64,
    optimizer: Annotated[Optimizer, typer.Option(help="Optimiser.")] = Optimizer("adam"),  # noqa: B008
    lr: Annotated[float, typer.Option(help="Learning rate.")] = 1e-3,
    weight_decay: Annotated[float, typer.Option(help="Weight decay.")] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed of initialisation, data order and dataset generation.")] = 0,
    image_size: Annotated[int | None, typer.Option(help="Resize images to this square size first.")] = None,
    device: Annotated[Device, typer.Option(help="auto picks CUDA, then MPS, then CPU.")] = Device("auto"),  # noqa: B008
    precision: Annotated[
        Precision,
        typer.Option(help="auto uses bf16 autocast on CUDA."),
    ] = Precision("auto"),  # noqa: B008
    num_workers: Annotated[int, typer.Option(help="DataLoader worker processes.")] = 0,
    max_runtime: Annotated[
        float | None,
        typer.Option(help="Stop (resumably) after this many seconds of training, counted over all resumes."),
    ] = None,
    checkpoint_every_steps: Annotated[
        int | None,
        typer.Option(
            help="Also write OUT/checkpoint.pt every N steps (it is always written after each epoch)."
        ),
    ] = None,
    initial_weights: Annotated[
        Path | None, typer.Option(help="Start from a local safetensors file (matching names/shapes).")
    ] = None,
    bn_recalibration_batches: Annotated[
        int,
        typer.Option(help="Training batches that recompute BatchNorm statistics after each epoch (0: off)."),
    ] = 100,
    faithfulness_images: Annotated[
        int,
        typer.Option(
            help="Test images whose CAMs get the report's faithfulness assessment "
            "(deletion, insertion, ROAD, sanity checks; 0: skip)."
        ),
    ] = 64,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Where MNIST/FashionMNIST raw files live (default $BATCHCAM_DATA_DIR)."),
    ] = None,
    download: Annotated[bool, typer.Option(help="Download missing MNIST/Fashion-MNIST files.")] = True,
    resume: Annotated[bool, typer.Option(help="Continue from OUT/checkpoint.pt if it exists.")] = False,
    overwrite: Annotated[
        bool,
        typer.Option(help="Delete the run already in OUT (weights, report, pictures, checkpoint) first."),
    ] = False,
) -> None:
    """Train a model and write its weights, report and pictures into OUT.

    Ctrl-C stops after the current step and writes a checkpoint: continue with --resume.
    """
    files, bar, interrupt = RunFiles(out), ProgressBar(), StopOnInterrupt()
    try:
        config = TrainConfig(
            dataset=data_file.name if data_file else dataset,
            model=_value(model),
            mode=_value(mode),
            metric=_value(metric),
            lambda_prototype=lambda_prototype,
            lambda_batchcam=lambda_batchcam,
            prototype_mask=_value(prototype_mask),
            cam_method=_value(cam_method),
            cam_gradients=_value(cam_gradients),
            target_layer=target_layer,
            epochs=epochs,
            batch_size=batch_size,
            optimizer=_value(optimizer),
            lr=lr,
            weight_decay=weight_decay,
            seed=seed,
            image_size=image_size,
            device=_value(device),
            precision=_value(precision),
            num_workers=num_workers,
            max_runtime_s=max_runtime,
            checkpoint_every_steps=checkpoint_every_steps,
            initial_weights=str(initial_weights) if initial_weights else None,
            bn_recalibration_batches=bn_recalibration_batches,
            faithfulness_images=faithfulness_images,
        )
        _check_out_dir(files, resume=resume, overwrite=overwrite)
        state = _resume_state(files) if resume else None
        splits = load_upload(data_file, seed=seed) if data_file else None
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
        typer.echo(f"initial weights {initial_weights}: {result.initial_weights.describe()}")
    if result.report is None:
        _explain_stop(result, config)
    test = result.report["test"]
    typer.echo(
        f"test accuracy {test['accuracy']:.2%}, CAM-prototype distance L1 "
        f"{test['cam_prototype_distance']['l1']['mean']:.3f}\n"
        f"wrote {out}/: {', '.join(result.report['artifacts'].values())}\n"
        f"explain new images with: batchcam explain --run {out} IMAGE.png ..."
    )


def _value(choice: StrEnum) -> Any:
    # The choices were built from the library's constants; TrainConfig checks the value again.
    return choice.value


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
