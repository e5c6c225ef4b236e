"""What answers without a token: /health (the API's description, /openapi.json and /docs, is FastAPI's own)."""

from __future__ import annotations

from fastapi import APIRouter

from hub.web import examples as ex
from hub.web.errors import DocumentRoute

router = APIRouter(route_class=DocumentRoute)


@router.get("/health", tags=["meta"], responses=ex.answers({"status": "ok"}))
def health() -> dict:
    return {"status": "ok"}
