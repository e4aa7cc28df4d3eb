"""The Celery application: queues ``train``, ``explain`` and ``maintenance`` (the reaper and the webhook
sender, on a beat schedule).

The sweep has its own queue, served by explain workers (short tasks), so it never waits behind an
hour of training on a training worker (one task at a time).

Messages are only wake-up calls: a task claims its job row before doing anything, so messages are
acknowledged on receipt and a long training never holds an unacknowledged message (docs/ARCHITECTURE.md §6.7).
"""

from __future__ import annotations

from celery import Celery

from persistence.settings import Settings

TRAIN_TASK = "batchcam.train"
REAP_TASK = "batchcam.reap"
EXPLAIN_TASK = "batchcam.explain"
WEBHOOK_TASK = "batchcam.deliver_webhooks"
TRAIN_QUEUE = "train"
EXPLAIN_QUEUE = "explain"
MAINTENANCE_QUEUE = "maintenance"
REDIS_SCHEMES = ("redis://", "rediss://")  # brokers whose own Redis the sweep and the wake-up gate use


def make_celery(settings: Settings) -> Celery:
    app = Celery("batchcam", broker=settings.resolved_broker_url())
    app.conf.update(
        task_acks_late=False,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_default_queue=TRAIN_QUEUE,
        task_routes={
            TRAIN_TASK: {"queue": TRAIN_QUEUE},
            REAP_TASK: {"queue": MAINTENANCE_QUEUE},
            EXPLAIN_TASK: {"queue": EXPLAIN_QUEUE},
            # Short, bounded sends (docs/ARCHITECTURE.md §7.5): they belong with the sweep.
            WEBHOOK_TASK: {"queue": MAINTENANCE_QUEUE},
        },
        broker_connection_retry_on_startup=True,
        beat_schedule={
            "reap-expired-leases": {"task": REAP_TASK, "schedule": settings.reaper_interval_seconds},
            "deliver-webhooks": {"task": WEBHOOK_TASK, "schedule": settings.webhook_sweep_interval_seconds},
        },
        worker_hijack_root_logger=False,
        # One task at a time, in a thread of the worker process: prefork pool children are daemonic
        # and may not start the training child, and a pool that forks after CUDA initialisation is
        # unsafe; the solo pool ran the task on the event loop itself, which then sent no heartbeats
        # and answered no ping for a whole training run. One worker process per GPU (or per explain
        # slot) is the unit of scaling anyway.
        worker_pool="threads",
        worker_concurrency=1,
    )
    if app.conf.broker_url.startswith("filesystem://"):
        # The embedded default: a folder shared by the API and the worker on one machine.
        folder = settings.broker_folder()
        (folder / "processed").mkdir(parents=True, exist_ok=True)
        app.conf.broker_transport_options = {
            "data_folder_in": str(folder),
            "data_folder_out": str(folder),
            "processed_folder": str(folder / "processed"),
            "control_folder": str(folder / "control"),  # default is ./control, wherever we run
            "store_processed": False,
        }
    return app


def fetch_only_with_a_free_slot(app: Celery) -> None:
    """For a training worker: take a message only when the task slot is free.

    Messages are acknowledged when their task starts, which frees the prefetch window: a busy worker
    would otherwise take the next job's message and hold it for a whole training run while another
    worker idles. Not for explain workers: with it, Redis is next asked a second after each task
    ends (``benchmarks/explain_load.py``: p50 998 ms instead of 28 ms), while a held explain message
    waits only one explanation. Celery ≥ 5.6, Redis brokers only.
    """
    if app.conf.broker_url.startswith(REDIS_SCHEMES):
        app.conf.worker_disable_prefetch = True
