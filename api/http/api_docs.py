"""``/docs``: Swagger UI from the ``openapi-ui-bundles`` package's files, served by the app itself.

FastAPI's default page loads Swagger UI from a CDN, which leaves it blank without internet. (The
package ships Swagger UI 5, which reads OpenAPI 3.1 documents as FastAPI writes them; 4.x cannot.)"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from openapi_ui_bundles.swagger_ui import static_path

DOCS_PATH = "/docs"
ASSETS_PATH = "/docs/assets"


def install_swagger_ui(app: FastAPI) -> None:
    app.mount(ASSETS_PATH, StaticFiles(directory=str(static_path)), name="swagger-ui-assets")

    @app.get(DOCS_PATH, include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} · API",
            swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_PATH}/favicon-32x32.png",
        )
