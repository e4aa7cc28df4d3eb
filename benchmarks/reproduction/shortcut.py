"""Did a model take the decoy shortcut? Measured after training, from the run folders of decoy cells.

On a decoy test split every patch signals a random class ``r``. Two numbers per run:

- ``follows_decoy``: among test images whose patch disagrees with the label, the share predicted
  as the patch's class ``r`` (a model blind to the patch does so by chance, for about 1/9 of its
  errors: (1 − accuracy)/9; a pure shortcut model, always);
- ``decoy_mass_predicted``: the share of the *predicted* class's CAM mass on the patch (the
  evaluation's ``decoy_energy`` uses the true class's CAM, which a shortcut model need not put there).

Results are cached in ``OUT/shortcut.jsonl`` by run key: a run is analysed once.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from batchcam.artifacts import RunFiles
from batchcam.data.decoy import signalled_classes
from batchcam.explain import Explainer
from reproduction.cells import Cell
from reproduction.results import ResultsLog
from reproduction.runner import test_split

SHORTCUT_FILE = "shortcut.jsonl"
BATCH = 500


def shortcut_metrics(
    rows: Sequence[dict[str, Any]], out: Path, data_dir: Path | None
) -> dict[str, dict[str, Any]]:
    """Run key → its shortcut numbers, for every decoy row whose run folder is here."""
    cache = ResultsLog(out / SHORTCUT_FILE)
    known = {row["key"]: row for row in cache.rows()}
    for row in rows:
        cell = Cell.from_dict(row["cell"])
        if row["key"] in known or not cell.dataset.startswith("decoy-"):
            continue
        if not RunFiles(Path(row["run_dir"])).model.exists():
            continue
        known[row["key"]] = {"key": row["key"], **analyse(cell, Path(row["run_dir"]), data_dir)}
        cache.append(known[row["key"]])
    return known


def analyse(cell: Cell, run_dir: Path, data_dir: Path | None) -> dict[str, Any]:
    test = test_split(cell, data_dir)
    explainer = Explainer.from_run(run_dir, torch.device("cpu"))
    predicted, mass = [], []
    for start in range(0, len(test), BATCH):
        rows = slice(start, start + BATCH)
        explained = explainer.explain(test.images[rows])
        cams = torch.stack([e.cam for e in explained])
        assert test.decoy_masks is not None  # a decoy split
        on_patch = (cams * test.decoy_masks[rows]).sum(dim=(1, 2)) / cams.sum(dim=(1, 2)).clamp(min=1e-12)
        predicted.append(torch.tensor([e.predicted for e in explained]))
        mass.append(on_patch)
    prediction, signalled = torch.cat(predicted), signalled_classes(test)
    disagreeing = signalled != test.labels
    return {
        "follows_decoy": float((prediction[disagreeing] == signalled[disagreeing]).float().mean()),
        "decoy_mass_predicted": float(torch.cat(mass).mean()),
        "disagreeing_images": int(disagreeing.sum()),
    }
