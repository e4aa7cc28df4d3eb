"""The built-in datasets by name, the decoy variants' naming, and the upload formats."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

BUILTIN_DATASETS: Mapping[str, str] = MappingProxyType(
    {
        "shapes": "procedural circles, squares, triangles, pluses and rings with object masks; no download",
        "mnist": "MNIST handwritten digits, 60,000 train / 10,000 test, 28×28 grayscale",
        "fashion-mnist": "Fashion-MNIST clothing, 60,000 train / 10,000 test, 28×28 grayscale",
        "decoy-shapes": "shapes with a label-revealing gray corner patch in train, a random one in test",
        "decoy-mnist": "Decoy-MNIST (Ross et al. 2017): label-revealing corner patch in train only",
        "decoy-fashion-mnist": "Fashion-MNIST with a label-revealing corner patch in train only",
        "decoy-large-mnist": "Decoy-MNIST with 8×8 patches (a stronger shortcut)",
        "decoy-large-fashion-mnist": "Decoy-Fashion-MNIST with 8×8 patches (a stronger shortcut)",
    }
)
UPLOAD_FORMATS = "a .npz file (NumPy) or a .zip of one folder per class holding PNG/JPEG images"

PATCH_SIZE = 4
LARGE_PATCH_SIZE = 8  # the ``decoy-large-`` variant: a shortcut strong enough to cost 20+ points
DECOY_PREFIX = "decoy-"  # every decoy variant's name starts with it
# Longest first: "decoy-large-mnist" is the large variant of "mnist", not a decoy of "large-mnist".
DECOY_PATCH_SIZES: Mapping[str, int] = MappingProxyType(
    {"decoy-large-": LARGE_PATCH_SIZE, "decoy-": PATCH_SIZE}
)


def decoy_patch_size(name: str) -> int | None:
    """The patch size of a built-in decoy variant's name, None for any other name."""
    return next((size for prefix, size in DECOY_PATCH_SIZES.items() if name.startswith(prefix)), None)


def clean_name(name: str) -> str:
    """The dataset a decoy variant paints its patches on (the name itself for any other dataset)."""
    prefix = next((prefix for prefix in DECOY_PATCH_SIZES if name.startswith(prefix)), "")
    return name.removeprefix(prefix)


def decoy_datasets() -> tuple[str, ...]:
    return tuple(name for name in BUILTIN_DATASETS if name.startswith(DECOY_PREFIX))
