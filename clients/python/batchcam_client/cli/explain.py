"""``batchcam-client explain MODEL IMAGES… --out DIR``: heatmaps of local images."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated

import numpy
import typer

from batchcam_client.cli.options import ApiKey, Url, connect
from batchcam_client.spec import CamMethod

NPZ_ITEM = re.compile(r"(?P<file>.*)\[(?P<position>\d+)\]")  # how the service names an .npz's images


def explain(
    model_id: Annotated[str, typer.Argument(help="The model's id.")],
    images: Annotated[list[Path], typer.Argument(help="PNG or JPEG files, or .npz files of many images.")],
    out: Annotated[Path, typer.Option(help="Folder for the heatmaps and predictions.json.")],
    method: Annotated[str, typer.Option(help="CAM method.")] = "gradcam",
    colormap: Annotated[str, typer.Option(help="Overlay colormap (matplotlib name).")] = "jet",
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the result.")] = 300.0,
    url: Url = None,
    api_key: ApiKey = None,
) -> None:
    """Writes STEM_overlay.png, STEM_raw.png and STEM.npy per image, and predictions.json (an .npz's
    images are STEM_0, STEM_1, …)."""
    for image in images:
        if not image.is_file():
            raise FileNotFoundError(f"no such image: {image}")
    out.mkdir(parents=True, exist_ok=True)
    chosen: CamMethod = method  # type: ignore[assignment]  # the service names a wrong one (422)
    with connect(url, api_key) as client:
        submitted = client.explanations.submit(model_id, images, method=chosen, wait=30)
        explanation = client.explanations.wait(submitted.id, timeout=timeout)
        stems = unique_stems([item.source.filename or "" for item in explanation.items])
        for item, stem in zip(explanation.items, stems, strict=True):
            if item.error is not None:
                typer.echo(f"{item.source.filename}: {item.error.code}: {item.error.message}", err=True)
                continue
            heatmaps = client.explanations
            heatmaps.heatmap_png(explanation.id, item.index, colormap=colormap).save(
                out / f"{stem}_overlay.png"
            )
            heatmaps.heatmap_png(explanation.id, item.index, style="raw").save(out / f"{stem}_raw.png")
            numpy.save(out / f"{stem}.npy", heatmaps.heatmap(explanation.id, item.index))
    (out / "predictions.json").write_text(json.dumps(explanation.model_dump(mode="json"), indent=2))
    count = len(explanation.items) - explanation.failed_items
    typer.echo(f"explanation {explanation.id} {explanation.state}: {count} heatmaps in {out}")


def unique_stems(names: list[str]) -> list[str]:
    """Each item's file stem (``x.npz[3]``, an .npz's image, → ``x_3``), prefixed with its position
    when two items share one (as `batchcam explain`)."""
    stems = [stem_of(name) for name in names]
    clash = len(set(stems)) < len(stems)
    return [f"{position}_{stem}" if clash else stem for position, stem in enumerate(stems)]


def stem_of(name: str) -> str:
    in_npz = NPZ_ITEM.fullmatch(name)
    if in_npz is None:
        return Path(name).stem or "image"
    return f"{Path(in_npz['file']).stem or 'image'}_{in_npz['position']}"
