"""A model row as the API shows it, and where each of its artifacts is stored and served.

Artifact names are those the training child uploads: the run directory's relative paths with "/"
replaced by "-" (``prototypes/0.png`` → ``prototypes-0.png``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from types import MappingProxyType

from api.models.schemas import ClassLinks, ModelClass, ModelInput, ModelLinks, ModelResource, ModelSummary
from batchcam.spec.model_spec import ModelSpec
from batchcam.spec.run_files import MODEL_FILE, PROTOTYPES_FILE, REPORT_FILE
from persistence.models import Model

MODELS_PATH = "/v1/models"
# Artifacts are stored under their file names in the library's run folder.
WEIGHTS_ARTIFACT, PROTOTYPES_ARTIFACT, REPORT_ARTIFACT = MODEL_FILE, PROTOTYPES_FILE, REPORT_FILE
# URL name → artifact name of the overview pictures drawn at training time.
FIGURES: Mapping[str, str] = MappingProxyType(
    {
        "prototypes": "prototypes.png",
        "cam-prototypes": "cam_prototypes.png",
        "misclassified": "misclassified.png",
        "training-curves": "training_curves.png",
        "cam-examples": "cam_examples.png",
        "faithfulness": "faithfulness.png",
    }
)


def model_path(model_id: uuid.UUID) -> str:
    return f"{MODELS_PATH}/{model_id}"


def prototype_artifact(class_index: int) -> str:
    return f"prototypes-{class_index}.png"


def cam_prototype_artifact(class_index: int) -> str:
    return f"cam_prototypes-{class_index}.png"


def misclassified_artifact(test_index: int) -> str:
    return f"misclassified-{test_index}.png"


def misclassified_image_path(model_id: uuid.UUID, test_index: int) -> str:
    return f"{model_path(model_id)}/misclassified/{test_index}.png"


def model_spec(model: Model) -> ModelSpec:
    return ModelSpec.from_dict(model.spec)


def model_resource(model: Model, *, ready: bool) -> ModelResource:
    spec = model_spec(model)
    path = model_path(model.id)
    height, width = spec.input_size
    return ModelResource(
        id=model.id,
        job_id=model.job_id,
        ready=ready,
        architecture=spec.architecture,
        target_layer=spec.target_layer,
        adaptation=spec.adaptation,
        input=ModelInput(channels=spec.in_channels, height=height, width=width),
        classes=[
            ModelClass(
                index=index,
                name=name,
                links=ClassLinks(
                    prototype=f"{path}/prototypes/{index}.png",
                    cam_prototype=f"{path}/cam-prototypes/{index}.png",
                ),
            )
            for index, name in enumerate(spec.class_names)
        ],
        summary=ModelSummary.model_validate(model.summary),
        created_at=model.created_at,
        links=ModelLinks(
            model=path,
            job=f"/v1/jobs/{model.job_id}",
            report=f"{path}/report",
            weights=f"{path}/weights",
            misclassified=f"{path}/misclassified",
            explanations=f"{path}/explanations",
            figures={
                name: f"{path}/figures/{name}.png"
                for name, artifact in FIGURES.items()
                if artifact in model.artifacts
            },
        ),
    )
