"""The results log: one JSON line per finished run, appended as each run ends (the grid's resume point)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from reproduction.cells import Cell

RESULTS_FILE = "results.jsonl"


class ResultsLog:
    """Rows keyed by cell key. A key appears once; the first row recorded for it wins."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def rows(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        rows: dict[str, dict[str, Any]] = {}
        for number, line in enumerate(self.path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                # A run killed mid-write leaves a torn last line: that cell simply runs again.
                print(f"{self.path}:{number}: skipping an unreadable line ({error.msg})")
                continue
            rows.setdefault(row["key"], row)
        return list(rows.values())

    def done_keys(self) -> set[str]:
        return {row["key"] for row in self.rows()}

    def append(self, row: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as file:
            file.write(json.dumps(row, sort_keys=True) + "\n")
            file.flush()
            os.fsync(file.fileno())

    def merge(self, other: Path) -> int:
        """Rows of another log (say, brought back from a GPU machine) whose keys are new here."""
        known = self.done_keys()
        added = 0
        for row in ResultsLog(other).rows():
            if row["key"] not in known:
                self.append(row)
                known.add(row["key"])
                added += 1
        return added


def pending(cells: list[Cell], log: ResultsLog) -> list[Cell]:
    done = log.done_keys()
    return [cell for cell in cells if cell.key not in done]
