"""How the web layer reads bodies and answers errors: the body limit (413), JSON bodies read as the CLI reads its
files (400 when too deep), input errors without the input (422), every method of a path named on a 405, and the
services' typed errors (hub.services.errors) mapped to their HTTP statuses, all in the API's one error body::

    {"error": {"code": "invalid_field", "message": "members[0].id_number: not a valid ...",
               "field": "members[0].id_number", "details": [...]}}

``code`` is one of hub.web.models.ERROR_CODES (README, "Errors"; the OpenAPI's ErrorCode), ``message`` English and
free of personal data, ``field`` a JSON path into the body counting from 0 as JSON does (or a query or path
parameter's name, or null). The DCI routes answer in DCI's form (hub.web.dci) and the console with a page
(hub.web.console.pages), each wrapping these handlers for its own paths."""

from __future__ import annotations

import http
import logging
import re
import secrets

from fastapi import FastAPI, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.routing import APIRoute
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from consent.ledger import LedgerUnavailable
from core.documents import DocumentError, read_document
from hub.services.errors import Conflict, Invalid, NotFound, ServiceError
from hub.web.models import ERROR_CODES

# a service's refusal -> the status it is answered with (the most specific class first in its MRO; NotEntitled is a
# NotFound, answered as not_found: a refused read looks the same as a household that does not exist)
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
log = logging.getLogger(__name__)

# the code of a refusal that names none of its own, by status
CODE_OF_STATUS = {400: "invalid_body", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
                  405: "method_not_allowed", 409: "conflict", 413: "body_too_large", 429: "rate_limited",
                  503: "store_unavailable"}
# Starlette's own sentences (404 of an unknown route, 405) in the API's words
PLAIN = {404: "no such route in this API", 405: "this path does not take this method (Allow names those it does)"}
# "members[0].id_number: not a valid ..." names its field first, as the services' problems do
_FIELD_FIRST = re.compile(r"^([A-Za-z_][\w.\[\]]*): ")


class Problem:
    """One thing wrong with a request: its code, its English message, the field at fault (or None)."""

    __slots__ = ("code", "message", "field")

    def __init__(self, code: str, message: str, field: str | None = None):
        assert code in ERROR_CODES, code  # the one list (hub.web.models.ERROR_CODES) is the README's and OpenAPI's
        self.code, self.message, self.field = code, message, field

    def as_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "field": self.field}


def field_of(message: str) -> str | None:
    """The field a message names first (``case_ref: ...``), or None; ``body`` is the whole body, not a field."""
    found = _FIELD_FIRST.match(message)
    return found.group(1) if found and found.group(1) != "body" else None


def json_path(loc) -> str | None:
    """Pydantic's location as the field's JSON path: ("body", "members", 0, "id_number") -> members[0].id_number;
    a query or path parameter by its name; None for the body as a whole."""
    where, *parts = [str(p) if not isinstance(p, int) else p for p in loc] or [None]
    path = ""
    for p in parts:
        path += f"[{p}]" if isinstance(p, int) else f".{p}" if path else p
    return path or (None if where in ("body", None) else where)


def _phrase(status_code: int) -> str:
    try:
        return http.HTTPStatus(status_code).phrase
    except ValueError:
        return "refused"


def problem_of(status_code: int, detail) -> list[Problem]:
    """What an HTTPException's or a service error's detail says, as problems: a sentence (naming its field first or
    not), or ``{"problems": [sentences]}``."""
    if isinstance(detail, dict) and isinstance(detail.get("problems"), list):
        sentences = [str(p) for p in detail["problems"]] or ["the input is not acceptable"]
    elif isinstance(detail, str):
        sentences = [PLAIN.get(status_code, detail) if detail == _phrase(status_code) else detail]
    else:
        sentences = [_phrase(status_code)]
    out = []
    for sentence in sentences:
        field = field_of(sentence)
        if status_code == 422:
            code = "invalid_field" if field else "invalid_request"
        else:
            code = CODE_OF_STATUS.get(status_code, "internal_error" if status_code >= 500 else "invalid_request")
        out.append(Problem(code, sentence, field))
    return out


def error_body(problems: list[Problem], status_code: int) -> dict:
    """The API's one error body. Several problems (a 422 lists every field at fault) keep the one shape: the first
    in code, message and field, which is all a client reading one error needs, and all of them in ``details``;
    so no client has to tell a list from an object before reading the code."""
    first = problems[0].as_dict()
    if status_code == 422:
        first["details"] = [p.as_dict() for p in problems]
    return {"error": first}


def error_response(status_code: int, code: str, message: str, field: str | None = None,
                   headers: dict | None = None) -> JSONResponse:
    """A refusal a route answers itself (the household lookup's own codes), in the one body."""
    return JSONResponse(error_body([Problem(code, message, field)], status_code), status_code=status_code,
                        headers=headers)


def _answer(status_code: int, problems: list[Problem], headers: dict | None = None) -> Response:
    if status_code in (204, 304):  # no body may follow these
        return Response(status_code=status_code, headers=headers)
    return JSONResponse(error_body(problems, status_code), status_code=status_code, headers=headers)


async def _invalid(_request: Request, exc: RequestValidationError) -> Response:
    # Pydantic echoes the input in its errors; the input holds ID numbers and names: only the place and the rule
    problems = []
    for e in exc.errors():
        field = json_path(e.get("loc", ()))
        message = str(e.get("msg", "not acceptable"))
        problems.append(Problem("invalid_field" if field else "invalid_request",
                                f"{field}: {message}" if field else message, field))
    return _answer(422, problems or [Problem("invalid_request", "the input is not acceptable")])


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    headers = dict(exc.headers or {})
    if exc.status_code == 405:  # Starlette names the methods of one route only: name every route's on the path
        allowed = {m for r in request.app.routes if isinstance(r, APIRoute) and r.path_regex.match(request.url.path)
                   for m in r.methods}
        headers["Allow"] = ", ".join(sorted(allowed))
    return _answer(exc.status_code, problem_of(exc.status_code, exc.detail), headers or None)


async def _service_error(request: Request, exc: ServiceError) -> Response:
    code = status_of(exc)
    if code is None:  # a refusal no status was chosen for: a server error, not a guess
        raise exc
    if isinstance(exc, Invalid) and exc.problems:
        return _answer(code, problem_of(code, {"problems": exc.problems}))
    return _answer(code, problem_of(code, exc.detail))


UNAVAILABLE_RETRY_S = 2
UNAVAILABLE = "the hub's store is not available now; try again shortly"


async def _unavailable(request: Request, exc: Exception) -> Response:
    """The store refused or did not answer (disk full, locked past its timeout, down), or a read's ledger entry
    could not be made durable: 503 at once, never a hang, and nothing that would have needed the write. The next
    request tries again: nothing is kept broken."""
    return _answer(status.HTTP_503_SERVICE_UNAVAILABLE, [Problem("store_unavailable", UNAVAILABLE)],
                   {"Retry-After": str(UNAVAILABLE_RETRY_S)})


def reference(request: Request, exc: Exception) -> str:
    """A reference for an unexpected error, logged here with the traceback and shown to the caller, so that the two
    meet."""
    ref = secrets.token_hex(4).upper()
    log.error("unexpected error, reference %s, on %s %s", ref, request.method, request.url.path,
              exc_info=(type(exc), exc, exc.__traceback__))
    return ref


async def _unexpected(request: Request, exc: Exception) -> Response:
    """Anything else: 500 with a reference the log holds with the traceback, never the exception's text. Starlette
    raises the exception again after this answer (the server logs it as before). The DCI paths keep the plain 500
    they had: DCI has no error body of its own for it."""
    ref = reference(request, exc)
    if request.url.path.startswith("/dci/"):
        return PlainTextResponse("Internal Server Error", status_code=500)
    return _answer(500, [Problem("internal_error", f"an unexpected error; reference {ref}")])


def install(app: FastAPI) -> None:
    """The app's handlers of errors (before hub.web.dci.install, which answers its own paths' in DCI's form, and
    hub.web.console.pages.install, which answers the console's with a page)."""
    app.add_exception_handler(LedgerUnavailable, _unavailable)
    app.add_exception_handler(OperationalError, _unavailable)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(Exception, _unexpected)
