"""The client's models agree with the running app's OpenAPI document, so that a server change cannot
silently break the client: a new server field must be modelled or allowlisted below, a renamed or
retyped one fails, and enums (states, failure reasons, every choice of the job spec) match exactly."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from batchcam_client import (
    Dataset,
    DatasetExplanation,
    Explanation,
    ExplanationSummary,
    Job,
    JobMetrics,
    JobSpec,
    Model,
    Page,
    RunState,
)
from pydantic import BaseModel

from api.app import create_app
from client.openapi_drift import DriftCheck
from persistence.settings import Settings

RESPONSES: list[tuple[type[BaseModel], str]] = [
    (Job, "JobResource"),
    (Page[Job], "JobPage"),
    (JobMetrics, "JobMetricsHistory"),
    (Dataset, "DatasetResource"),
    (Page[Dataset], "DatasetPage"),
    (Model, "ModelResource"),
    (Page[Model], "ModelPage"),
    (Explanation, "ExplanationResource"),
    (ExplanationSummary, "ExplanationSummary"),
    (Page[ExplanationSummary], "ExplanationPage"),
]
REQUESTS: list[tuple[type[BaseModel], str]] = [
    (JobSpec, "JobSubmission"),
    (DatasetExplanation, "DatasetExplanationRequest"),  # inline in the explanations POST
]
# Which server schemas each nested client model stands for (one client model may serve several).
PAIRS: dict[str, set[str]] = {
    "Job": {"JobResource"},
    "JobSpec": {"JobSubmission"},
    "StoredJobSpec": {"JobSubmission"},
    "JobProgress": {"JobProgress"},
    "JobLinks": {"JobLinks"},
    "EpochRecord": {"EpochRecord"},
    "Failure": {"JobFailure", "ExplanationFailure"},
    "RunState": {"JobState", "ExplanationState"},
    "FailureReason": {"FailureReason"},
    "PageLinks": {"PageLinks"},
    "Dataset": {"DatasetResource"},
    "DatasetSummary": {"DatasetSummary"},
    "DatasetLinks": {"DatasetLinks"},
    "Model": {"ModelResource"},
    "ModelInput": {"ModelInput"},
    "ModelClass": {"ModelClass"},
    "ClassLinks": {"ClassLinks"},
    "ModelSummary": {"ModelSummary"},
    "ModelLinks": {"ModelLinks"},
    "FaithfulnessHeadline": {"FaithfulnessHeadline"},
    "MapAndReferences": {"MapAndReferences"},
    "ExplanationSummary": {"ExplanationSummary"},
    "ExplanationLinks": {"ExplanationLinks"},
    "ExplanationItem": {"ExplanationItem"},
    "ItemSource": {"ItemSource"},
    "ItemError": {"ItemError"},
    "ItemLinks": {"ItemLinks"},
    "ClassRef": {"ClassRef"},
    "FaithfulnessScore": {"FaithfulnessScore"},
    "FaithfulnessCurve": {"FaithfulnessCurve"},
}
# Server fields the client deliberately does not model: {schema: {field: why}}. Empty today: every
# field is modelled. A new server field fails the test until it is modelled or listed here.
SERVER_ONLY: dict[str, dict[str, str]] = {}


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    state: Path = tmp_path_factory.mktemp("drift")
    app = create_app(Settings(BATCHCAM_STATE_DIR=state), enqueue_training=lambda _: None)
    return app.openapi()


def server_schemas(document: dict[str, Any]) -> dict[str, Any]:
    explain = document["paths"]["/v1/models/{model_id}/explanations"]["post"]["requestBody"]["content"]
    inline = {"DatasetExplanationRequest": explain["application/json"]["schema"]}
    return {**document["components"]["schemas"], **inline}


def drift_check(document: dict[str, Any]) -> DriftCheck:
    check = DriftCheck(server_schemas(document), PAIRS, SERVER_ONLY)
    for model, name in RESPONSES:
        check.check(model, name, request=False)
    for model, name in REQUESTS:
        check.check(model, name, request=True)
    return check


def test_the_client_models_agree_with_the_server_document(document: dict[str, Any]) -> None:
    check = drift_check(document)
    assert check.problems == []
    assert set(PAIRS) <= check.compared  # every nested model was reached and compared


def test_the_terminal_states_agree(document: dict[str, Any]) -> None:
    state = document["components"]["schemas"]["JobResource"]["properties"]["state"]
    published = state.get("x-terminal-states") or document["components"]["schemas"]["JobState"].get(
        "x-terminal-states"
    )
    assert set(published) == {value.value for value in RunState if value.terminal}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda s: s["JobResource"]["properties"].update(priority={"type": "integer"}),
            "JobResource.priority",
        ),
        (lambda s: s["JobResource"]["properties"].pop("attempt"), "Job.attempt"),
        (lambda s: s["JobState"]["enum"].append("paused"), "enum"),
        (lambda s: s["FailureReason"]["enum"].remove("timeout"), "FailureReason"),
        (lambda s: s["ItemLinks"]["properties"].update(thumbnail={"type": "string"}), "ItemLinks.thumbnail"),
        (lambda s: s["JobSubmission"]["properties"]["model"]["enum"].append("vit"), "JobSpec.model"),
        (lambda s: s["JobSubmission"]["properties"]["epochs"].update(default=5), "default 3"),
        (
            lambda s: s["JobProgress"]["properties"]["epoch"]["anyOf"][0].update(type="string"),
            "JobProgress.epoch",
        ),
        (lambda s: s["ModelResource"]["required"].remove("architecture"), "Model.architecture"),
    ],
)
def test_a_server_change_is_caught(document: dict[str, Any], change: Any, expected: str) -> None:
    changed = copy.deepcopy(document)
    change(changed["components"]["schemas"])
    problems = drift_check(changed).problems
    assert any(expected in problem for problem in problems), problems
