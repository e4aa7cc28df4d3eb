"""Caps on one explanation request, so that a single POST cannot exhaust the API's memory.

Each image is also checked against the deployment's ``UploadLimits.max_image_pixels`` (from its
header, before decoding); these caps bound the request as a whole.
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True)
class ExplanationLimits:
    max_images: int = 512
    """Images (uploaded files or dataset indices) in one request."""
    max_body_bytes: int = 64 * MIB
    """Size of a multipart request body, refused before it is spooled."""
    max_total_pixels: int = 32 * MIB
    """Height × width summed over a request's decoded images (× 3 bytes for RGB)."""
    max_waiting_requests: int = 200
    """Submissions one API process holds open with ``?wait`` at once (each polls the database);
    past it a submission gets its 202 at once, as if its wait had run out."""
