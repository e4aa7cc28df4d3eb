"""Datasets for Batch-CAM: built-ins by name (procedural shapes, MNIST, Fashion-MNIST, decoy variants)
and validated uploads (.npz, zip of class folders), all as in-memory uint8 :class:`ImageDataset` splits."""

from batchcam.data.dataset import DatasetSplits, ImageDataset, as_model_input
from batchcam.data.decoy import add_decoy, make_decoy
from batchcam.data.folder_zip import load_image_folder_zip
from batchcam.data.idx import default_data_dir, load_fashion_mnist, load_mnist
from batchcam.data.images import decode_image
from batchcam.data.npz import load_npz
from batchcam.data.registry import load_dataset, load_upload
from batchcam.data.resize import resize_splits
from batchcam.data.shapes import load_shapes, make_shapes
from batchcam.data.split import split_dataset, stratified_split_indices
from batchcam.spec.datasets import BUILTIN_DATASETS
from batchcam.spec.limits import DEFAULT_UPLOAD_LIMITS, UploadLimits

__all__ = [
    "BUILTIN_DATASETS",
    "DEFAULT_UPLOAD_LIMITS",
    "DatasetSplits",
    "ImageDataset",
    "UploadLimits",
    "add_decoy",
    "as_model_input",
    "decode_image",
    "default_data_dir",
    "load_dataset",
    "load_fashion_mnist",
    "load_image_folder_zip",
    "load_mnist",
    "load_npz",
    "load_shapes",
    "load_upload",
    "make_decoy",
    "make_shapes",
    "resize_splits",
    "split_dataset",
    "stratified_split_indices",
]
