"""CPU seconds used by processes, read from /proc (Linux): to say where a request's CPU goes.

``tree(pid)`` counts a process and all its descendants (a uvicorn server, a Celery worker and the
children they start); ``named(comm)`` counts every process of that name (Postgres backends, which
the postmaster forks per connection; redis-server).
"""

from __future__ import annotations

import os
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def _stats() -> dict[int, tuple[int, str, float]]:
    """pid → (parent pid, name, user+system seconds) for every process we can read."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        fields = text[text.rindex(")") + 2 :].split()
        found[int(entry.name)] = (int(fields[1]), name, (int(fields[11]) + int(fields[12])) / TICKS)
    return found


def tree(root: int) -> float:
    stats = _stats()
    members, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, (ppid, _, _) in stats.items() if ppid == parent and pid not in members]
        members.update(children)
        frontier += children
    return sum(stats[pid][2] for pid in members if pid in stats)


def named(name: str) -> float:
    return sum(seconds for _, comm, seconds in _stats().values() if comm == name)


def this_process() -> float:
    times = os.times()
    return times.user + times.system
