"""The API docs page (``/docs``) from files the hub serves itself, never from a CDN.

FastAPI's default ``/docs`` page loads Swagger UI's script and stylesheet from a public CDN,
so in a control room without internet it is blank. The Swagger UI files come from the
``swagger-ui-bundle-v2`` package (Swagger UI 5, which reads OpenAPI 3.1) and are served at
``/docs-assets``; ``/docs`` is the same page FastAPI renders, pointing there. The app is
created with ``docs_url=None`` and :func:`serve_docs_locally` adds the page
(:func:`hub.app.create_app`).
"""
from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs-assets"


def swagger_ui_dir() -> str:
    import swagger_ui_bundle  # type: ignore[import-untyped]  # ships the files, no type hints

    return str(swagger_ui_bundle.swagger_ui_path)


def serve_docs_locally(app: FastAPI, docs_url: str = "/docs") -> None:
    """Add ``docs_url`` (the app is made with ``docs_url=None``) with assets from the hub itself."""
    if app.docs_url is not None:
        raise ValueError("create the app with docs_url=None: its own /docs page loads Swagger UI from a CDN")
    app.mount(ASSETS, StaticFiles(directory=swagger_ui_dir()), name="docs-assets")
    title = f"{app.title} — API"
    redirect_url = f"{docs_url}/oauth2-redirect"

    @app.get(docs_url, include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url or "/openapi.json", title=title,
                                   swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
                                   oauth2_redirect_url=redirect_url)

    @app.get(redirect_url, include_in_schema=False)
    async def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()
