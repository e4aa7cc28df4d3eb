"""The OpenAPI document states what the server enforces, in forms generators and fuzzers read
(issue 16): ranges as minimum/maximum, enums, array sizes, the media types really sent, short
operation ids, distinct enum identifiers, If-None-Match where 304 is possible; and OPTIONS and 405
name every method of a path."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields
from typing import Any

import pytest
from starlette.requests import Request

from api.http.caching import negotiated
from batchcam.pixels.heatmaps import colormap_names
from batchcam.spec.training import TrainConfig, option_bounds
from service.api_support import ApiHarness, api_harness, assert_problem

HEATMAP_PNG = "/v1/explanations/{explanation_id}/heatmaps/{index}.png"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiHarness]:
    with api_harness(tmp_path_factory.mktemp("api-contract")) as harness:
        yield harness


@pytest.fixture(scope="module")
def document(api: ApiHarness) -> dict[str, Any]:
    response = api.client.get("/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation


def test_every_bounded_training_option_has_its_range_in_the_schema(document: dict[str, Any]) -> None:
    properties = document["components"]["schemas"]["JobSubmission"]["properties"]
    bounded = [
        spec.name for spec in fields(TrainConfig) if option_bounds(spec.name) and spec.name in properties
    ]
    assert {"lr", "epochs", "batch_size", "weight_decay", "seed", "image_size", "max_runtime_s"} <= set(
        bounded
    )
    for name in bounded:
        bounds = option_bounds(name)
        assert bounds is not None
        assert (properties[name]["minimum"], properties[name]["maximum"]) == (bounds.low, bounds.high), name


def test_a_value_outside_the_published_range_is_the_library_s_422(api: ApiHarness) -> None:
    response = api.client.post("/v1/jobs", json={"lr": 5e16}, headers=api.new_tenant())
    body = assert_problem(response, 422, "invalid_config")
    assert "lr must be a number in [1e-08, 10]" in body["detail"]


def test_choices_are_enums_with_distinct_identifiers(document: dict[str, Any]) -> None:
    method = document["components"]["schemas"]["JobSubmission"]["properties"]["cam_method"]
    assert method["enum"][:2] == ["gradcam", "gradcam++"]  # the wire names clients send today
    assert method["x-enum-varnames"][:2] == ["GRADCAM", "GRADCAM_PLUS_PLUS"]
    for _, _, operation in operations(document):
        for parameter in operation.get("parameters", []):
            names = parameter["schema"].get("x-enum-varnames")
            assert names is None or len(set(names)) == len(names), parameter
    png = document["paths"][HEATMAP_PNG]["get"]
    colormap = next(p for p in png["parameters"] if p["name"] == "colormap")
    assert set(colormap["schema"]["enum"]) == set(colormap_names())


def test_upload_arrays_state_their_sizes(document: dict[str, Any]) -> None:
    submit = document["paths"]["/v1/models/{model_id}/explanations"]["post"]["requestBody"]["content"]
    files = submit["multipart/form-data"]["schema"]["properties"]["files"]
    assert files["minItems"] == 1 and files["maxItems"] == 512


def test_responses_declare_what_is_sent(document: dict[str, Any]) -> None:
    report = document["paths"]["/v1/models/{model_id}/report"]["get"]["responses"]["200"]["content"]
    assert report["application/json"]["schema"]["type"] == "object"
    stream = document["paths"]["/v1/jobs/{job_id}/events"]["get"]["responses"]["200"]["content"]
    event = stream["text/event-stream"]["schema"]["properties"]  # one event, as OpenAPI 3.2 models it
    assert {"state", "epoch", "progress", "unauthorized"} <= set(event["event"]["enum"])
    assert event["data"]["contentSchema"]["required"] == ["job_id"]
    png = document["paths"][HEATMAP_PNG]["get"]["responses"]["200"]["content"]
    assert list(png) == ["image/png", "application/octet-stream"]
    assert "400" in document["paths"]["/v1/jobs"]["post"]["responses"]


def test_operation_ids_are_the_route_names_and_304_takes_if_none_match(document: dict[str, Any]) -> None:
    ids = {(path, method): operation["operationId"] for path, method, operation in operations(document)}
    assert ids[("/v1/jobs", "post")] == "submit_job"
    assert ids[("/v1/models/{model_id}/explanations", "post")] == "submit_explanation"
    assert len(set(ids.values())) == len(ids) and all(len(name) <= 32 for name in ids.values())
    assert not [name for name in document["components"]["schemas"] if name.startswith("Body_")]
    for path, method, operation in operations(document):
        headers = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
        assert ("If-None-Match" in headers) == ("304" in operation["responses"]), (method, path)


def test_options_and_405_name_every_method_of_the_path(api: ApiHarness) -> None:
    options = api.client.options("/v1/jobs")
    assert options.status_code == 204 and options.headers["allow"] == "GET, OPTIONS, POST"
    refused = api.client.delete("/v1/jobs", headers=api.new_tenant())
    assert_problem(refused, 405, "method_not_allowed")
    assert refused.headers["allow"] == "GET, OPTIONS, POST"
    assert api.client.options("/v1/no-such-thing").status_code == 404


@pytest.mark.parametrize(
    ("accept", "sent"),
    [
        (None, "image/png"),
        ("application/octet-stream", "application/octet-stream"),
        ("image/png, application/octet-stream", "image/png"),
        ("application/octet-stream, */*;q=0.1", "image/png"),
    ],
)
def test_a_png_is_sent_as_bytes_to_a_client_that_asks_only_for_bytes(accept: str | None, sent: str) -> None:
    headers = [] if accept is None else [(b"accept", accept.encode())]
    request = Request({"type": "http", "method": "GET", "path": "/", "headers": headers})
    assert negotiated(request, "image/png") == sent
    assert negotiated(request, "application/json") == "application/json"


def test_a_submission_s_integers_are_json_integers(api: ApiHarness) -> None:
    for wrong in ("5", 5.0, True):
        response = api.client.post("/v1/jobs", json={"faithfulness_images": wrong}, headers=api.new_tenant())
        assert_problem(response, 422, "invalid_request")
