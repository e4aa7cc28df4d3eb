"""How a training child process starts: forked from a forkserver that imported torch once.

A spawned child starts a new interpreter and imports torch and the pipeline before its first step:
seconds on every job. A forkserver is one such interpreter, started with the worker (``warm_up``),
that has imported them already and never touches CUDA; each job's child is forked from it in
milliseconds and initialises CUDA itself, so forking stays as safe as spawning (the Celery process
itself is never forked). ``BATCHCAM_TRAIN_CHILD_START=spawn`` restores a fresh interpreter per job.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.forkserver
from multiprocessing.context import BaseContext

from persistence.settings import TrainChildStart

log = logging.getLogger(__name__)

# What every training child needs: imported once in the forkserver, inherited by each fork.
PRELOAD = ["torch", "batchcam.pipeline", "worker.training.child"]


def child_context(start: TrainChildStart) -> BaseContext:
    if start == "spawn":
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)  # no effect once the server runs: it already has them
    return context


def warm_up(start: TrainChildStart) -> None:
    """Start the forkserver now (at worker start), so the first job does not wait for its imports."""
    if start == "forkserver":
        child_context(start)
        multiprocessing.forkserver.ensure_running()
        log.info("training children fork from a forkserver with %s imported", ", ".join(PRELOAD))
