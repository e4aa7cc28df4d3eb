"""Warnings that point at the caller's code rather than at the library line that noticed the problem."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

_LIBRARY = Path(__file__).resolve().parent


def warn_caller(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` attributed to the first frame outside ``batchcam`` (Python 3.11 has no
    ``skip_file_prefixes``)."""
    level = 2  # 1 is this function's own line
    frame = sys._getframe(1)
    while frame.f_back is not None and Path(frame.f_code.co_filename).resolve().is_relative_to(_LIBRARY):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)
