"""One picture of the study: each method's CAM prototypes (seed 0), stacked with its name."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from PIL import Image, ImageDraw

from batchcam.artifacts import RunFiles
from reproduction.cells import Cell
from reproduction.study import BATCHCAM, CONTROLS, METHODS, STUDY_DATASET, baseline

LABEL_HEIGHT = 18
SCALE = 0.5  # 13 full-size panels would make a 5,400-pixel-high picture; a palette keeps it small


def study_cells_seed0(chosen: dict[str, float]) -> list[tuple[str, Cell]]:
    batchcam = BATCHCAM.cell(chosen[BATCHCAM.name], 0)
    return [
        ("decoy baseline", baseline(STUDY_DATASET, 0)),
        *((f"{m.name} (λ = {chosen[m.name]:g})", m.cell(chosen[m.name], 0)) for m in METHODS),
        *((f"control: toward {t}", replace(batchcam, prototype_target=t)) for t in CONTROLS),
    ]


def write_study_figure(chosen: dict[str, float], runs_dir: Path, path: Path) -> Path | None:
    """Stack the seed-0 runs' ``cam_prototypes.png``; None when none of them has one."""
    panels = [
        (title, Image.open(picture).convert("RGB"))
        for title, cell in study_cells_seed0(chosen)
        if (picture := RunFiles(runs_dir / cell.key).root / "cam_prototypes.png").exists()
    ]
    if not panels:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    picture = stacked(panels)
    size = (round(picture.width * SCALE), round(picture.height * SCALE))
    picture.resize(size, Image.Resampling.LANCZOS).quantize(colors=256).save(path, optimize=True)
    return path


def stacked(panels: Sequence[tuple[str, Image.Image]]) -> Image.Image:
    width = max(image.width for _, image in panels)
    height = sum(image.height + LABEL_HEIGHT for _, image in panels)
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    top = 0
    for title, image in panels:
        draw.text((4, top + 3), title, fill="black")
        canvas.paste(image, (0, top + LABEL_HEIGHT))
        top += image.height + LABEL_HEIGHT
    return canvas
