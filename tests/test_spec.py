"""The torch-free spec: its names match what the torch side implements, and importing it (or the
whole API) loads neither torch nor matplotlib."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from batchcam.cam.methods import CAM_METHODS
from batchcam.errors import LayerError
from batchcam.models.registry import _BUILDERS
from batchcam.spec.layers import check_target_layer, layer_table
from batchcam.spec.names import CAM_METHOD_NAMES, MODEL_NAMES
from batchcam.spec.training import TrainConfig

HEAVY = ("torch", "matplotlib", "torchvision", "timm")


def loaded_after(statement: str) -> set[str]:
    """The heavy top-level packages in sys.modules after ``statement`` in a fresh interpreter."""
    probe = f"{statement}\nimport sys\nprint(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    output = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return set(output.split()) & set(HEAVY)


def test_spec_names_are_the_registered_models_and_cam_methods() -> None:
    assert tuple(_BUILDERS) == MODEL_NAMES
    assert tuple(CAM_METHODS) == CAM_METHOD_NAMES


def test_every_training_option_has_one_help_text() -> None:
    for each in fields(TrainConfig):
        assert each.metadata.get("help"), each.name


def test_the_spec_imports_no_heavy_library() -> None:
    modules = (
        "names",
        "datasets",
        "training",
        "limits",
        "image_metrics",
        "layers",
        "model_spec",
        "run_files",
    )
    imports = "\n".join(f"import batchcam.spec.{module}" for module in modules)
    assert loaded_after(imports) == set()


def test_the_layer_table_is_what_the_models_have() -> None:
    """scripts/generate_layers.py reads it off the real models; rerun it after changing a model."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from generate_layers import layer_table as live_table

    assert layer_table() == live_table()


def test_a_layer_check_refuses_and_warns_like_training() -> None:
    with pytest.raises(LayerError, match="layer 'layer9' does not exist in CamResNet; did you mean"):
        check_target_layer("resnet18", "layer9")
    with pytest.raises(LayerError, match="ends at the classifier output"):
        check_target_layer("simple_cnn", "head")
    assert check_target_layer("resnet18", "layer4") == ()
    mixing = check_target_layer("resnet18", "layer3")
    assert mixing and all(name.startswith("layer4") for name in mixing)
    assert check_target_layer("convnextv2_tiny", "stages.2") == ()
