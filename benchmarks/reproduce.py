"""Reproduce Batch-CAM's experiments and the shortcut test with the library's own trainer.

Runs named grids of dataset × model × mode × metric × λ × seed cells, one JSON line per finished run
(re-running a grid skips finished cells), then a Markdown table of mean ± std over seeds and figures.

    .venv/bin/python benchmarks/reproduce.py run --grid tiny --out /tmp/tiny          # < 1 min on CPU
    .venv/bin/python benchmarks/reproduce.py run --grid paper-cpu --grid decoy-cpu --out docs/results
    .venv/bin/python benchmarks/reproduce.py list --grid paper-gpu                    # cells, done or not
    .venv/bin/python benchmarks/reproduce.py merge gpu/results.jsonl --out docs/results
    .venv/bin/python benchmarks/reproduce.py report --out docs/results                # table + figures
    .venv/bin/python benchmarks/reproduce.py study-report --out docs/results/study    # the study's tables

MNIST and Fashion-MNIST come from ``--data-dir`` (default ``$BATCHCAM_DATA_DIR``) or are downloaded.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from _timing import machine_info
from reproduction.cells import Cell
from reproduction.figures import write_figures
from reproduction.grids import GRIDS
from reproduction.results import RESULTS_FILE, ResultsLog, pending
from reproduction.runner import PICTURES, RunOptions, run_cell
from reproduction.selection import choose
from reproduction.shortcut import shortcut_metrics
from reproduction.study import BATCHCAM
from reproduction.study_figure import write_study_figure
from reproduction.study_lambda_edges import lambda_edges_markdown
from reproduction.study_layer_tables import layer_markdown
from reproduction.study_small_patch import SMALL_PATCH_DATASET, SMALL_PATCH_METHODS
from reproduction.study_tables import (
    ablation_markdown,
    ceiling_markdown,
    head_markdown,
    metric_selection_markdown,
    selection_markdown,
    study_markdown,
)
from reproduction.tables import markdown
from tqdm import tqdm

TABLE_FILE = "results.md"
STUDY_FILE = "study.md"
STUDY_FIGURE = "study_cam_prototypes_s0.png"


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    log = ResultsLog(args.out / RESULTS_FILE)
    match args.command:
        case "list":
            return list_cells(cells_of(args.grid), log)
        case "run":
            run_grid(cells_of(args.grid), log, args)
            write_report(log, args.out, args.data_dir, figures=args.figures)
        case "merge":
            for other in args.files:
                print(f"{other}: {log.merge(other)} new row(s)")
            write_report(log, args.out, args.data_dir, figures=True)
        case "report":
            write_report(log, args.out, args.data_dir, figures=True)
        case "study-report":
            write_study_report(log, args.out, args.data_dir)
    return 0


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("run", "train the cells of the grids that are not finished yet"),
        ("list", "list the cells of the grids and whether each is finished"),
        ("merge", "add another results.jsonl's rows (say, from a GPU machine)"),
        ("report", "write the table and figures from the finished rows"),
        ("study-report", "write the study's selection and test tables (with tests) from its rows"),
    ):
        command = commands.add_parser(name, help=help_text)
        command.add_argument("--out", type=Path, default=Path("docs/results"), help="results folder")
        command.add_argument("--data-dir", type=Path, default=_env_path("BATCHCAM_DATA_DIR"))
        if name in ("run", "list"):
            command.add_argument("--grid", action="append", choices=sorted(GRIDS), required=True)
        if name == "merge":
            command.add_argument("files", type=Path, nargs="+")
    run = commands.choices["run"]
    run.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    run.add_argument("--no-download", dest="download", action="store_false")
    run.add_argument("--runs-dir", type=Path, help="run folders (default OUT/runs)")
    run.add_argument("--max-minutes", type=float, help="start no new cell after this many minutes")
    run.add_argument("--no-figures", dest="figures", action="store_false", help="skip the cross-run figures")
    run.add_argument(
        "--run-pictures", choices=PICTURES, default="first-seed", help="which runs write the library's PNGs"
    )
    return parser.parse_args(argv)


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


def cells_of(grids: list[str]) -> list[Cell]:
    return list(dict.fromkeys(cell for grid in grids for cell in GRIDS[grid]()))


def list_cells(cells: list[Cell], log: ResultsLog) -> int:
    done = log.done_keys()
    for cell in cells:
        print(f"{'done' if cell.key in done else 'todo'}  {cell.key}")
    print(f"{sum(cell.key in done for cell in cells)} of {len(cells)} finished")
    return 0


def run_grid(cells: list[Cell], log: ResultsLog, args: argparse.Namespace) -> None:
    todo = pending(cells, log)
    print(f"{len(cells) - len(todo)} of {len(cells)} cells already finished; {len(todo)} to run")
    options = RunOptions(
        runs_dir=args.runs_dir or args.out / "runs",
        device=args.device,
        data_dir=args.data_dir,
        download=args.download,
        machine=asdict(machine_info()),
        pictures=args.run_pictures,
    )
    started = time.monotonic()
    bar = tqdm(todo, unit="run", file=sys.stdout)
    for cell in bar:
        if args.max_minutes is not None and time.monotonic() - started > 60 * args.max_minutes:
            bar.write(f"stopping after {args.max_minutes:g} min: run the same command again to go on")
            break
        bar.set_description(cell.key.rsplit(".", 1)[0])
        row = run_cell(cell, options)
        log.append(row)
        bar.write(f"{cell.key}: accuracy {row['accuracy']:.2%} in {row['wall_seconds']:.0f} s")


def write_report(log: ResultsLog, out: Path, data_dir: Path | None, *, figures: bool) -> None:
    rows = log.rows()
    if not rows:
        print("no finished runs yet")
        return
    shortcut = shortcut_metrics(rows, out, data_dir)
    rows = [row | shortcut.get(row["key"], {}) for row in rows]
    (out / TABLE_FILE).write_text(markdown(rows))
    print(f"wrote {out / TABLE_FILE} ({len(rows)} runs)")
    if figures:
        for path in write_figures(rows, out / "figures", data_dir):
            print(f"wrote {path}")


def write_study_report(log: ResultsLog, out: Path, data_dir: Path | None) -> None:
    rows = log.rows()
    shortcut = shortcut_metrics(rows, out, data_dir)
    rows = [row | shortcut.get(row["key"], {}) for row in rows]
    choices = choose(rows)
    sections = ["## λ chosen on the validation split\n\n" + selection_markdown(choices, rows)]
    chosen = {name: choice.lam for name, choice in choices.items()}
    sections.append(
        "## Batch-CAM's metric and λ on the validation split\n\n"
        + metric_selection_markdown(rows, chosen[BATCHCAM.name])
    )
    sections.append("## Test split, 5 seeds\n\n" + study_markdown(chosen, rows))
    sections.append("## An MLP head: exact against constant CAM weights\n\n" + head_markdown(chosen, rows))
    sections.append("## Ablations: metric and λ, CAM layer, batch size\n\n" + ablation_markdown(chosen, rows))
    sections.append(
        "## The earlier CAM layer with per-image loss CAMs (BatchNorm statistics constant)\n\n"
        + layer_markdown(chosen[BATCHCAM.name], rows)
    )
    sections.append(
        "## λ beyond the selection's edges (validation split)\n\n" + lambda_edges_markdown(rows, chosen)
    )
    sections.append(small_patch_section(rows))
    (out / STUDY_FILE).write_text("\n\n".join(sections) + "\n")
    print(f"wrote {out / STUDY_FILE} ({len(rows)} runs)")
    figure = write_study_figure(chosen, out / "runs", out.parent / "figures" / STUDY_FIGURE)
    if figure is not None:
        print(f"wrote {figure}")


def small_patch_section(rows: list[dict[str, Any]]) -> str:
    """The 4×4 patch under the same protocol, or a line saying its selection has not run yet."""
    title = f"## The original 4×4 patch ({SMALL_PATCH_DATASET}) under the same protocol\n\n"
    try:
        choices = choose(rows, SMALL_PATCH_DATASET, SMALL_PATCH_METHODS)
    except LookupError as missing:
        return title + f"Not available yet: {missing}."
    chosen = {name: choice.lam for name, choice in choices.items()}
    selection = selection_markdown(choices, rows, SMALL_PATCH_DATASET, SMALL_PATCH_METHODS)
    test = study_markdown(chosen, rows, SMALL_PATCH_DATASET, SMALL_PATCH_METHODS, controls=())
    ceiling = ceiling_markdown(chosen, rows, SMALL_PATCH_DATASET, SMALL_PATCH_METHODS)
    return "\n\n".join([title + "λ chosen on the validation split:", selection, "Test split:", test, ceiling])


if __name__ == "__main__":
    sys.exit(main())
