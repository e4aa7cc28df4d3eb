"""A worker's metrics endpoint: served on ``BATCHCAM_WORKER_METRICS_PORT`` when set, not at all when
unset, and a port that cannot be bound leaves the worker working (logged, not raised). The histograms'
values are tested where explanations run (``test_api_explanations``); that a real Celery worker starts
the endpoint, in ``test_celery_end_to_end``."""

from __future__ import annotations

import logging
import socket
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from persistence.settings import Settings
from service.seaweed import free_port
from worker.metrics import serve_metrics


def scrape(port: int) -> set[str]:
    """The metric families served on ``port``."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return {family.name for family in text_string_to_metric_families(response.read().decode())}


def test_the_worker_serves_its_registry_on_the_configured_port() -> None:
    port = free_port()
    server = serve_metrics(
        Settings(BATCHCAM_WORKER_METRICS_PORT=port, BATCHCAM_WORKER_METRICS_ADDRESS="127.0.0.1")
    )
    assert server is not None
    try:
        families = scrape(port)
    finally:
        server.shutdown()
        server.server_close()
    assert {"batchcam_explain_duration_seconds", "batchcam_explain_run_seconds"} <= families


def test_no_port_no_endpoint() -> None:
    assert Settings().worker_metrics_port is None
    assert serve_metrics(Settings()) is None


def test_a_port_in_use_is_logged_and_the_worker_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with caplog.at_level(logging.ERROR, logger="worker.metrics"):
            server = serve_metrics(
                Settings(BATCHCAM_WORKER_METRICS_PORT=port, BATCHCAM_WORKER_METRICS_ADDRESS="127.0.0.1")
            )
    assert server is None
    assert f"worker metrics not served on 127.0.0.1:{port}" in caplog.text


@pytest.mark.parametrize("port", ["0", "70000", "http"])
def test_a_port_outside_1_to_65535_is_a_settings_error(port: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATCHCAM_WORKER_METRICS_PORT", port)
    with pytest.raises(ValueError, match="BATCHCAM_WORKER_METRICS_PORT"):
        Settings()
