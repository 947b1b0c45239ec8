"""The API docs page (``/docs``) from files the hub serves itself, never from a CDN.

FastAPI's default ``/docs`` page loads Swagger UI's script and stylesheet from a public CDN,
so in a control room without internet it is blank. The Swagger UI files come from the
``swagger-ui-bundle-v2`` package (Swagger UI 5, which reads OpenAPI 3.1) and are served at
``/docs-assets``; ``/docs`` is the same page FastAPI renders, pointing there.
"""
from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.routing import Route

ASSETS = "/docs-assets"


def swagger_ui_dir() -> str:
    import swagger_ui_bundle  # type: ignore[import-untyped]  # ships the files, no type hints

    return str(swagger_ui_bundle.swagger_ui_path)


def serve_docs_locally(app: FastAPI) -> None:
    """Replace the app's ``/docs`` with one whose assets come from the hub itself."""
    docs_url = app.docs_url or "/docs"
    app.router.routes[:] = [r for r in app.router.routes
                            if not (isinstance(r, Route) and r.path in (docs_url, app.swagger_ui_oauth2_redirect_url))]
    app.docs_url = None  # the app no longer adds its CDN page
    app.mount(ASSETS, StaticFiles(directory=swagger_ui_dir()), name="docs-assets")
    title = f"{app.title} — API"

    @app.get(docs_url, include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url or "/openapi.json", title=title,
                                   swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
                                   oauth2_redirect_url="/docs/oauth2-redirect")

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()
