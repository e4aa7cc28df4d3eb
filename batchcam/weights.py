"""Trained models on disk: safetensors weights with the model's spec in the file's metadata.

Never pickle: a weights file may cross a trust boundary (downloaded, uploaded, shared).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save
from torch import nn

from batchcam.errors import DataValidationError
from batchcam.models.registry import build_from_spec
from batchcam.spec.model_spec import ModelSpec

FORMAT = "batchcam-model-v1"
HEADER_LENGTH_BYTES = 8  # a safetensors file starts with its JSON header's length, little-endian


def save_model(path: Path, model: nn.Module, spec: ModelSpec) -> None:
    tensors = {name: value.detach().to("cpu").contiguous() for name, value in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    data = save(tensors, metadata={"format": FORMAT, "spec": json.dumps(spec.to_dict())})
    path.write_bytes(sorted_metadata(data))


def sorted_metadata(data: bytes) -> bytes:
    """The same safetensors file with its metadata in key order.

    safetensors writes the metadata map in the order of a Rust ``HashMap``, which is random per map:
    the same model saved twice gave one of two files (the tensors' order is fixed). The reordered
    header has the same length, so every tensor's offset stands; if it had not, the file is kept as
    written (still valid, merely not byte-reproducible).
    """
    length = int.from_bytes(data[:HEADER_LENGTH_BYTES], "little")
    end = HEADER_LENGTH_BYTES + length
    header = json.loads(data[HEADER_LENGTH_BYTES:end])
    header["__metadata__"] = dict(sorted(header.get("__metadata__", {}).items()))
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    if len(text) > length:
        return data
    return data[:HEADER_LENGTH_BYTES] + text.ljust(length) + data[end:]


def read_spec(path: Path) -> ModelSpec:
    """The spec stored in a model file, without loading its weights."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError) as error:
        raise DataValidationError(
            f"{path.name} is not a safetensors file: {error}", code="invalid_weights"
        ) from error
    if metadata.get("format") != FORMAT or "spec" not in metadata:
        raise DataValidationError(
            f"{path.name} is a safetensors file but not a Batch-CAM model (no {FORMAT!r} metadata)",
            code="invalid_weights",
        )
    try:
        return ModelSpec.from_dict(json.loads(metadata["spec"]))
    except (ValueError, KeyError, TypeError, IndexError) as error:  # the file crossed a trust boundary
        raise DataValidationError(
            f"{path.name} has a damaged model description ({type(error).__name__}: {error})",
            code="invalid_weights",
        ) from error


def load_model(path: Path, device: torch.device | str = "cpu") -> tuple[nn.Module, ModelSpec]:
    """The model (eval mode, on ``device``) and its spec."""
    spec = read_spec(path)
    model = build_from_spec(spec)
    tensors: dict[str, torch.Tensor] = {}
    with safe_open(str(path), framework="pt", device="cpu") as handle:
        for name in handle.keys():  # noqa: SIM118 - safe_open is not a mapping
            tensors[name] = handle.get_tensor(name)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as error:
        raise DataValidationError(
            f"{path.name} does not match its own spec ({spec.architecture}): {error}", code="invalid_weights"
        ) from error
    return model.to(device).eval(), spec
