"""The department API (FastAPI): requests, household records. Every route but /health and the API's description
(/openapi.json, /docs) needs a bearer token."""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request, status
from fastapi import Path as PathParam
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from sqlalchemy import select

from consent import ledger
from hub.web import dci
from hub.services import clients
from hub.web import console
from core.settings import settings
from core.documents import DocumentError, read_document
from hub.stages.intake import PURPOSES, InvalidRequest, create_request
from hub.services.lookup import MAX_BODY_BYTES as lookup_body_bytes
from core.ids import HEX32, HOUSEHOLD, MAX_ID, NO_NUL, PERSON
from hub.stages.records import RecordNotFound, load_record
from core.store import FetchBatch
from core.store import Request as RequestRow
from core.store import session, utcnow

Purpose = Literal[tuple(PURPOSES)]  # type: ignore[valid-type]


# -- models: what comes in, what goes out -----------------------------------------------------
class Problem(BaseModel):
    loc: list[str | int] = Field(description="where: body, query or path, then the field")
    msg: str


class ErrorOut(BaseModel):
    detail: str | list[Problem] | dict = Field(description="what is wrong: a sentence, the fields at fault, or "
                                               "{problems: [...]}; never an ID number or a name")


class MemberIn(BaseModel):
    id_number: str = Field(description="resident ID number (GB 11643)")
    name: str
    relation: str = Field(description="head, spouse, son, daughter, child, grandchild, parent, other")


class FinancialConsentIn(BaseModel):
    sources: list[str] = Field(description="bank, securities, commercial_insurance, internet_finance")
    evidence_sha256: str = Field(description="SHA-256 (hex) of the separate financial consent form")


class ConsentIn(BaseModel):
    id_number: str = Field(description="the member")
    sources: list[str]
    evidence_sha256: str | None = Field(None, description="SHA-256 (hex) of the member's signed form (adults)")
    guardian_id_number: str | None = Field(None, description="the adult member who signs for a minor")
    financial_consent: FinancialConsentIn | None = None


def _iso_text(value):
    """A moment in a body is ISO 8601 text: pydantic would also read a number, a boolean or a text of digits (as
    seconds since 1970)."""
    if not isinstance(value, str):
        raise ValueError("an ISO 8601 date and time (text) with a time zone offset")
    return _iso(value)


def _date_text(value):
    """A day in a body is ISO 8601 text (YYYY-MM-DD), or null where it may be empty: pydantic would also read a
    number as seconds since 1970."""
    if value is not None and not (isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value)):
        raise ValueError("an ISO 8601 date (text, YYYY-MM-DD)")
    return value


class AuthorizationIn(BaseModel):
    valid_from: Annotated[dt.datetime, BeforeValidator(_iso_text)]
    valid_until: Annotated[dt.datetime, BeforeValidator(_iso_text)]
    recheck_interval_days: int = Field(90, strict=True, description="whole days, a JSON integer (not text)")
    data_life_days: int = Field(30, strict=True, description="whole days, a JSON integer (not text)")
    consents: list[ConsentIn]


class RequestIn(BaseModel):
    purpose: Purpose
    case_ref: str = Field(pattern=NO_NUL)
    sources: list[str]
    members: list[MemberIn]
    authorization: AuthorizationIn | None = None
    department: str | None = Field(None, description="ignored: the department is the token's")


class SourceStatus(BaseModel):
    source: str
    status: str
    reason: str | None


class RequestOut(BaseModel):
    id: str
    status: str
    purpose: str
    case_ref: str
    sources: list[str]
    household_id: str | None
    created_at: dt.datetime
    source_status: list[SourceStatus]
    dag_run_id: str | None = Field(None, description="the verify_household run the request started, when the hub "
                                   "runs with Airflow (HUB_AIRFLOW_URL); staff can start it later with `hub verify`")


class RecordOut(BaseModel):
    household_id: str
    version: int
    as_of: dt.datetime
    recorded_at: dt.datetime
    completeness: dict[str, str]
    content_sha256: str = Field(description="SHA-256 of the whole published record (what the ledger vouches for)")
    policy_rule: str = Field(description="the access-policy rule that decided what `content` holds")
    fields: list[str] = Field(description="the parts of the record returned, as the ledger records them")
    signature: str = Field(description="Ed25519 over the canonical JSON of `content`, signed by the hub when read: "
                           "the part returned is the hub's, unaltered (key: GET /v1/keys/record-signing)")
    content: dict


class AssistanceIn(BaseModel):
    household_id: str = Field(max_length=40, pattern=NO_NUL, description="the household's id in the hub (its records' "
                              "household_id)")
    programme: Purpose = Field(description="what was granted")
    granted_from: Annotated[dt.date, BeforeValidator(_date_text)]
    granted_until: Annotated[dt.date | None, BeforeValidator(_date_text)] = Field(None, description="empty while "
                                                                                 "it runs")
    request_id: str | None = Field(None, max_length=32, pattern=NO_NUL, description="the verification the grant rests "
                                   "on")


class AssistanceOut(BaseModel):
    id: str
    department: str
    programme: str
    granted_from: dt.date
    granted_until: dt.date | None
    reported_at: dt.datetime


class AssistanceListOut(BaseModel):
    household_id: str
    grants: list[AssistanceOut] = Field(description="every department's grants: aid neither missed nor paid twice")


class RequestSummary(BaseModel):
    id: str
    status: str
    purpose: str
    case_ref: str
    kind: str
    household_id: str | None
    created_at: dt.datetime


class RequestsOut(BaseModel):
    items: list[RequestSummary]
    next_before: str | None = Field(description="pass as `before` for the next page; empty on the last")


class ClientIn(BaseModel):
    name: str = Field(min_length=1, max_length=128, pattern=NO_NUL)
    role: Literal["department", "auditor", "staff", "admin", "federation"]
    department: str | None = Field(None, max_length=64, description="the department code (department clients), or "
                                   "the platform's code (federation clients: FED-... or HUB-...)")
    public_key: str | None = Field(None, max_length=64, description="federation clients: the platform's Ed25519 "
                                   "public key, raw, base64url")


class ClientOut(BaseModel):
    id: str
    name: str
    role: str
    department: str | None
    active: bool
    created_at: dt.datetime


class NewClientOut(ClientOut):
    token: str = Field(description="shown once; the hub keeps only its SHA-256")


class ClientsOut(BaseModel):
    items: list[ClientOut]
    next_before: str | None


class PolicyRuleOut(BaseModel):
    name: str
    description: str
    departments: list[str]
    purposes: list[str]
    returns: list[str] = Field(description="record fields, or answers.<programme> for answers-only rules")


class LedgerEntryOut(BaseModel):
    seq: int
    kind: str
    recorded_at: dt.datetime
    payload: dict = Field(description="pseudonyms and hashes only")


class LedgerEntriesOut(BaseModel):
    items: list[LedgerEntryOut]
    next_before: int | None


class CheckpointOut(BaseModel):
    intact: bool = Field(description="the whole ledger checked against every signed checkpoint")
    problems: list[str]
    events: int
    latest_seq: int
    entries_after_checkpoint: int = Field(description="entries not yet covered by a signed checkpoint")
    checkpoint: dict | None = Field(description="number, size, root_sha256, created_at and the signed note")


class PersonIn(BaseModel):
    id_number: str = Field(min_length=15, max_length=18, description="resident ID number: answered with its "
                           "pseudonym only")


class PersonRefOut(BaseModel):
    person_ref: str


class UnusualReadOut(BaseModel):
    seq: int
    at: dt.datetime
    kind: Literal["bulk", "no_open_case", "off_hours", "lookup_refused", "lookup_rate_limited"]
    client_id: str | None
    department: str | None
    household_id: str | None
    detail: str


class UnusualReadsOut(BaseModel):
    items: list[UnusualReadOut]


class SourceHealthOut(BaseModel):
    source: str
    up: bool | None = Field(description="the latest probe; empty when never probed")
    latency_ms: float | None
    checked_at: dt.datetime | None
    last_complete_fetch: dt.datetime | None = Field(description="freshness: the latest complete batch")
    validation_runs: int = Field(description="validation runs in the window")
    validation_pass_rate: float | None = Field(description="share of those runs that passed")
    rows_quarantined: int


class SourcesOut(BaseModel):
    since: dt.datetime
    items: list[SourceHealthOut]


FORM_BASE64_MAX = 4 * math.ceil(5 * 1024 * 1024 / 3)  # hub.services.lookup.FORM_MAX_BYTES, as base64


class SignedFormIn(BaseModel):
    media_type: Literal["application/pdf", "image/jpeg", "image/png"] = Field(
        description="what the document is: its bytes must begin as this type's files do")
    content_base64: str = Field(max_length=FORM_BASE64_MAX, description="the document, base64 (RFC 4648, standard "
                                "alphabet, padded): from 1 KiB to 5 MiB once decoded (and within the body limit)")


def _required(*names: str):
    def extra(schema: dict) -> None:
        schema["required"] = [*schema.get("required", []), *(n for n in names if n not in schema.get("required", []))]
    return extra


class LookupIn(BaseModel):
    # case_ref and signed_form are required; the hub checks them itself, so that a lookup refused for want of them
    # (e.g. a bare hash) is a ledger entry an auditor sees, not only a validation error
    model_config = ConfigDict(json_schema_extra=_required("case_ref", "signed_form"))
    id_number: str = Field(min_length=15, max_length=18, description="one member's resident ID number")
    purpose: Purpose
    case_ref: str | None = Field(None, max_length=64, description="required: the department's case number (1 to 64 "
                                 "characters, as a request's case_ref)")
    signed_form: SignedFormIn | None = Field(None, description="required: that member's signed authorization form "
                                             "itself; a hash alone is not accepted")
    evidence_sha256: str | None = Field(None, max_length=64, description="optional: when sent, it must be the SHA-256 "
                                        "(hex) of signed_form")


class LookupProblem(BaseModel):
    code: str = Field(description="invalid_lookup (422), not_registered (404), lookup_rate_limited (429), "
                      "source_unavailable (503)")
    message: str = Field(description="what is wrong, never a value sent")
    field: str | None = Field(description="the field at fault, e.g. signed_form, case_ref, id_number")


class LookupErrorOut(ErrorOut):
    error: LookupProblem | None = Field(None, description="the lookup's own refusals (not the checks of the body's "
                                        "shape): code, message, field")


class LookupMember(BaseModel):
    id_number: str
    name: str
    sex: str
    birth_date: dt.date
    relation: str
    status: str = Field(description="normal, deceased or moved_out")


class LookupOut(BaseModel):
    members: list[LookupMember] = Field(description="the household as household registration knows it, normal "
                                        "status first: the caseworker checks them and submits POST /v1/requests")


class SubscriptionIn(BaseModel):
    url: str = Field(max_length=2048, pattern=NO_NUL, description="the department's webhook (https; http only on this "
                     "machine)")


class SubscriptionOut(BaseModel):
    id: str
    url: str
    secret: str = Field(description="shown once: check each delivery's X-Hub-Signature, sha256=HMAC(secret, "
                                    "X-Hub-Timestamp + '.' + body)")


class QuarantinedOut(BaseModel):
    id: int
    source: str
    request_id: str
    batch_id: str
    row_no: int
    person_ref: str | None = Field(description="keyed pseudonym of the person the row names, if any")
    expectation: str = Field(description="the check the row failed")
    reason: str = Field(description="why, in Chinese / English")
    validation_run_id: int | None
    data_docs: str | None = Field(description="the console page of the validation run's Data Docs")
    created_at: dt.datetime


class QuarantineOut(BaseModel):
    items: list[QuarantinedOut]
    by_check: dict[str, int] = Field(description="quarantined rows per check, over the whole quarantine")
    next_before: int | None = Field(description="pass as `before` for the next page; empty on the last")


class ValidationRunOut(BaseModel):
    id: int
    suite: str
    source: str | None = Field(description="empty for the checks across the sources of a request")
    request_id: str | None
    batch_id: str | None
    run_id: str | None
    success: bool
    rows: int
    rows_failed: int
    results: list[dict] = Field(description="per check: name, expectation, column, success, rows failing")
    data_docs: str | None
    created_at: dt.datetime


class ValidationRunsOut(BaseModel):
    items: list[ValidationRunOut]
    next_before: int | None


from hub.web.deps import (Admin, Anyone, Auditor, Before, Department, HouseholdId, Limit, RequestId, Staff,  # noqa: E402
                          current_client, limiter, role_required)


def _iso(value):
    """ISO 8601 only: pydantic would also read a number as seconds since 1970."""
    if isinstance(value, str) and not re.match(r"^\d{4}-\d{2}-\d{2}[Tt ]", value):
        raise ValueError("an ISO 8601 date and time with a time zone offset")
    return value


IsoMoment = Annotated[dt.datetime | None, BeforeValidator(_iso)]
Moment = Annotated[IsoMoment, Query(description="ISO 8601 with a time zone offset")]
RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}
ERRORS = {401: {"model": ErrorOut, "description": "no valid bearer token"},
          403: {"model": ErrorOut, "description": "not for this client's role"},
          422: {"model": ErrorOut, "description": "the input is not acceptable: the fields at fault, never their "
                "values"},
          429: {"model": ErrorOut, "description": "rate limit: wait as Retry-After says", "headers": RETRY_AFTER}}
BAD_BODY = {400: {"model": ErrorOut, "description": "the body could not be read: not UTF-8 JSON, or nested deeper "
                   "than 32 levels of arrays and objects"},
            413: {"model": ErrorOut, "description": "the body is larger than the hub reads (HUB_API_MAX_BODY_BYTES, "
                  "default 1 MiB)"}}
NOT_FOUND = {404: {"model": ErrorOut, "description": "no such object for this client (the same whether it exists or "
                   "not)"}}
NOT_ENTITLED = "no record this department may read for that purpose"


def in_range(moment: dt.datetime) -> bool:
    """Whether the moment has a UTC equivalent (the store keeps UTC): 0001-01-01T00:00+08:00 has none."""
    try:
        moment.astimezone(dt.timezone.utc)
    except OverflowError:
        return False
    return True


def aware(**moments: dt.datetime | None) -> None:
    for name, moment in moments.items():
        if moment is not None and moment.tzinfo is None:
            raise HTTPException(422, f"{name} needs a time zone offset")
        if moment is not None and not in_range(moment):
            raise HTTPException(422, f"{name} is out of range")


# -- services ---------------------------------------------------------------------------------
def request_view(request_id: str, client: clients.Client) -> RequestOut:
    with session() as s:
        req = s.get(RequestRow, request_id)
        if req is None or req.department != client.department:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such request")
        batches = s.scalars(select(FetchBatch).where(FetchBatch.request_id == request_id)
                            .order_by(FetchBatch.fetched_at)).all()
        latest = {b.source: b for b in batches}
        return RequestOut(id=req.id, status=req.status, purpose=req.purpose, case_ref=req.case_ref,
                          sources=req.sources, household_id=req.household_ref, created_at=req.created_at,
                          source_status=[SourceStatus(source=k, status=b.status, reason=b.reason)
                                         for k, b in latest.items()])


def department_requests(department: str, *, before: str | None = None, limit: int = 50,
                        status_: str | None = None) -> list[RequestRow]:
    """The department's requests, newest first (keyset on created_at, id)."""
    q = select(RequestRow).where(RequestRow.department == department)
    if status_:
        q = q.where(RequestRow.status == status_)
    with session() as s:
        if before:
            pivot = s.get(RequestRow, before)
            if pivot is None or pivot.department != department:
                raise HTTPException(422, "before: not a request of this department")
            q = q.where((RequestRow.created_at < pivot.created_at)
                        | ((RequestRow.created_at == pivot.created_at) & (RequestRow.id < pivot.id)))
        rows = s.scalars(q.order_by(RequestRow.created_at.desc(), RequestRow.id.desc()).limit(limit)).all()
        s.expunge_all()
        return rows


def read_record(household_id: str, purpose: str, as_of: dt.datetime | None, client: clients.Client,
                valid_at: dt.datetime | None = None) -> RecordOut:
    """The record cut to what the policy grants the department for the purpose, if it has an open case for the
    household; every read (and every refused one) is a ledger entry."""
    from hub.rules import policy
    from core.crypto import canonical_json, keyring

    rule = policy.rule_for(client.department or "", purpose)
    with session() as s:  # one transaction: the check, the read and its ledger entry
        basis = policy.open_case(s, client.department or "", household_id, purpose, utcnow()) if rule else None
        if basis is None:  # the same answer whether the household exists or not
            ledger.append(s, "record.read_denied", {"client_id": client.id, "department": client.department,
                                                    "purpose": purpose, "household_ref": household_id[:40],
                                                    "why": "no_policy" if rule is None else "no_open_case"})
        else:
            try:
                record, content = load_record(household_id, as_of=as_of, valid_at=valid_at, s=s)
            except RecordNotFound:
                record = None
            else:
                ledger.append(s, "record.read", {"client_id": client.id, "department": client.department,
                                                 "purpose": purpose, "household_ref": household_id,
                                                 "version": record.version, "basis": basis, "policy_rule": rule.name,
                                                 "fields": rule.returns})
    if basis is None or record is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_ENTITLED)
    keys = keyring()
    view = policy.scope_persons(policy.cut(content, rule),
                                lambda ref: keys.scoped(ref, f"department:{client.department}"))
    return RecordOut(household_id=record.household_ref, version=record.version, as_of=record.as_of,
                     recorded_at=record.recorded_at, completeness=record.completeness,
                     content_sha256=record.content_sha256, policy_rule=rule.name, fields=rule.returns,
                     signature=keys.sign(canonical_json(view)), content=view)


def audit_read(client: clients.Client, what: str, entries: int, **refs: str) -> None:
    """Auditors' reads of the ledger are ledger entries too."""
    with session() as s:
        ledger.append(s, "audit.read", {"client_id": client.id, "what": what, "entries": entries, **refs})


def trigger_verification(request_id: str) -> str | None:
    """Start verify_household for the request through Airflow's REST API, when the hub runs with Airflow
    (HUB_AIRFLOW_URL set). A failure to reach Airflow leaves the request received (logged; `hub verify` starts it)."""
    import logging
    import os

    from hub.airflow.client import AirflowClient, AirflowError

    if not os.environ.get("HUB_AIRFLOW_URL"):
        return None
    try:
        run_id = AirflowClient.from_env().trigger("verify_household", {"request_id": request_id})
    except (AirflowError, OSError, ValueError) as exc:  # requests' errors are OSErrors
        logging.getLogger(__name__).warning("could not start verify_household for request %s: %s", request_id,
                                            exc.__class__.__name__)
        return None
    with session() as s:
        ledger.append(s, "verification.triggered", {"request_id": request_id, "dag_id": "verify_household",
                                                     "dag_run_id": run_id})
    return run_id


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


# -- the app ----------------------------------------------------------------------------------
def create_app() -> FastAPI:
    # public: /health, and the API's description (/openapi.json, /docs: no personal data; README, "API")
    app = FastAPI(title="Verification hub API (社会救助家庭经济状况核对平台)", version="1", responses=ERRORS,
                  redoc_url=None, swagger_ui_oauth2_redirect_url=None)
    app.router.route_class = DocumentRoute
    from hub.services.secrets_check import enforce

    enforce()  # outside development: no default, missing or exposed secrets
    limiter()  # a bad HUB_API_RATE stops the start, not every request
    app.add_middleware(BodyLimit, max_bytes=settings().api_max_body_bytes,
                       larger={"/v1/household-lookup": lookup_body_bytes})  # so does a bad HUB_API_MAX_BODY_BYTES
    settings().lookup_per_hour  # and a bad HUB_LOOKUP_PER_HOUR

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # Pydantic echoes the input in its errors; the input holds ID numbers and names: drop it.
        problems = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        return JSONResponse({"detail": problems}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 405:  # Starlette names the methods of one route only: name every route's on the path
            allowed = {m for r in app.routes if isinstance(r, APIRoute) and r.path_regex.match(request.url.path)
                       for m in r.methods}
            exc.headers = {**(exc.headers or {}), "Allow": ", ".join(sorted(allowed))}
        return await http_exception_handler(request, exc)

    @app.get("/health", tags=["meta"])
    def health() -> dict:
        return {"status": "ok"}

    @app.post("/v1/requests", status_code=201, response_model=RequestOut, tags=["requests"], responses=BAD_BODY)
    def post_request(body: RequestIn, client: Department) -> RequestOut:
        auth = body.authorization
        if auth is not None and not (in_range(auth.valid_from) and in_range(auth.valid_until)):
            raise HTTPException(422, {"problems": ["authorization: valid_from and valid_until are out of range"]})
        doc = body.model_dump(mode="json", exclude_none=True)
        try:
            request_id = create_request(doc, department=client.department, client_id=client.id)
        except InvalidRequest as exc:
            raise HTTPException(422, {"problems": exc.problems}) from None
        return request_view(request_id, client).model_copy(update={"dag_run_id": trigger_verification(request_id)})

    @app.get("/v1/requests", response_model=RequestsOut, tags=["requests"])
    def list_requests(client: Department, limit: Limit = 50,
                      before: Annotated[str | None, Query(pattern=HEX32, description="continue below this request "
                                                          "(from `next_before`)")] = None,
                      status_: Annotated[Literal["received", "running", "published", "refused", "failed"] | None,
                                         Query(alias="status")] = None) -> RequestsOut:
        """The department's own requests, newest first."""
        rows = department_requests(client.department, before=before, limit=limit, status_=status_)
        items = [RequestSummary(id=r.id, status=r.status, purpose=r.purpose, case_ref=r.case_ref, kind=r.kind,
                                household_id=r.household_ref, created_at=r.created_at) for r in rows]
        return RequestsOut(items=items, next_before=items[-1].id if len(items) == limit else None)

    def lookup_error(status_code: int, code: str, message: str, field: str | None = None,
                     headers: dict | None = None) -> JSONResponse:
        """The lookup's refusals: the API's `detail`, and `error` with a code and the field at fault."""
        return JSONResponse({"detail": message, "error": {"code": code, "message": message, "field": field}},
                            status_code=status_code, headers=headers)

    @app.post("/v1/household-lookup", response_model=LookupOut, tags=["requests"], responses={
        **BAD_BODY,
        404: {"model": LookupErrorOut, "description": "not_registered: household registration does not know the "
              "person"},
        422: {"model": LookupErrorOut, "description": "the body's shape (detail lists the fields), or invalid_lookup: "
              "the field at fault (no signed form, a document that is not what its media type says or of the wrong "
              "size, a hash that is not the form's, an ID number's check character, the case number)"},
        429: {"model": LookupErrorOut, "description": "lookup_rate_limited: the department made HUB_LOOKUP_PER_HOUR "
              "lookups within the last hour (or the client's request rate): wait as Retry-After says",
              "headers": RETRY_AFTER},
        503: {"model": LookupErrorOut, "description": "source_unavailable: household registration is unavailable: "
              "retry after Retry-After", "headers": RETRY_AFTER}})
    def post_household_lookup(body: LookupIn, client: Department) -> LookupOut:
        """一证通办: the members of a household from household registration, given one member's ID number, the
        department's case number and that member's signed authorization form itself (PDF, JPEG or PNG, base64),
        which the hub checks and keeps encrypted. The ID number travels in the body only; every lookup, refused or
        not, is a ledger entry with pseudonyms and the form's SHA-256."""
        from hub.services import lookup

        form = None if body.signed_form is None else lookup.form_from_base64(body.signed_form.media_type,
                                                                             body.signed_form.content_base64)
        try:
            found = lookup.household_members(body.id_number, department=client.department, client_id=client.id,
                                             purpose=body.purpose, case_ref=body.case_ref, signed_form=form,
                                             evidence_sha256=body.evidence_sha256)
        except lookup.BadLookup as exc:
            return lookup_error(422, "invalid_lookup", str(exc), exc.field)
        except lookup.RateLimited as exc:
            return lookup_error(status.HTTP_429_TOO_MANY_REQUESTS, "lookup_rate_limited", str(exc),
                                headers={"Retry-After": str(exc.retry_after)})
        except lookup.NotRegistered:
            return lookup_error(status.HTTP_404_NOT_FOUND, "not_registered",
                                "household registration does not know this person", "id_number")
        except lookup.LookupUnavailable as exc:
            return lookup_error(status.HTTP_503_SERVICE_UNAVAILABLE, "source_unavailable", f"household registration "
                                f"is unavailable ({exc.failure}); try again later", headers={"Retry-After": "30"})
        return LookupOut(members=[LookupMember(id_number=m.id_number, name=m.name, sex=m.sex, birth_date=m.birth_date,
                                               relation=m.relation, status=m.status) for m in found])

    @app.get("/v1/requests/{request_id}", response_model=RequestOut, tags=["requests"], responses=NOT_FOUND)
    def get_request(request_id: RequestId, client: Department) -> RequestOut:
        return request_view(request_id, client)

    @app.get("/v1/households/{household_id}/record", response_model=RecordOut, tags=["records"], responses=NOT_FOUND)
    def get_record(
        household_id: HouseholdId,
        client: Department,
        purpose: Annotated[Purpose, Query(description="why the department reads the record")],
        as_of: Annotated[IsoMoment, Query(description="the record as the hub had published it then "
                                                   "(transaction time)")] = None,
        valid_at: Annotated[IsoMoment, Query(description="the latest record describing the household no "
                                                      "later than this moment (valid time)")] = None,
    ) -> RecordOut:
        """The household's record, cut to what the access policy grants this department for this purpose. Only for
        a household the department has an open case for (its request with a valid authorization, or assistance it
        grants); otherwise 404, the same as for a household that does not exist."""
        aware(as_of=as_of, valid_at=valid_at)
        return read_record(household_id, purpose, as_of, client, valid_at)

    @app.get("/v1/policy", response_model=list[PolicyRuleOut], tags=["records"])
    def get_policy(client: Anyone) -> list[PolicyRuleOut]:
        """The access policy: what each department may read per purpose. A department sees the rules that apply
        to it; auditors, staff and admins see them all."""
        from hub.rules.policy import policy

        rules = [r for r in policy() if client.role != "department"
                 or any(r.matches(client.department or "", p) for p in r.purposes)]
        return [PolicyRuleOut(name=r.name, description=r.description, departments=list(r.departments),
                              purposes=list(r.purposes), returns=r.returns) for r in rules]

    @app.get("/v1/keys/record-signing", tags=["records"])
    def record_signing_key(client: Anyone) -> dict:
        """The hub's Ed25519 public key, to check a record's signature offline (over the canonical JSON of
        `content`: keys sorted, no spaces, UTF-8)."""
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        from core.crypto import keyring

        key = keyring().public_key
        return {"algorithm": "Ed25519", "raw_base64url": keyring().public_key_b64(),
                "pem": key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode("ascii")}

    @app.post("/v1/assistance", status_code=201, response_model=AssistanceOut, tags=["assistance"],
              responses={**BAD_BODY, **NOT_FOUND})
    def post_assistance(body: AssistanceIn, client: Department) -> AssistanceOut:
        """Report assistance granted to a household the department has a request for."""
        from hub.services import assistance

        try:
            grant_id = assistance.report(household_ref=body.household_id, department=client.department,
                                         client_id=client.id, programme=body.programme, granted_from=body.granted_from,
                                         granted_until=body.granted_until, request_id=body.request_id)
        except assistance.NotYourHousehold:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no household this department has a request for") from None
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        with session() as s:
            from core.store import AssistanceGrant

            g = s.get(AssistanceGrant, grant_id)
            return AssistanceOut(id=g.id, department=g.department, programme=g.programme,
                                 granted_from=g.granted_from, granted_until=g.granted_until, reported_at=g.reported_at)

    @app.get("/v1/households/{household_id}/assistance", response_model=AssistanceListOut, tags=["assistance"],
             responses=NOT_FOUND)
    def get_assistance(household_id: HouseholdId, client: Department,
                       purpose: Annotated[Purpose, Query(description="why the department reads the list")]
                       ) -> AssistanceListOut:
        from hub.services import assistance

        try:
            grants = assistance.household_list(household_id, department=client.department, client_id=client.id,
                                               purpose=purpose)
        except assistance.NotYourHousehold:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no household this department has a request for") from None
        return AssistanceListOut(household_id=household_id, grants=[
            AssistanceOut(id=g.id, department=g.department, programme=g.programme, granted_from=g.granted_from,
                          granted_until=g.granted_until, reported_at=g.reported_at) for g in grants])

    @app.post("/v1/subscriptions", status_code=201, response_model=SubscriptionOut, tags=["notifications"],
              responses=BAD_BODY)
    def post_subscription(body: SubscriptionIn, client: Department) -> SubscriptionOut:
        """Change notifications (record.changed) for the households the department has requests for."""
        from hub.stages.notify import BadSubscription, subscribe

        try:
            sub_id, secret = subscribe(client.department, client.id, body.url)
        except BadSubscription as exc:
            raise HTTPException(422, str(exc)) from None
        except ValueError:  # urlsplit: e.g. an unclosed [IPv6 address
            raise HTTPException(422, "url: not a valid address") from None
        return SubscriptionOut(id=sub_id, url=body.url, secret=secret)

    @app.get("/v1/quarantine", response_model=QuarantineOut, tags=["validation"])
    def get_quarantine(
        client: Staff, limit: Limit = 50, before: Before = None,
        source: Annotated[str | None, Query(max_length=32, pattern=NO_NUL)] = None,
        expectation: Annotated[str | None, Query(max_length=96, pattern=NO_NUL)] = None,
        request_id: Annotated[str | None, Query(max_length=32, pattern=NO_NUL)] = None,
        batch_id: Annotated[str | None, Query(max_length=32, pattern=NO_NUL)] = None,
    ) -> QuarantineOut:
        rows, counts = console.quarantined(source=source, expectation=expectation, request_id=request_id,
                                           batch_id=batch_id, before=before, limit=limit)
        items = [QuarantinedOut(id=q.id, source=q.source, request_id=rid, batch_id=q.batch_id, row_no=q.row_no,
                                person_ref=q.person_ref, expectation=q.expectation, reason=q.reason,
                                validation_run_id=q.validation_run_id,
                                data_docs=f"/console/data-docs/{q.validation_run_id}" if q.validation_run_id else None,
                                created_at=q.created_at) for q, rid in rows]
        return QuarantineOut(items=items, by_check=counts, next_before=items[-1].id if len(items) == limit else None)

    @app.get("/v1/validation-runs", response_model=ValidationRunsOut, tags=["validation"])
    def get_validation_runs(
        client: Staff, limit: Limit = 50, before: Before = None,
        source: Annotated[str | None, Query(max_length=32, pattern=NO_NUL)] = None, failed: bool = False,
        run_id: Annotated[str | None, Query(max_length=250, pattern=NO_NUL)] = None,
        request_id: Annotated[str | None, Query(max_length=32, pattern=NO_NUL)] = None,
    ) -> ValidationRunsOut:
        runs = console.validation_runs(source=source, failed_only=failed, run_id=run_id, request_id=request_id,
                                       before=before, limit=limit)
        items = [ValidationRunOut(id=r.id, suite=r.suite, source=r.source, request_id=r.request_id,
                                  batch_id=r.batch_id, run_id=r.run_id, success=r.success, rows=r.rows,
                                  rows_failed=r.rows_failed, results=r.results,
                                  data_docs=f"/console/data-docs/{r.id}" if r.docs else None,
                                  created_at=r.created_at) for r in runs]
        return ValidationRunsOut(items=items, next_before=items[-1].id if len(items) == limit else None)

    # -- admin: clients --------------------------------------------------------------------------
    @app.post("/v1/clients", status_code=201, response_model=NewClientOut, tags=["admin"], responses=BAD_BODY)
    def post_client(body: ClientIn, client: Admin) -> NewClientOut:
        """A new client and its token (shown once)."""
        try:
            new, token = clients.create_client(body.name, body.role, body.department, public_key=body.public_key,
                                               created_by=client.id)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        row = clients.describe(new.id)
        return NewClientOut(**row, token=token)

    @app.get("/v1/clients", response_model=ClientsOut, tags=["admin"])
    def get_clients(client: Admin, limit: Limit = 50,
                    before: Annotated[str | None, Query(pattern=HEX32)] = None) -> ClientsOut:
        items = [ClientOut(**c) for c in clients.listing(before=before, limit=limit)]
        return ClientsOut(items=items, next_before=items[-1].id if len(items) == limit else None)

    @app.post("/v1/clients/{client_id}/deactivate", response_model=ClientOut, tags=["admin"], responses=NOT_FOUND)
    def deactivate_client(client_id: Annotated[str, PathParam(pattern=HEX32)], client: Admin) -> ClientOut:
        """Revoke a client's token (and its console sessions) at once."""
        if client_id == client.id:
            raise HTTPException(422, "an admin cannot deactivate itself")
        if not clients.deactivate(client_id, by=client.id):
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such client")
        return ClientOut(**clients.describe(client_id))

    # -- auditors ----------------------------------------------------------------------------------
    @app.get("/v1/audit/events", response_model=LedgerEntriesOut, tags=["audit"])
    def get_audit_events(
        client: Auditor, limit: Limit = 50, before: Before = None,
        kind: Annotated[str | None, Query(max_length=48, pattern=NO_NUL)] = None, since: Moment = None,
        until: Moment = None,
        client_id: Annotated[str | None, Query(pattern=HEX32)] = None,
        household_id: Annotated[str | None, Query(pattern=HOUSEHOLD)] = None,
        request_id: Annotated[str | None, Query(pattern=HEX32)] = None,
    ) -> LedgerEntriesOut:
        """Ledger entries, newest first: every consent decision, fetch, publication and read."""
        from hub.services import audit

        aware(since=since, until=until)
        rows = audit.events(kind=kind, since=since, until=until, client_id=client_id, household_ref=household_id,
                            request_id=request_id, before=before, limit=limit)
        audit_read(client, "events", len(rows))
        items = [LedgerEntryOut(seq=e.seq, kind=e.kind, recorded_at=e.recorded_at, payload=e.payload) for e in rows]
        return LedgerEntriesOut(items=items, next_before=items[-1].seq if len(items) == limit else None)

    @app.get("/v1/audit/checkpoint", response_model=CheckpointOut, tags=["audit"])
    def get_audit_checkpoint(client: Auditor) -> CheckpointOut:
        """The ledger's integrity: every entry and signed checkpoint checked, against the latest checkpoint."""
        from hub.services import audit

        return CheckpointOut(**audit.integrity())

    @app.get("/v1/audit/proof/{seq}", tags=["audit"], responses={
        **NOT_FOUND, 409: {"model": ErrorOut, "description": "the entry is not covered by a signed checkpoint yet"}})
    def get_audit_proof(seq: Annotated[int, PathParam(ge=1, le=MAX_ID)], client: Auditor) -> dict:
        """The inclusion proof of ledger entry ``seq`` against the latest signed checkpoint (RFC 6962)."""
        from consent.tree import NotCheckpointed, inclusion

        try:
            with session() as s:
                return inclusion(s, seq)
        except NotCheckpointed as exc:
            raise HTTPException(409, str(exc)) from None
        except LookupError:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such ledger entry") from None

    @app.post("/v1/audit/person-ref", response_model=PersonRefOut, tags=["audit"], responses=BAD_BODY)
    def post_person_ref(body: PersonIn, client: Auditor) -> PersonRefOut:
        """A person's pseudonym, to look them up (the ID number goes in the body, never in an address)."""
        from core.crypto import keyring
        from schemas.codes import valid_id_mask

        id_number = body.id_number.strip().upper()  # as intake stores it
        if not valid_id_mask([id_number])[0]:
            raise HTTPException(422, "id_number: not a valid resident ID number (check character)")
        return PersonRefOut(person_ref=keyring().pseudonym(id_number))

    @app.get("/v1/audit/persons/{person_ref}/timeline", response_model=LedgerEntriesOut, tags=["audit"])
    def get_timeline(person_ref: Annotated[str, PathParam(pattern=PERSON)], client: Auditor, limit: Limit = 200,
                     before: Before = None) -> LedgerEntriesOut:
        """One person's authorizations, consent decisions, fetches, publications and reads, newest first."""
        from hub.services import audit

        rows = audit.timeline(person_ref, before=before, limit=limit)
        audit_read(client, "timeline", len(rows), person_ref=person_ref)
        items = [LedgerEntryOut(seq=e.seq, kind=e.kind, recorded_at=e.recorded_at, payload=e.payload) for e in rows]
        return LedgerEntriesOut(items=items, next_before=items[-1].seq if len(items) == limit else None)

    @app.get("/v1/audit/unusual-reads", response_model=UnusualReadsOut, tags=["audit"])
    def get_unusual_reads(client: Auditor, since: Moment = None, until: Moment = None) -> UnusualReadsOut:
        """Bulk reads, reads refused for want of an open case, reads outside office hours (default: 7 days)."""
        from hub.services import audit

        aware(since=since, until=until)
        found = audit.unusual_reads(since or utcnow() - dt.timedelta(days=7), until)
        return UnusualReadsOut(items=[UnusualReadOut(seq=u.seq, at=u.at, kind=u.kind, client_id=u.client_id,
                                                     department=u.department, household_id=u.household_ref,
                                                     detail=u.detail) for u in found])

    # -- staff -------------------------------------------------------------------------------------
    @app.get("/v1/sources", response_model=SourcesOut, tags=["validation"])
    def get_sources(client: Staff, days: Annotated[int, Query(ge=1, le=366)] = 7) -> SourcesOut:
        """Each source's health (latest probe), freshness (last complete fetch) and validation pass rate."""
        from hub.stages.health import overview

        since = utcnow() - dt.timedelta(days=days)
        return SourcesOut(since=since, items=[SourceHealthOut(**{k: v for k, v in o.items() if k != "failure"})
                                              for o in overview(since)])

    dci.install(app)  # /dci/registry/...: the DCI Social Registry API for federated platforms
    console.install(app)
    return app
