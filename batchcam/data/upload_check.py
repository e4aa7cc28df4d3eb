"""Check an upload in a process of its own and print, as JSON, what the service records about it.

The HTTP API runs this as a child process (``python -m batchcam.data.upload_check FILE …``), so
the API process never loads PyTorch, and a hostile upload that exhausts memory takes down the
child, not the API. The answer is one JSON object on stdout:

- ``{"format": "npz" | "zip", "summary": {...}}`` for a valid upload;
- ``{"error": {"type": "DataValidationError", "code": ..., "message": ...}}`` for one the caller
  can fix (exit status 0 as well: a refused upload is an answer, not a failure).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from batchcam.data.dataset import DatasetSplits
from batchcam.data.registry import is_npz, load_upload
from batchcam.errors import BatchCamError
from batchcam.spec.limits import UploadLimits


def inspect(path: Path, limits: UploadLimits, name: str) -> dict[str, Any]:
    """The upload's format and summary; raises the library's errors for an invalid one."""
    splits = load_upload(path, limits, name=name)
    return {"format": "npz" if is_npz(path, limits, name=name) else "zip", "summary": summary(splits)}


def summary(splits: DatasetSplits) -> dict[str, Any]:
    height, width = splits.train.image_size
    return {
        "class_names": list(splits.class_names),
        "num_classes": len(splits.class_names),
        "image_size": [height, width],
        "channels": splits.train.in_channels,
        "train_images": len(splits.train),
        "test_images": len(splits.test),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("path", type=Path)
    parser.add_argument("--name", required=True)
    parser.add_argument("--limits", required=True, help="UploadLimits' fields as a JSON object")
    args = parser.parse_args(argv)
    limits = UploadLimits(**json.loads(args.limits))
    try:
        answer = inspect(args.path, limits, args.name)
    except BatchCamError as error:
        answer = {"error": {"type": type(error).__name__, "code": error.code, "message": error.message}}
    json.dump(answer, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
