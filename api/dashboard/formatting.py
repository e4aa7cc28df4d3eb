"""How numbers, times and durations read on the pages (Jinja filters)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any


def percent(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f} %"


def number(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def duration(seconds: float | None) -> str:
    """``1 h 02 min``, ``3 min 05 s``, ``42 s``; a dash when unknown."""
    if seconds is None:
        return "—"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def timestamp(value: datetime | None) -> str:
    return "—" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


def short_id(value: Any) -> str:
    return str(value)[:8]


FILTERS: dict[str, Callable[..., str]] = {
    "percent": percent,
    "number": number,
    "duration": duration,
    "timestamp": timestamp,
    "short_id": short_id,
}
