"""Caps that keep a hostile or careless upload from exhausting memory, disk or CPU."""

from __future__ import annotations

from dataclasses import dataclass, fields

from batchcam.errors import ConfigError

MIB = 1024 * 1024
GIB = 1024 * MIB


@dataclass(frozen=True)
class UploadLimits:
    """Every limit an upload is checked against, before its content is decoded.

    The defaults admit MNIST-sized and small photo datasets; a deployment that needs more passes its own.
    """

    max_bytes: int = 200 * MIB
    """Size of the uploaded file itself."""
    max_images: int = 200_000
    """Images in the dataset, train and test together."""
    max_image_pixels: int = 1024 * 1024
    """Height × width of one image (checked from the file header, before decoding)."""
    max_total_pixels: int = 256 * MIB
    """Height × width summed over all images: bounds the decoded dataset's memory (×3 for RGB)."""
    max_archive_members: int = 250_000
    """Entries in a zip (or .npz) archive, directories included."""
    max_uncompressed_bytes: int = 1 * GIB
    """Sum of the uncompressed sizes the archive declares (Python's zipfile never inflates past them)."""
    max_compression_ratio: float = 200.0
    """Uncompressed ÷ compressed size of one member; zip bombs reach about 1,000."""
    min_classes: int = 2
    max_classes: int = 1000

    def __post_init__(self) -> None:
        for limit in fields(self):
            if getattr(self, limit.name) <= 0:
                raise ConfigError(
                    f"upload limit {limit.name} must be positive, got {getattr(self, limit.name)}",
                    code="invalid_upload_limits",
                )
        if self.min_classes > self.max_classes:
            raise ConfigError(
                f"upload limit min_classes ({self.min_classes}) exceeds max_classes ({self.max_classes})",
                code="invalid_upload_limits",
            )


DEFAULT_UPLOAD_LIMITS = UploadLimits()
