"""Typed Python client for the Batch-CAM service (httpx + pydantic; numpy and Pillow only for the
methods that return arrays or images)."""

from batchcam_client.aio.client import AsyncClient
from batchcam_client.errors import (
    BatchCamError,
    ClientError,
    ConfigurationError,
    Conflict,
    Forbidden,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServerError,
    ServiceUnavailable,
    TransportError,
    Unauthorized,
    WaitTimeout,
)
from batchcam_client.payloads import Png
from batchcam_client.resources import (
    Dataset,
    Explanation,
    ExplanationItem,
    ExplanationSummary,
    Job,
    JobEvent,
    JobMetrics,
    JobProgress,
    JobState,
    Model,
    Page,
    RunState,
)
from batchcam_client.retrying import RetryPolicy
from batchcam_client.spec import DatasetExplanation, JobSpec
from batchcam_client.sync.client import Client

__version__ = "0.1.0"
__all__ = [
    "AsyncClient",
    "BatchCamError",
    "Client",
    "ClientError",
    "ConfigurationError",
    "Conflict",
    "Dataset",
    "DatasetExplanation",
    "Explanation",
    "ExplanationItem",
    "ExplanationSummary",
    "Forbidden",
    "InvalidRequest",
    "Job",
    "JobEvent",
    "JobMetrics",
    "JobProgress",
    "JobSpec",
    "JobState",
    "Model",
    "NotFound",
    "Page",
    "PayloadTooLarge",
    "Png",
    "RateLimited",
    "RetryPolicy",
    "RunState",
    "ServerError",
    "ServiceUnavailable",
    "TransportError",
    "Unauthorized",
    "WaitTimeout",
]
