"""How the web layer reads bodies and answers errors: the body limit (413), JSON bodies read as the CLI reads its
files (400 when too deep), input errors without the input (422), every method of a path named on a 405, and the
services' typed errors (hub.services.errors) mapped to their HTTP statuses, all in the API's one error body
``{"detail": ...}``."""

from __future__ import annotations

from fastapi import FastAPI, HTTPException, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from consent.ledger import LedgerUnavailable
from core.documents import DocumentError, read_document
from hub.services.errors import Conflict, Invalid, NotFound, ServiceError

# a service's refusal -> the status it is answered with (the most specific class first in its MRO; NotEntitled is a
# NotFound: a refused read looks the same as a household that does not exist)
STATUS = {NotFound: status.HTTP_404_NOT_FOUND, Invalid: 422, Conflict: status.HTTP_409_CONFLICT}


def status_of(exc: ServiceError) -> int | None:
    return next((STATUS[c] for c in type(exc).__mro__ if c in STATUS), None)


# -- bodies: what the JSON API reads ----------------------------------------------------------
class BodyLimit:
    """ASGI middleware: a body over ``max_bytes`` is refused with 413 in the API's error body, counted while it
    arrives (with a Content-Length or chunked without one), so no more than that is ever read; a Content-Length over
    it is refused before a byte is read. The DCI routes read their own bodies (1 MiB, refused in DCI's form) and the
    console its forms (signed forms are uploaded there, each up to 10 MB)."""

    OWN_READERS = ("/dci/", "/console/")

    def __init__(self, app, max_bytes: int, larger: dict[str, int] | None = None):
        self.app, self.max_bytes, self.larger = app, max_bytes, larger or {}

    @staticmethod
    def _too_large(limit: int) -> HTTPException:
        return HTTPException(413, f"body: larger than {limit} bytes",
                             headers={"Connection": "close"})  # the rest of the body is not read

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"].startswith(self.OWN_READERS):
            return await self.app(scope, receive, send)
        limit = max(self.max_bytes, self.larger.get(scope["path"], 0))  # a route whose documents are larger
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), b"")
        size = 0

        async def counted():  # raised from here, the refusal reaches the app's handler of HTTPException
            nonlocal size
            if declared.isdigit() and int(declared) > limit:
                raise self._too_large(limit)
            message = await receive()
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                if size > limit:
                    raise self._too_large(limit)
            return message

        await self.app(scope, counted, send)


class _DocumentRequest(Request):
    async def json(self):
        if not hasattr(self, "_json"):
            try:
                self._json = read_document(await self.body())
            except DocumentError as exc:
                raise HTTPException(status.HTTP_400_BAD_REQUEST, f"body: {exc}") from None
        return self._json


class DocumentRoute(APIRoute):
    """A JSON API route whose body is read by core.documents.read_document, as the CLI reads its files: UTF-8 JSON
    nested at most 32 levels deep (no RecursionError), else 400 saying why."""

    def get_route_handler(self):
        handler = super().get_route_handler()

        async def read_as_document(request: Request) -> Response:
            return await handler(_DocumentRequest(request.scope, request.receive))

        return read_as_document


# -- answers ----------------------------------------------------------------------------------
async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
    # Pydantic echoes the input in its errors; the input holds ID numbers and names: drop it.
    problems = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
    return JSONResponse({"detail": problems}, status_code=422)


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    if exc.status_code == 405:  # Starlette names the methods of one route only: name every route's on the path
        allowed = {m for r in request.app.routes if isinstance(r, APIRoute) and r.path_regex.match(request.url.path)
                   for m in r.methods}
        exc.headers = {**(exc.headers or {}), "Allow": ", ".join(sorted(allowed))}
    return await http_exception_handler(request, exc)


async def _service_error(request: Request, exc: ServiceError) -> Response:
    code = status_of(exc)
    if code is None:  # a refusal no status was chosen for: a server error, not a guess
        raise exc
    return await http_exception_handler(request, HTTPException(code, exc.detail))


UNAVAILABLE_RETRY_S = 2


async def _unavailable(request: Request, exc: Exception) -> Response:
    """The store refused or did not answer (disk full, locked past its timeout, down), or a read's ledger entry
    could not be made durable: 503 at once, never a hang, and nothing that would have needed the write. The next
    request tries again: nothing is kept broken."""
    return await http_exception_handler(request, HTTPException(
        status.HTTP_503_SERVICE_UNAVAILABLE, "the hub's store is not available now; try again shortly",
        headers={"Retry-After": str(UNAVAILABLE_RETRY_S)}))


def install(app: FastAPI) -> None:
    """The app's handlers of errors (before hub.web.dci.install, which answers its own paths' in DCI's form)."""
    app.add_exception_handler(LedgerUnavailable, _unavailable)
    app.add_exception_handler(OperationalError, _unavailable)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(ServiceError, _service_error)
