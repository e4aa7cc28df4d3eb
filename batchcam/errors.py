"""Errors a user can act on.

Every error the library raises for bad input derives from :class:`BatchCamError`. Its message says
what was wrong and what is accepted; its ``code`` is a stable machine-readable identifier that
callers (the CLI, the HTTP API) map to exit codes and problem types.
"""

from __future__ import annotations


class BatchCamError(Exception):
    """Base class of every error caused by input the caller can fix."""

    code: str = "batchcam_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class ConfigError(BatchCamError):
    """An option has a value outside what is accepted (unknown name, out-of-range number)."""

    code = "invalid_config"


class LayerError(BatchCamError):
    """A CAM target layer does not exist, or the model cannot be split there."""

    code = "invalid_layer"


class DataValidationError(BatchCamError):
    """Submitted data (an upload, an image) is malformed, too large or inconsistent."""

    code = "invalid_data"


class DatasetUnavailableError(BatchCamError):
    """A built-in dataset's files are missing and could not be downloaded."""

    code = "dataset_unavailable"


class TrainingDivergedError(BatchCamError):
    """The loss became NaN or infinite; retrying the same job would fail the same way."""

    code = "nan_loss"

    def __init__(self, message: str, *, epoch: int, step: int) -> None:
        super().__init__(message)
        self.epoch = epoch
        self.step = step
