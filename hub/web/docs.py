"""The API's description for people: Swagger UI at /docs and ReDoc at /redoc, both from files shipped with an
installed package (fastapi-offline's Swagger UI and ReDoc bundles, served at /docs-static/), never from a CDN: an
office intranet reaches no outside host, and a page that loads its script from one stays blank there.

The pages are public, like /openapi.json (README, "API"): they hold no data, token or key. Their Content Security
Policy names this origin only, so the browser itself refuses anything from elsewhere (the console's stricter policy,
script-src 'none', is the console's: Swagger UI starts from one inline script, allowed here by its hash)."""

from __future__ import annotations

import base64
import hashlib
import re
from functools import lru_cache
from importlib.resources import files

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles

STATIC_URL = "/docs-static"
STATIC_DIR = files("fastapi_offline") / "static"  # swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)
# ReDoc's menu shows its maker's logo from their CDN (hidden when it fails to load): an image that fails at once
REDOC_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"


@lru_cache(maxsize=1)
def _redoc_bundle() -> bytes:
    return (STATIC_DIR / "redoc.standalone.js").read_bytes().replace(REDOC_LOGO, b"data:,")


def _policy(html: str) -> str:
    """This origin only; the page's inline scripts by their hashes; inline styles (both UIs set them); ReDoc's
    search runs in a worker made from a blob."""
    hashes = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'"
                      for s in _INLINE_SCRIPT.findall(html))
    return (f"default-src 'self'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
            "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'")


def _secured(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = _policy(page.body.decode("utf-8"))
    page.headers["X-Content-Type-Options"] = "nosniff"
    page.headers["Referrer-Policy"] = "no-referrer"
    return page


def _json_example(entry: dict | None):
    return ((entry or {}).get("content") or {}).get("application/json", {}).get("example")


def _with_examples(app: FastAPI) -> None:
    """The routes' examples (hub.web.examples) in the document as written: FastAPI drops every null from the
    document it makes, examples included, so an example would lack the fields an answer holds as null."""
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            doc = generate()
            for route in app.routes:
                if not isinstance(route, APIRoute) or route.path_format not in doc["paths"]:
                    continue
                for method in route.methods:
                    op = doc["paths"][route.path_format].get(method.lower())
                    if op is None:
                        continue
                    for code, entry in (route.responses or {}).items():
                        if (example := _json_example(entry)) is not None:
                            op["responses"][str(code)]["content"]["application/json"]["example"] = example
                    if (example := _json_example((route.openapi_extra or {}).get("requestBody"))) is not None:
                        op["requestBody"]["content"]["application/json"]["example"] = example
        return app.openapi_schema

    app.openapi = openapi


def install(app: FastAPI) -> None:
    """/docs, /redoc and their files, on an app made with docs_url=None and redoc_url=None; the routes' examples
    kept as written in /openapi.json."""
    _with_examples(app)

    @app.get(f"{STATIC_URL}/redoc.standalone.js", include_in_schema=False)
    def redoc_bundle() -> Response:  # before the mount, which serves the other files as they are
        return Response(_redoc_bundle(), media_type="text/javascript",
                        headers={"Cache-Control": "public, max-age=86400"})

    app.mount(STATIC_URL, StaticFiles(directory=str(STATIC_DIR)), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _secured(get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}", title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{STATIC_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{STATIC_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{STATIC_URL}/favicon.png", swagger_ui_parameters=app.swagger_ui_parameters))

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _secured(get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}", title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{STATIC_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{STATIC_URL}/favicon.png", with_google_fonts=False))
