"""Which CAM layers each registered model has, checked without building the model.

The table (``layers.json``) is read off the real models by ``scripts/generate_layers.py`` and kept
current by a test. A submitted ``target_layer`` that does not exist is refused with the error
training would raise; one followed by BatchNorm gets the warning training would give.
"""

from __future__ import annotations

import difflib
import json
from functools import cache
from pathlib import Path
from typing import Any

from batchcam.errors import LayerError

LAYERS_FILE = Path(__file__).with_name("layers.json")


@cache
def layer_table() -> dict[str, Any]:
    return json.loads(LAYERS_FILE.read_text())


def check_target_layer(architecture: str, layer: str) -> tuple[str, ...]:
    """Raise the ``LayerError`` training would for ``layer`` of ``architecture``; return the BatchNorm
    layers between it and the logits, through which a CAM loss would mix the batch's images."""
    known = layer_table()[architecture]
    if layer not in known["modules"]:
        close = difflib.get_close_matches(layer, known["modules"], n=4)
        hint = (
            f"did you mean {', '.join(close)}?"
            if close
            else f"last conv layers: {', '.join(known['conv_layers'][-4:])}"
        )
        raise LayerError(f"layer {layer!r} does not exist in {known['class']}; {hint}")
    if layer in known["invalid"]:
        raise LayerError(known["invalid"][layer])
    return tuple(known["batchnorm_after"].get(layer, ()))


def mixing_warning(layer: str, batchnorm: tuple[str, ...]) -> str:
    """What a user training a CAM loss at ``layer`` should know (``batchnorm``: non-empty)."""
    shown = ", ".join(batchnorm[:3]) + (", ..." if len(batchnorm) > 3 else "")
    return (
        f"CAM layer {layer!r} is followed by BatchNorm ({shown}), which in train mode normalises with "
        "the batch's statistics: the training loss's CAMs then mix the batch's images and are not "
        "per-image Grad-CAM. Set cam_batch_statistics to 'constant' to hold those statistics constant "
        "in the CAMs' pass (per-image CAMs, one more forward pass per step), or choose a layer after the "
        "last BatchNorm (the registered models' default layers are)."
    )
