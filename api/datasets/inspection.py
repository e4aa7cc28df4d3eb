"""An upload checked by the library in a child process: the API itself never loads PyTorch.

A refused upload comes back as the library's own error (a 4xx problem with its code and text); a
child that crashes, or runs past the time limit, is the API's failure, not the caller's.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from batchcam import errors
from batchcam.spec.limits import UploadLimits

CHECK_TIMEOUT_S = 300.0  # a 200 MiB upload decodes in seconds; minutes mean something is wrong
CHECKER = "batchcam.data.upload_check"  # run as a module: importing it here would load PyTorch


@dataclass(frozen=True)
class UploadInspection:
    format: str  # "npz" or "zip"
    summary: dict[str, Any]


class UploadCheckError(RuntimeError):
    """The child could not give an answer (crashed, killed, too slow): an internal error."""


def inspect_upload(path: Path, limits: UploadLimits, name: str) -> UploadInspection:
    try:
        child = subprocess.run(
            [
                sys.executable,
                "-m",
                CHECKER,
                str(path),
                "--name",
                name,
                "--limits",
                json.dumps(asdict(limits)),
            ],
            capture_output=True,
            text=True,
            timeout=CHECK_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise UploadCheckError(f"checking upload {name!r} took over {CHECK_TIMEOUT_S:g} s") from error
    if child.returncode != 0:
        raise UploadCheckError(
            f"checking upload {name!r} failed ({child.returncode}): {child.stderr[-2000:]}"
        )
    answer = json.loads(child.stdout)
    if "error" in answer:
        raise _library_error(answer["error"])
    return UploadInspection(format=answer["format"], summary=answer["summary"])


def _library_error(error: dict[str, str]) -> errors.BatchCamError:
    kind = getattr(errors, error["type"], errors.DataValidationError)
    if not (isinstance(kind, type) and issubclass(kind, errors.BatchCamError)):
        kind = errors.DataValidationError
    return kind(error["message"], code=error["code"])
