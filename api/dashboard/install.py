"""Adds the dashboard's pages and static files to the API app."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api.dashboard import (
    explanation_pages,
    job_page,
    jobs_list,
    model_page,
    models_list,
    new_job,
    playground,
    sign_in,
)
from api.dashboard.rendering import DASHBOARD_PATH, PACKAGE

# new_job before job_page: /jobs/new is a page, not a job id.
PAGE_MODULES = (sign_in, jobs_list, new_job, job_page, models_list, model_page, playground, explanation_pages)


def install_dashboard(app: FastAPI) -> None:
    for module in PAGE_MODULES:
        app.include_router(module.router)
    app.mount(f"{DASHBOARD_PATH}/static", StaticFiles(directory=PACKAGE / "static"), name="dashboard-static")
