"""Execution: Celery tasks that claim jobs and supervise training in child processes."""
