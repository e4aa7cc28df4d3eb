"""A validation split held out of the training data, for choosing λ and other settings.

Settings are chosen on it, never on the test split. It is cut from the clean training images
before any decoy patch is painted, so a decoy variant paints it like its test split (random
levels): a model that took the shortcut fails there as it would on the test split.
"""

from __future__ import annotations

import torch

from batchcam.data.dataset import DatasetSplits
from batchcam.errors import DataValidationError

VALIDATION_FRACTION = 1 / 6  # MNIST: 10,000 of 60,000 images, the size of its test split
VALIDATION_SEED = 0  # one split for every run seed: seeds vary initialisation and data order only


def holdout_validation(splits: DatasetSplits) -> DatasetSplits:
    """``splits`` with a fixed random sixth of its training images as the evaluation split
    (``splits`` itself when its evaluation split already is a validation split)."""
    if splits.validation:
        return splits
    train = splits.train
    held = round(len(train) * VALIDATION_FRACTION)
    if held < 1 or held >= len(train):
        raise DataValidationError(
            f"a training split of {len(train)} image(s) is too small to hold out a validation split",
            code="validation_split_too_small",
        )
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(VALIDATION_SEED))
    return DatasetSplits(
        name=f"{splits.name}[validation]",
        train=train.subset(order[held:].sort().values),
        test=train.subset(order[:held].sort().values),
        validation=True,
    )
