"""How many torch threads an explain batch computes with.

Small batches take ``BATCHCAM_EXPLAIN_TORCH_THREADS`` (1 by default): their compute is short, the
worker then waits on Postgres and S3, and torch's idle OpenMP threads spin meanwhile on a core that
the API and Postgres need (one-image requests cost the worker ~10× the CPU with two threads,
docs/BENCHMARKS.md, issue 20). A large batch is mostly compute and the API sleeps while it runs, so
it keeps the threads the process has (torch's choice).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

LARGE_BATCH_IMAGES = 128


@dataclass(frozen=True)
class TorchThreads:
    small_batch: int = 1
    large_from: int = LARGE_BATCH_IMAGES  # images

    @contextmanager
    def for_batch(self, images: int) -> Iterator[None]:
        """torch's threads while a batch of ``images`` computes (restored afterwards)."""
        before = torch.get_num_threads()
        wanted = before if images >= self.large_from else self.small_batch
        if wanted == before:
            yield
            return
        torch.set_num_threads(wanted)
        try:
            yield
        finally:
            torch.set_num_threads(before)
