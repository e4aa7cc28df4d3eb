"""The images an explanation asks about, from where the API recorded them (``request["inputs"]``).

Uploaded images come from the ``inputs.npz`` the API stored; dataset images are loaded as the
model's training job loaded them (same seed and image size). An image that cannot be had (an index
beyond a built-in split's end) becomes an item error; the rest are explained.
"""

from __future__ import annotations

import io
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from batchcam.data.dataset import ImageDataset
from batchcam.data.registry import load_dataset, load_upload
from batchcam.spec.limits import UploadLimits
from persistence.explanations.objects import INLINE, uploaded_images
from persistence.objects import ObjectStore
from worker.bounded_cache import BoundedCache


class InlineInputsMissingError(Exception):
    """A row that says its images are inline has none: nothing to explain."""


@dataclass(frozen=True)
class ItemError:
    code: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True, eq=False)
class InputItem:
    source: dict[str, Any]  # where the image came from, as the API shows it
    image: torch.Tensor | None  # uint8 C×H×W as stored; None when ``error`` says why not
    true_label: int | None = None  # known for dataset images
    error: ItemError | None = None


SplitKey = tuple[str, str | None, int, int | None, str]  # dataset, upload key, seed, image size, split
SplitCache = BoundedCache[SplitKey, ImageDataset]
SPLIT_CACHE_CAPACITY = 4  # a built-in test split is ~8 MB; generating one takes ~0.3–0.5 s


def new_split_cache(capacity: int = SPLIT_CACHE_CAPACITY) -> SplitCache:
    return BoundedCache(capacity, "dataset splits")


def load_inputs(
    store: ObjectStore,
    inputs: dict[str, Any],
    splits: SplitCache,
    limits: UploadLimits,
    inline: bytes | None = None,
) -> list[InputItem]:
    """``limits``: the deployment's upload caps, which an uploaded dataset passed when it was registered;
    ``inline``: the row's ``inline_inputs`` (a small upload's ``.npz``)."""
    if inputs["kind"] == "upload":
        return uploaded_items(store, inputs, inline)
    return dataset_items(store, inputs, splits, limits)


def uploaded_items(store: ObjectStore, inputs: dict[str, Any], inline: bytes | None) -> list[InputItem]:
    names: list[str] = inputs["names"]
    npz = inline if inputs.get(INLINE) else store.get(inputs["key"])
    if npz is None:
        raise InlineInputsMissingError("the request's images are missing from its row")
    with np.load(io.BytesIO(npz), allow_pickle=False) as archive:
        images = uploaded_images(archive, len(names))
    return [
        InputItem(
            source={"kind": "upload", "filename": name}, image=torch.from_numpy(np.ascontiguousarray(image))
        )
        for name, image in zip(names, images, strict=True)
    ]


def dataset_items(
    store: ObjectStore, inputs: dict[str, Any], splits: SplitCache, limits: UploadLimits
) -> list[InputItem]:
    """Splits are immutable (built-in ones are seeded, uploads are write-once), so they are cached."""
    key: SplitKey = (
        inputs["dataset"],
        inputs.get("dataset_key"),
        int(inputs["seed"]),
        inputs.get("image_size"),
        inputs["split"],
    )
    split = splits.get(key, lambda: dataset_split(store, inputs, limits))
    return [dataset_item(split, inputs, index) for index in inputs["indices"]]


def dataset_item(split: ImageDataset, inputs: dict[str, Any], index: int) -> InputItem:
    source = {"kind": "dataset", "dataset": inputs["dataset"], "split": inputs["split"], "index": index}
    if not 0 <= index < len(split):
        message = f"index {index} lies outside the {inputs['split']} split (0 to {len(split) - 1})"
        return InputItem(source=source, image=None, error=ItemError("index_out_of_range", message))
    image, label = split[index]
    return InputItem(source=source, image=image, true_label=int(label))


def dataset_split(store: ObjectStore, inputs: dict[str, Any], limits: UploadLimits) -> ImageDataset:
    """The requested split, loaded like ``batchcam.pipeline.prepare_data`` loads it for training."""
    seed, image_size = int(inputs["seed"]), inputs.get("image_size")
    if inputs.get("dataset_key") is None:
        splits = load_dataset(inputs["dataset"], seed=seed, image_size=image_size)
    else:
        with tempfile.TemporaryDirectory(prefix="batchcam-explain-data-") as folder:
            local = Path(folder) / "dataset"
            store.download_file(inputs["dataset_key"], local)
            splits = load_upload(local, limits, seed=seed, name=inputs["dataset"], image_size=image_size)
    return splits.train if inputs["split"] == "train" else splits.test
