"""The department API (FastAPI): requests, household records. Every route but /health needs a bearer token."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from sqlalchemy import select

from consent import ledger
from hub import clients, console
from hub.intake import PURPOSES, InvalidRequest, create_request
from hub.records import RecordNotFound, load_record
from hub.store import FetchBatch
from hub.store import Request as RequestRow
from hub.store import session

Purpose = Literal[tuple(PURPOSES)]  # type: ignore[valid-type]


# -- models: what comes in, what goes out -----------------------------------------------------
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


class AuthorizationIn(BaseModel):
    valid_from: dt.datetime
    valid_until: dt.datetime
    recheck_interval_days: int = 90
    data_life_days: int = 30
    consents: list[ConsentIn]


class RequestIn(BaseModel):
    purpose: Purpose
    case_ref: str
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
    content_sha256: str
    signature: str = Field(description="Ed25519 over the canonical JSON of `content`")
    content: dict


class AssistanceIn(BaseModel):
    household_id: str = Field(max_length=40, description="the household's id in the hub (its records' household_id)")
    programme: Purpose = Field(description="what was granted")
    granted_from: dt.date
    granted_until: dt.date | None = Field(None, description="empty while it runs")
    request_id: str | None = Field(None, max_length=32, description="the verification the grant rests on")


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


class SubscriptionIn(BaseModel):
    url: str = Field(max_length=2048, description="the department's webhook (https; http only on this machine)")


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


# -- dependencies -----------------------------------------------------------------------------
bearer = HTTPBearer(auto_error=False)


def current_client(creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> clients.Client:
    client = clients.authenticate(creds.credentials) if creds else None
    if client is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or invalid bearer token",
                            headers={"WWW-Authenticate": "Bearer"})
    return client


def department_client(client: Annotated[clients.Client, Depends(current_client)]) -> clients.Client:
    if client.role != "department":
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only department clients may do this")
    return client


Department = Annotated[clients.Client, Depends(department_client)]


def staff_client(client: Annotated[clients.Client, Depends(current_client)]) -> clients.Client:
    if client.role != "staff":
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only staff clients may do this")
    return client


Staff = Annotated[clients.Client, Depends(staff_client)]
Limit = Annotated[int, Query(ge=1, le=500, description="items per page")]
Before = Annotated[int | None, Query(ge=1, description="continue below this id (from `next_before`)")]


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


def read_record(household_id: str, purpose: str, as_of: dt.datetime | None, client: clients.Client,
                valid_at: dt.datetime | None = None) -> RecordOut:
    with session() as s:
        entitled = s.scalars(select(RequestRow.id).where(
            RequestRow.household_ref == household_id, RequestRow.department == client.department,
            RequestRow.purpose == purpose)).first()
    if entitled is None:  # same answer whether the household exists or not
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no record this department may read for that purpose")
    try:
        record, content = load_record(household_id, as_of=as_of, valid_at=valid_at)
    except RecordNotFound:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no record this department may read for that purpose") from None
    with session() as s:
        ledger.append(s, "record.read", {"client_id": client.id, "department": client.department, "purpose": purpose,
                                         "household_ref": household_id, "version": record.version,
                                         "fields": sorted(content)})
    return RecordOut(household_id=record.household_ref, version=record.version, as_of=record.as_of,
                     recorded_at=record.recorded_at, completeness=record.completeness,
                     content_sha256=record.content_sha256, signature=record.signature, content=content)


def trigger_verification(request_id: str) -> str | None:
    """Start verify_household for the request through Airflow's REST API, when the hub runs with Airflow
    (HUB_AIRFLOW_URL set). A failure to reach Airflow leaves the request received (logged; `hub verify` starts it)."""
    import logging
    import os

    from hub.airflow_client import AirflowClient, AirflowError

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


# -- the app ----------------------------------------------------------------------------------
def create_app() -> FastAPI:
    app = FastAPI(title="Verification hub API (社会救助家庭经济状况核对平台)", version="1")

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # Pydantic echoes the input in its errors; the input holds ID numbers and names: drop it.
        problems = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        return JSONResponse({"detail": problems}, status_code=422)

    @app.get("/health", tags=["meta"])
    def health() -> dict:
        return {"status": "ok"}

    @app.post("/v1/requests", status_code=201, response_model=RequestOut, tags=["requests"])
    def post_request(body: RequestIn, client: Department) -> RequestOut:
        doc = body.model_dump(mode="json", exclude_none=True)
        try:
            request_id = create_request(doc, department=client.department, client_id=client.id)
        except InvalidRequest as exc:
            raise HTTPException(422, {"problems": exc.problems}) from None
        return request_view(request_id, client).model_copy(update={"dag_run_id": trigger_verification(request_id)})

    @app.get("/v1/requests/{request_id}", response_model=RequestOut, tags=["requests"])
    def get_request(request_id: str, client: Department) -> RequestOut:
        return request_view(request_id, client)

    @app.get("/v1/households/{household_id}/record", response_model=RecordOut, tags=["records"])
    def get_record(
        household_id: str,
        client: Department,
        purpose: Annotated[Purpose, Query(description="why the department reads the record")],
        as_of: Annotated[dt.datetime | None, Query(description="the record as the hub had published it then "
                                                   "(transaction time)")] = None,
        valid_at: Annotated[dt.datetime | None, Query(description="the latest record describing the household no "
                                                      "later than this moment (valid time)")] = None,
    ) -> RecordOut:
        for name, moment in (("as_of", as_of), ("valid_at", valid_at)):
            if moment is not None and moment.tzinfo is None:
                raise HTTPException(422, f"{name} needs a time zone offset")
        return read_record(household_id, purpose, as_of, client, valid_at)

    @app.get("/v1/keys/record-signing", tags=["records"])
    def record_signing_key(client: Annotated[clients.Client, Depends(current_client)]) -> dict:
        """The hub's Ed25519 public key, to check a record's signature offline (over the canonical JSON of
        `content`: keys sorted, no spaces, UTF-8)."""
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        from hub.crypto import keyring

        key = keyring().public_key
        return {"algorithm": "Ed25519", "raw_base64url": keyring().public_key_b64(),
                "pem": key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode("ascii")}

    @app.post("/v1/assistance", status_code=201, response_model=AssistanceOut, tags=["assistance"])
    def post_assistance(body: AssistanceIn, client: Department) -> AssistanceOut:
        """Report assistance granted to a household the department has a request for."""
        from hub import assistance

        try:
            grant_id = assistance.report(household_ref=body.household_id, department=client.department,
                                         client_id=client.id, programme=body.programme, granted_from=body.granted_from,
                                         granted_until=body.granted_until, request_id=body.request_id)
        except assistance.NotYourHousehold:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no household this department has a request for") from None
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        with session() as s:
            from hub.store import AssistanceGrant

            g = s.get(AssistanceGrant, grant_id)
            return AssistanceOut(id=g.id, department=g.department, programme=g.programme,
                                 granted_from=g.granted_from, granted_until=g.granted_until, reported_at=g.reported_at)

    @app.get("/v1/households/{household_id}/assistance", response_model=AssistanceListOut, tags=["assistance"])
    def get_assistance(household_id: str, client: Department,
                       purpose: Annotated[Purpose, Query(description="why the department reads the list")]
                       ) -> AssistanceListOut:
        from hub import assistance

        try:
            grants = assistance.household_list(household_id, department=client.department, client_id=client.id,
                                               purpose=purpose)
        except assistance.NotYourHousehold:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no household this department has a request for") from None
        return AssistanceListOut(household_id=household_id, grants=[
            AssistanceOut(id=g.id, department=g.department, programme=g.programme, granted_from=g.granted_from,
                          granted_until=g.granted_until, reported_at=g.reported_at) for g in grants])

    @app.post("/v1/subscriptions", status_code=201, response_model=SubscriptionOut, tags=["notifications"])
    def post_subscription(body: SubscriptionIn, client: Department) -> SubscriptionOut:
        """Change notifications (record.changed) for the households the department has requests for."""
        from hub.notify import BadSubscription, subscribe

        try:
            sub_id, secret = subscribe(client.department, client.id, body.url)
        except BadSubscription as exc:
            raise HTTPException(422, str(exc)) from None
        return SubscriptionOut(id=sub_id, url=body.url, secret=secret)

    @app.get("/v1/quarantine", response_model=QuarantineOut, tags=["validation"])
    def get_quarantine(
        client: Staff, limit: Limit = 50, before: Before = None,
        source: Annotated[str | None, Query(max_length=32)] = None,
        expectation: Annotated[str | None, Query(max_length=96)] = None,
        request_id: Annotated[str | None, Query(max_length=32)] = None,
        batch_id: Annotated[str | None, Query(max_length=32)] = None,
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
        source: Annotated[str | None, Query(max_length=32)] = None, failed: bool = False,
        run_id: Annotated[str | None, Query(max_length=250)] = None,
        request_id: Annotated[str | None, Query(max_length=32)] = None,
    ) -> ValidationRunsOut:
        runs = console.validation_runs(source=source, failed_only=failed, run_id=run_id, request_id=request_id,
                                       before=before, limit=limit)
        items = [ValidationRunOut(id=r.id, suite=r.suite, source=r.source, request_id=r.request_id,
                                  batch_id=r.batch_id, run_id=r.run_id, success=r.success, rows=r.rows,
                                  rows_failed=r.rows_failed, results=r.results,
                                  data_docs=f"/console/data-docs/{r.id}" if r.docs else None,
                                  created_at=r.created_at) for r in runs]
        return ValidationRunsOut(items=items, next_before=items[-1].id if len(items) == limit else None)

    console.install(app)
    return app
