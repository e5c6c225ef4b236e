"""The hub's web app, served by `hub api`: the JSON API (hub/web/api.py: /health and /v1), the DCI Social Registry
API for federated platforms (hub/web/dci.py: /dci/registry/...) and the console (hub/web/console*.py: /console)
on one FastAPI app. This is the one module that knows all three; the JSON API and the console never import each
other.

The app holds what its requests share: the rate limiter (``app.state.limiter``, read by hub.web.deps), the body
limit, the handlers of errors (hub.web.errors). Settings are read here, so that a bad one stops the start, not every
request."""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI

from core.settings import settings
from core.store import AsyncEngines
from hub.services import worker as inline_worker
from hub.services.lookup import MAX_BODY_BYTES as lookup_body_bytes
from hub.services.secrets_check import enforce
from hub.web import api, dci, docs, errors
from hub.web.console import applications as console_applications
from hub.web.console import audit as console_audit
from hub.web.console import review as console_review
from hub.web.console import case as console_case
from hub.web.console import pages as console
from hub.web.errors import BodyLimit, DocumentRoute
from hub.web.residents import pages as residents
from hub.web.models import ERRORS
from hub.web.ratelimit import Limiter, from_env


@asynccontextmanager
async def lifespan(app: FastAPI):
    """While the app serves: without a scheduler (no HUB_AIRFLOW_URL; HUB_INLINE_WORKER not 0), a worker of its own
    verifies the requests it receives (hub.services.worker), so nothing waits for a `hub verify`."""
    worker = inline_worker.Worker().start() if inline_worker.enabled() else None
    app.state.async_engines = AsyncEngines()  # the record read's asyncio engine on PostgreSQL (hub.services.reads)
    try:
        yield
    finally:
        await app.state.async_engines.dispose()
        if worker is not None:
            await asyncio.to_thread(worker.stop)


class _RedactedAccessLog(logging.Filter):
    """uvicorn's access log without what an address may carry that no log should: a resident's signing link token
    (/m/s/<token>) and every query string of /m/ (the identity provider's code and state come back in one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str) and args[2].startswith("/m/"):
            path = args[2].split("?", 1)[0]
            if path.startswith("/m/s/"):
                path = "/m/s/<token>" + ("/" if path.endswith("/") else "")
            record.args = (*args[:2], path, *args[3:])
        return True


def _redact_access_log() -> None:
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, _RedactedAccessLog) for f in access.filters):
        access.addFilter(_RedactedAccessLog())


def create_app(limiter: Limiter | None = None) -> FastAPI:
    """The app, with ``limiter`` as its rate limiter (default: HUB_API_RATE's, hub.web.ratelimit.from_env)."""
    # public: /health, and the API's description (/openapi.json, /docs, /redoc: no personal data; README, "API"),
    # its pages from the files of an installed package (hub.web.docs), never from a CDN
    app = FastAPI(title="Verification hub API (社会救助家庭经济状况核对平台)", version="1", responses=ERRORS,
                  docs_url=None, redoc_url=None, swagger_ui_oauth2_redirect_url=None, lifespan=lifespan)
    app.router.route_class = DocumentRoute
    enforce()  # outside development: no default, missing or exposed secrets
    _redact_access_log()
    app.state.limiter = limiter if limiter is not None else from_env()  # a bad HUB_API_RATE stops the start
    app.add_middleware(BodyLimit, max_bytes=settings().api_max_body_bytes,
                       larger={"/v1/household-lookup": lookup_body_bytes})  # so does a bad HUB_API_MAX_BODY_BYTES
    settings().lookup_per_hour  # and a bad HUB_LOOKUP_PER_HOUR

    errors.install(app)
    api.install(app)
    dci.install(app)  # /dci/registry/...: answers its paths' refusals in DCI's form, so after errors.install
    docs.install(app)
    console.install(app)
    app.include_router(console_case.router)
    app.include_router(console_audit.router)
    app.include_router(console_review.router)
    app.include_router(console_applications.router)
    residents.install(app)  # /m/: after the console, so its error pages wrap the others' for /m/ paths only
    return app
