"""Write batchcam/spec/layers.json: every registered model's CAM layers, read off the real models.

The API checks a submitted ``target_layer`` against this table without loading PyTorch;
tests/test_spec.py regenerates it and fails when it is stale. Run after changing a model:

    .venv/bin/python scripts/generate_layers.py
"""

from __future__ import annotations

import json
import sys
from typing import Any

import torch
from torch import nn

from batchcam.cam.split import make_split
from batchcam.errors import LayerError
from batchcam.models.registry import build
from batchcam.spec.layers import LAYERS_FILE
from batchcam.spec.names import MODEL_NAMES


def layer_table() -> dict[str, Any]:
    return {name: architecture_layers(name) for name in MODEL_NAMES}


def architecture_layers(name: str) -> dict[str, Any]:
    with torch.device("meta"):  # names and structure only: no weights allocated
        model = build(name, num_classes=2)
    modules = [module_name for module_name, _ in model.named_modules() if module_name]
    batchnorm_after: dict[str, list[str]] = {}
    invalid: dict[str, str] = {}
    # Without BatchNorm nothing mixes the batch, and tracing (ConvNeXt-V2 takes seconds) is skipped.
    if any(isinstance(module, nn.modules.batchnorm._BatchNorm) for module in model.modules()):
        for layer in modules:
            try:
                found = make_split(model.train(), layer).batchnorm_after_layer
            except LayerError as error:
                invalid[layer] = str(error)
                continue
            if found:
                batchnorm_after[layer] = list(found)
    return {
        "class": type(model).__name__,
        "modules": modules,
        "conv_layers": [n for n, module in model.named_modules() if isinstance(module, nn.Conv2d)],
        "batchnorm_after": batchnorm_after,
        "invalid": invalid,
    }


def main() -> int:
    LAYERS_FILE.write_text(json.dumps(layer_table(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {LAYERS_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
