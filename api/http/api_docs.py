"""``/docs``: Swagger UI from the ``openapi-ui-bundles`` package's files, served by the app itself.

FastAPI's default page loads Swagger UI from a CDN, which leaves it blank without internet. The
package ships Swagger UI 5, which reads OpenAPI 3.1 documents as FastAPI writes them (4.x cannot).
ReDoc (``/redoc``) stays off: even from the package's copy, its footer loads a logo from Redocly's
CDN (the browser tests refuse and report any request to another host)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from openapi_ui_bundles import swagger_ui

SWAGGER_UI_PATH = "/docs"
SWAGGER_UI_ASSETS = "/docs/assets"


def install_api_docs(app: FastAPI) -> None:
    app.mount(SWAGGER_UI_ASSETS, StaticFiles(directory=str(swagger_ui.static_path)), name="swagger-ui-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get(SWAGGER_UI_PATH, include_in_schema=False)
    def swagger_ui_page() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} · API",
            swagger_js_url=f"{SWAGGER_UI_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{SWAGGER_UI_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{SWAGGER_UI_ASSETS}/favicon-32x32.png",
        )
