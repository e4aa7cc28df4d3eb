"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) from the ``openapi-ui-bundles`` package's files,
served by the app itself.

FastAPI's default pages load both from a CDN (and ReDoc its fonts from Google), which leaves them
blank without internet. The package ships Swagger UI 5, which reads OpenAPI 3.1 documents as FastAPI
writes them (4.x cannot), and ReDoc 2."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from openapi_ui_bundles import redoc, swagger_ui

SWAGGER_UI_PATH, REDOC_PATH = "/docs", "/redoc"
SWAGGER_UI_ASSETS, REDOC_ASSETS = "/docs/assets", "/redoc/assets"


def install_api_docs(app: FastAPI) -> None:
    app.mount(SWAGGER_UI_ASSETS, StaticFiles(directory=str(swagger_ui.static_path)), name="swagger-ui-assets")
    app.mount(REDOC_ASSETS, StaticFiles(directory=str(redoc.static_path)), name="redoc-assets")
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

    @app.get(REDOC_PATH, include_in_schema=False)
    def redoc_page() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{app.title} · API",
            redoc_js_url=f"{REDOC_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{REDOC_ASSETS}/logo-mini.svg",
            with_google_fonts=False,
        )
