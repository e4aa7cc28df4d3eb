"""Request headers are capped before authentication (issue 16): too many fields or too many bytes
answer 431 problem+json from the app, and the server itself (``python -m api.serve``, the command
the README, the Dockerfile and compose run) stops buffering a header block past its size limit."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest

from service.api_support import ApiHarness, api_harness, assert_problem
from service.served_api import ServedApi, served_api

TOO_MANY = {f"x-filler-{index}": "1" for index in range(150)}  # the default cap is 100 fields
TOO_LARGE = {"x-filler": "a" * 70_000}  # the default cap is 64 KiB


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiHarness]:
    with api_harness(tmp_path_factory.mktemp("api-headers")) as harness:
        yield harness


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApi]:
    state = tmp_path_factory.mktemp("served-headers")
    with served_api({"BATCHCAM_STATE_DIR": str(state)}, state / "api.log") as served:
        yield served


@pytest.mark.parametrize("headers", [TOO_MANY, TOO_LARGE], ids=["many-fields", "large-field"])
def test_the_app_refuses_oversized_headers_before_the_key_check(
    api: ApiHarness, headers: dict[str, str]
) -> None:
    response = api.client.get("/v1/jobs", headers=headers)  # no key: a 401 would mean auth ran first
    assert_problem(response, 431, "request_header_fields_too_large")


def test_ordinary_headers_pass(api: ApiHarness) -> None:
    headers = {**api.new_tenant(), **{f"x-filler-{index}": "1" for index in range(50)}}
    assert api.client.get("/v1/jobs", headers=headers).status_code == 200


def raw_exchange(served: ServedApi, header_lines: bytes) -> bytes:
    """Send a GET with these header lines over a plain socket; what came back before the server closed
    (empty if it reset the connection while the request was still being sent)."""
    request = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n" + header_lines + b"Connection: close\r\n\r\n"
    received = b""
    with socket.create_connection(("127.0.0.1", served.port), timeout=30) as connection:
        try:
            connection.sendall(request)
            while chunk := connection.recv(65536):
                received += chunk
        except (BrokenPipeError, ConnectionResetError):
            pass
    return received


def test_the_server_answers_431_for_too_many_fields(server: ServedApi) -> None:
    answer = raw_exchange(server, b"".join(f"X-Filler-{index}: 1\r\n".encode() for index in range(150)))
    assert answer.startswith(b"HTTP/1.1 431"), answer[:300]
    assert b"application/problem+json" in answer and b"request_header_fields_too_large" in answer


@pytest.mark.parametrize(
    "header_lines",
    [b"X-Filler: " + b"a" * 200_000 + b"\r\n", b"X: 1\r\n" * 100_000],
    ids=["one-200-kb-field", "100000-fields"],
)
def test_the_server_stops_reading_a_header_block_past_its_limit(
    server: ServedApi, header_lines: bytes
) -> None:
    """The h11 parser gives up at 64 KiB with a plain 400 and closes: the app (whose answer would be a
    431) never receives such a request, so it is never held whole in memory."""
    answer = raw_exchange(server, header_lines)
    assert answer == b"" or answer.startswith(b"HTTP/1.1 400"), answer[:300]
    assert httpx.get(f"{server.base_url}/healthz", timeout=10).status_code == 200  # and serves on
