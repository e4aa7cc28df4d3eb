"""Are the heatmaps true? Faithfulness, localisation and sanity metrics, batched like the CAMs.

- ``perturbation``: deletion and insertion (RISE), with random and uniform references;
- ``road``: ROAD's MoRF/LeRF with noisy linear imputation (``imputation``);
- ``localisation``: pointing game and energy-based pointing game against masks;
- ``sanity``: cascading model-parameter randomisation and the random-logit check;
- ``attribution``: input gradients, SmoothGrad and Integrated Gradients for input-space shares;
- ``image_scores``: per-image scores for explanations; ``assessment``: the report's section.
"""

from batchcam.faithfulness.assessment import Assessment, FaithfulnessSettings, assess
from batchcam.faithfulness.curves import Curves
from batchcam.faithfulness.image_scores import score_images
from batchcam.faithfulness.localisation import energy_pointing_game, mask_share, pointing_game
from batchcam.faithfulness.perturbation import deletion, fade, insertion
from batchcam.faithfulness.road import road
from batchcam.spec.image_metrics import IMAGE_METRICS, check_image_metrics

__all__ = [
    "IMAGE_METRICS",
    "Assessment",
    "Curves",
    "FaithfulnessSettings",
    "assess",
    "check_image_metrics",
    "deletion",
    "energy_pointing_game",
    "fade",
    "insertion",
    "mask_share",
    "pointing_game",
    "road",
    "score_images",
]
