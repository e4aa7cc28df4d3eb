"""``simple_cnn`` with a two-layer MLP head instead of global-average-pool + linear.

With a GAP + linear head, Grad-CAM's channel weights are the linear layer's row for the class:
constant in the activations, so Grad-CAM reduces to CAM and the differentiable CAM's second-order
terms reach the last linear layer only. Here the weights are the spatial mean of
``∂ logit / ∂ activations`` through a GELU MLP (smooth, so its curvature is not zero almost
everywhere like a ReLU's): ``cam_gradients="exact"`` and ``"constant_weights"`` differ.
"""

from __future__ import annotations

from torch import nn

from batchcam.models.simple_cnn import SimpleCNN

HIDDEN = 128


class SimpleCNNMLP(SimpleCNN):
    """SimpleCNN's features, then flatten → linear → GELU → linear. Needs its ``input_size``."""

    architecture = "simple_cnn_mlp"

    def __init__(self, num_classes: int, in_channels: int = 1, input_size: int = 28, width: int = 16) -> None:
        super().__init__(num_classes, in_channels, input_size, width)
        side = input_size // 4  # two 2× poolings
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(4 * width * side * side, HIDDEN),
            nn.GELU(),
            nn.Linear(HIDDEN, num_classes),
        )
