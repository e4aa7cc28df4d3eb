"""ResNet-18 (torchvision) with a stem chosen for the input size."""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, ResNet

# Below this side length the ImageNet stem (7×7 stride 2 + max-pool, 32× total) would leave
# layer4 with a 1×1 map, and a 1×1 CAM says nothing about where the model looked.
SMALL_IMAGE_STEM_BELOW = 96


class CamResNet(ResNet):
    """torchvision's ResNet with a features/head split at ``layer4``; state-dict keys unchanged."""

    architecture = "resnet18"
    default_target_layer = "layer4"

    def __init__(self, num_classes: int, in_channels: int = 1, input_size: int = 28) -> None:
        super().__init__(BasicBlock, [2, 2, 2, 2], num_classes=num_classes)
        self.input_size = (input_size, input_size)
        if input_size < SMALL_IMAGE_STEM_BELOW:
            # 3×3 stride-1 stem, no max-pool: 28×28 input → layer4 keeps a 4×4 grid.
            self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
            self.maxpool = nn.Identity()
            self.adaptation = "3x3 stride-1 stem, no max-pool (small-image stem)"
        else:
            self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
            self.adaptation = "standard ImageNet stem"
        nn.init.kaiming_normal_(self.conv1.weight, mode="fan_out", nonlinearity="relu")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.avgpool(x), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))
