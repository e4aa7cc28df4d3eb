"""What a client sends: a training job's spec and a request to explain dataset images.

They mirror the server's request schemas (``JobSubmission``, ``DatasetExplanationRequest``; the drift
test in tests/client compares names, types, choices and defaults). Ranges are not repeated here: the
service checks them and answers a 422 with its own wording. Only the fields a caller sets are sent
(``exclude_unset``), so the service's defaults apply to the others.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

ModelName = Literal["simple_cnn", "simple_cnn_mlp", "resnet18", "convnextv2_tiny"]
Mode = Literal["baseline", "prototype", "batchcam", "both", "rrr", "rrr-gradcam", "energy"]
Metric = Literal["l1", "l2", "ssim"]
CamMethod = Literal["gradcam", "gradcam++", "xgradcam", "layercam", "hirescam"]
FaithfulnessMetric = Literal["deletion", "insertion", "road_morf", "road_lerf"]


class Request(BaseModel):
    # Forbid on our side: a misspelt option fails here, before anything is sent.
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    def body(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_unset=True)


class JobSpec(Request):
    """``batchcam train``'s options, less the worker's execution settings (see the service's docs)."""

    dataset: str = "shapes"
    model: ModelName = "simple_cnn"
    mode: Mode = "batchcam"
    metric: Metric = "l1"
    lambda_prototype: float = 1.0
    lambda_batchcam: float = 1.0
    prototype_mask: Literal["none", "decoy"] = "none"
    prototype_statistic: Literal["mean", "median"] = "mean"
    prototype_target: Literal["class", "gaussian", "global-mean", "permuted"] = "class"
    loss_maps: Literal["cam", "input-gradients"] = "cam"
    lambda_annotation: float = 1.0
    evaluation_split: Literal["test", "validation"] = "test"
    cam_method: CamMethod = "gradcam"
    cam_gradients: Literal["exact", "constant_weights"] = "exact"
    target_layer: str | None = None
    cam_batch_statistics: Literal["differentiable", "constant"] = "differentiable"
    epochs: int = 3
    batch_size: int = 64
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = 0.001
    weight_decay: float = 0.0
    seed: int = 0
    image_size: int | None = None
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    max_runtime_s: float | None = None
    checkpoint_every_steps: int | None = None
    bn_recalibration_batches: int = 100
    faithfulness_images: int = 64


class StoredJobSpec(JobSpec):
    """A job's spec as the service shows it: options a newer service added are ignored, not refused."""

    model_config = ConfigDict(extra="ignore", protected_namespaces=())


class DatasetExplanation(Request):
    """Explain images of a dataset (a built-in's name or an upload's id) by their positions."""

    dataset: str
    split: Literal["train", "test"] = "test"
    indices: list[int]
    targets: list[int | None] | None = None
    method: CamMethod = "gradcam"
    metrics: list[FaithfulnessMetric] = []
