"""The description recorded with every trained model: enough to rebuild it and to use it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class ModelSpec:
    """Architecture, input contract and CAM layer of a model.

    Inputs are float32 ``N×in_channels×H×W`` in [0, 1] at ``input_size``; CAMs come back at that size.
    """

    architecture: str
    num_classes: int
    in_channels: int
    input_size: tuple[int, int]
    target_layer: str
    class_names: tuple[str, ...]
    adaptation: str = "none"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        return cls(
            architecture=str(data["architecture"]),
            num_classes=int(data["num_classes"]),
            in_channels=int(data["in_channels"]),
            input_size=(int(data["input_size"][0]), int(data["input_size"][1])),
            target_layer=str(data["target_layer"]),
            class_names=tuple(str(n) for n in data["class_names"]),
            adaptation=str(data.get("adaptation", "none")),
        )
