"""Typed views of the service's responses (pydantic; unknown members ignored)."""

from batchcam_client.resources.base import Failure, FailureReason, Page, PageLinks, RunState
from batchcam_client.resources.datasets import Dataset, DatasetSummary
from batchcam_client.resources.explanations import (
    ClassRef,
    Explanation,
    ExplanationItem,
    ExplanationState,
    ExplanationSummary,
    FaithfulnessScore,
)
from batchcam_client.resources.jobs import EpochRecord, Job, JobEvent, JobMetrics, JobProgress, JobState
from batchcam_client.resources.models import Model, ModelSummary

__all__ = [
    "ClassRef",
    "Dataset",
    "DatasetSummary",
    "EpochRecord",
    "Explanation",
    "ExplanationItem",
    "ExplanationState",
    "ExplanationSummary",
    "Failure",
    "FailureReason",
    "FaithfulnessScore",
    "Job",
    "JobEvent",
    "JobMetrics",
    "JobProgress",
    "JobState",
    "Model",
    "ModelSummary",
    "Page",
    "PageLinks",
    "RunState",
]
