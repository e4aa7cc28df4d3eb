"""The webhook sender's Prometheus metric, on the default registry that a worker serves
(``worker.metrics.serve_metrics``): every attempt's duration, by result, so that its count is the
number of attempts and a growing ``status`` or ``error`` share shows receivers in trouble."""

from __future__ import annotations

from prometheus_client import Histogram

from persistence.webhooks.deliveries import AttemptOutcome

ATTEMPT_SECONDS = Histogram(
    "batchcam_webhook_attempt_seconds",
    "Webhook delivery attempts, by result: succeeded (2xx), status (another answer), error (none).",
    ["result"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)


def observe_attempt(outcome: AttemptOutcome) -> None:
    result = "succeeded" if outcome.succeeded else "error" if outcome.status_code is None else "status"
    ATTEMPT_SECONDS.labels(result).observe(outcome.duration_ms / 1000)
