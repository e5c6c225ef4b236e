"""The department API (JSON, under /v1, and /health): its routers by area, in the order of the OpenAPI document.
Every route but /health and the API's description (/openapi.json, /docs) needs a bearer token (hub.web.deps).

The app itself is made by hub.web.app.create_app, which mounts these routers beside the DCI API and the console;
the JSON API and the console never import each other: what both serve comes from hub.services."""

from __future__ import annotations

from fastapi import FastAPI

from hub.web.routers import admin, applications, assistance, audit, meta, records, requests, staff

ROUTERS = (meta.router, requests.router, applications.router, records.router, assistance.router, staff.router,
           admin.router, audit.router)


def install(app: FastAPI) -> None:
    """Mount the JSON API's routes on the app."""
    for router in ROUTERS:
        app.include_router(router)
