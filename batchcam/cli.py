"""``batchcam``: train and explain from the command line."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import torch
import typer
from PIL import Image
from tqdm import tqdm

from batchcam import render
from batchcam.artifacts import RunFiles
from batchcam.cam.methods import CAM_METHODS
from batchcam.data.images import decode_image
from batchcam.data.limits import DEFAULT_UPLOAD_LIMITS
from batchcam.data.registry import BUILTIN_DATASETS, load_dataset, load_upload
from batchcam.errors import BatchCamError
from batchcam.explain import Explainer
from batchcam.models.registry import MODEL_NAMES
from batchcam.pipeline import train_and_report
from batchcam.training.callbacks import Callback, CheckpointToFile
from batchcam.training.config import TrainConfig
from batchcam.training.progress import EpochMetrics, Progress
from batchcam.training.state import TrainingState

app = typer.Typer(
    help="Batch-CAM: train image classifiers with a CAM-to-prototype loss, and explain their predictions.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # plain help: readable in narrow terminals and logs, greppable
)

Model = StrEnum("Model", {name: name for name in MODEL_NAMES})  # type: ignore[misc]
Method = StrEnum("Method", {name: name for name in CAM_METHODS})  # type: ignore[misc]


class Mode(StrEnum):
    baseline = "baseline"
    prototype = "prototype"
    batchcam = "batchcam"
    both = "both"


class Metric(StrEnum):
    l1 = "l1"
    l2 = "l2"
    ssim = "ssim"


class Optimizer(StrEnum):
    adam = "adam"
    adamw = "adamw"
    sgd = "sgd"


class CamGradients(StrEnum):
    exact = "exact"
    constant_weights = "constant_weights"


class Device(StrEnum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"
    mps = "mps"


class Precision(StrEnum):
    auto = "auto"
    fp32 = "fp32"
    bf16 = "bf16"


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
        Mode, typer.Option(help="Which CAM-to-prototype terms join the cross-entropy.")
    ] = Mode.batchcam,
    metric: Annotated[
        Metric, typer.Option(help="Distance of the CAM terms (ssim means 1 − SSIM).")
    ] = Metric.l1,
    lambda_prototype: Annotated[float, typer.Option(help="Weight of the per-image prototype loss.")] = 1.0,
    lambda_batchcam: Annotated[float, typer.Option(help="Weight of the per-batch Batch-CAM loss.")] = 1.0,
    cam_method: Annotated[Method, typer.Option(help="CAM used inside the loss.")] = Method("gradcam"),  # noqa: B008
    cam_gradients: Annotated[
        CamGradients,
        typer.Option(help="exact: second-order through the CAM weights; constant_weights: cheaper."),
    ] = CamGradients.exact,
    target_layer: Annotated[str | None, typer.Option(help="CAM layer (default: the model's own).")] = None,
    epochs: Annotated[int, typer.Option(help="Passes over the training split.")] = 3,
    batch_size: Annotated[int, typer.Option(help="Images per step.")] = 64,
    optimizer: Annotated[Optimizer, typer.Option(help="Optimiser.")] = Optimizer.adam,
    lr: Annotated[float, typer.Option(help="Learning rate.")] = 1e-3,
    weight_decay: Annotated[float, typer.Option(help="Weight decay.")] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed of initialisation, data order and dataset generation.")] = 0,
    image_size: Annotated[int | None, typer.Option(help="Resize images to this square size first.")] = None,
    device: Annotated[Device, typer.Option(help="auto picks CUDA, then MPS, then CPU.")] = Device.auto,
    precision: Annotated[Precision, typer.Option(help="auto uses bf16 autocast on CUDA.")] = Precision.auto,
    num_workers: Annotated[int, typer.Option(help="DataLoader worker processes.")] = 0,
    max_runtime: Annotated[
        float | None, typer.Option(help="Stop (resumably) after this many seconds.")
    ] = None,
    initial_weights: Annotated[
        Path | None, typer.Option(help="Start from a local safetensors file (matching names/shapes).")
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Where MNIST/FashionMNIST raw files live (default $BATCHCAM_DATA_DIR)."),
    ] = None,
    download: Annotated[bool, typer.Option(help="Download missing MNIST/Fashion-MNIST files.")] = True,
    resume: Annotated[bool, typer.Option(help="Continue from OUT/checkpoint.pt if it exists.")] = False,
) -> None:
    """Train a model and write its weights, report and pictures into OUT."""
    bar = ProgressBar()
    try:
        config = TrainConfig(
            dataset=data_file.name if data_file else dataset,
            model=model.value,
            mode=mode.value,
            metric=metric.value,
            lambda_prototype=lambda_prototype,
            lambda_batchcam=lambda_batchcam,
            cam_method=cam_method.value,
            cam_gradients=cam_gradients.value,
            target_layer=target_layer,
            epochs=epochs,
            batch_size=batch_size,
            optimizer=optimizer.value,
            lr=lr,
            weight_decay=weight_decay,
            seed=seed,
            image_size=image_size,
            device=device.value,
            precision=precision.value,
            num_workers=num_workers,
            max_runtime_s=max_runtime,
            initial_weights=str(initial_weights) if initial_weights else None,
        )
        files = RunFiles(out)
        state = TrainingState.load(files.checkpoint) if resume and files.checkpoint.exists() else None
        splits = load_upload(data_file, seed=seed) if data_file else None
        result = train_and_report(
            config,
            out,
            splits=splits,
            callbacks=[bar, CheckpointToFile(files.checkpoint)],
            resume=state,
            data_dir=data_dir,
            download=download,
        )
    except BatchCamError as error:
        raise _fail(error) from None
    except KeyboardInterrupt:
        typer.echo(
            f"\ninterrupted; continue with the same command plus --resume ({out}/checkpoint.pt)", err=True
        )
        raise typer.Exit(code=130) from None
    finally:
        bar.close()
    if result.report is None:
        typer.echo(f"stopped ({result.outcome}); continue with the same command plus --resume", err=True)
        raise typer.Exit(code=3)
    test = result.report["test"]
    typer.echo(
        f"test accuracy {test['accuracy']:.2%}, CAM-prototype distance L1 "
        f"{test['cam_prototype_distance']['l1']['mean']:.3f}\n"
        f"wrote {out}/: model.safetensors, report.json, prototypes.png, cam_prototypes.png, "
        f"cam_examples.png, misclassified.png, training_curves.png\n"
        f"explain new images with: batchcam explain --run {out} IMAGE.png ..."
    )


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
) -> None:
    """Write a heatmap overlay per image next to predictions.json."""
    out = out or run / "explanations"
    try:
        explainer = Explainer.from_run(run)
        decoded = [
            explainer.conform(decode_image(_read(path), DEFAULT_UPLOAD_LIMITS, name=path.name))
            for path in images
        ]
        import torch

        results = explainer.explain(torch.stack(decoded), [target] * len(decoded), method.value)
        out.mkdir(parents=True, exist_ok=True)
        names = explainer.spec.class_names
        records = []
        for path, image, result in zip(images, decoded, results, strict=True):
            overlay = render.overlay_image(image, result.cam, colormap=colormap, scale=scale)
            overlay_path = out / f"{path.stem}_overlay.png"
            overlay_path.write_bytes(render.png_bytes(overlay))
            records.append(
                {
                    "image": str(path),
                    "predicted": names[result.predicted],
                    "probability": max(result.probabilities),
                    "probabilities": dict(zip(names, result.probabilities, strict=True)),
                    "explained_class": names[result.target],
                    "distance_to_predicted_prototype": result.distance_to_predicted,
                    "overlay": str(overlay_path),
                }
            )
    except BatchCamError as error:
        raise _fail(error) from None
    (out / "predictions.json").write_text(json.dumps(records, indent=2))
    for record in records:
        typer.echo(
            f"{record['image']}: {record['predicted']} ({record['probability']:.1%}) → {record['overlay']}"
        )
    typer.echo(f"wrote {out}/predictions.json")


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


def main() -> None:
    app()
