"""Input-gradient maps for the CAM losses: a pixel-resolution alternative to a layer's CAM.

A 7×7 CAM cannot resolve a 4×4 patch on a 28×28 image; the input gradient of the target logit
can. Its magnitude, summed over channels and normalised per image like a CAM, goes into the same
prototype losses (``TrainConfig.loss_maps="input-gradients"``).
"""

from __future__ import annotations

import torch

from batchcam.cam.postprocess import DEFAULT_POSTPROCESS, CamPostprocess


def input_gradient_maps(
    logits: torch.Tensor,
    targets: torch.Tensor,
    inputs: torch.Tensor,
    postprocess: CamPostprocess = DEFAULT_POSTPROCESS,
) -> torch.Tensor:
    """|∂ logit_target / ∂ input| summed over channels → B×H×W in [0, 1], differentiable.

    ``inputs`` must require grad and be what produced ``logits``. Each image's logit depends on
    its own input only (in eval mode; in train mode BatchNorm mixes the batch, as for CAMs).
    """
    chosen = logits.float().gather(1, targets[:, None].to(logits.device)).sum()
    (gradients,) = torch.autograd.grad(chosen, inputs, create_graph=True)
    return postprocess(gradients.abs().sum(dim=1), (int(inputs.shape[-2]), int(inputs.shape[-1])))
