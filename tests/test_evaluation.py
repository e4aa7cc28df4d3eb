"""Evaluation on a hand-made case whose predictions are known: orientation and per-class numbers."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from batchcam.cam import CamExtractor
from batchcam.data import ImageDataset
from batchcam.device import select_execution
from batchcam.evaluation import evaluate


class PredictsThePixelValue(nn.Module):
    """Predicts class k for an image whose pixels are all k (as uint8): predictions set by the data."""

    default_target_layer = "features"

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.features = nn.Conv2d(1, 1, kernel_size=1, bias=False)
        nn.init.ones_(self.features.weight)
        self.register_buffer("classes", torch.arange(num_classes, dtype=torch.float32))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, activations: torch.Tensor) -> torch.Tensor:
        value = activations.mean(dim=(1, 2, 3)) * 255
        return -((value[:, None] - self.classes) ** 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def test_confusion_rows_are_true_classes_and_an_absent_class_has_no_accuracy() -> None:
    true = [0, 0, 0, 1, 1]
    predicted = [0, 2, 2, 1, 0]  # class 2 is predicted but has no test image
    images = torch.tensor(predicted, dtype=torch.uint8).view(-1, 1, 1, 1).expand(-1, 1, 8, 8).clone()
    dataset = ImageDataset(images=images, labels=torch.tensor(true), class_names=("a", "b", "c"))
    prototypes = torch.rand(3, 8, 8)

    result = evaluate(CamExtractor(PredictsThePixelValue(3)), dataset, prototypes, select_execution("cpu"))

    assert result.confusion.tolist() == [[1, 0, 2], [1, 1, 0], [0, 0, 0]]
    assert result.accuracy == pytest.approx(2 / 5)
    assert result.per_class_accuracy == [pytest.approx(1 / 3), 0.5, None]
    assert [(m.index, m.true_label, m.predicted_label) for m in result.misclassified] == [
        (1, 0, 2),
        (2, 0, 2),
        (4, 1, 0),
    ]
    summary = json.loads(json.dumps(result.summary()))
    assert summary["per_class_accuracy"][2] is None
    l1 = summary["cam_prototype_distance"]["l1"]
    assert l1["mean"] == pytest.approx(sum(l1["per_class"][:2]) / 2)  # the absent class is left out
