"""The JSON API's models: what comes in (…In, validated as the hub reads it: ISO 8601 text for moments and days, no
number read as seconds since 1970) and what goes out (…Out), and the error answers every route declares in the
OpenAPI document. Services return plain data; the routers turn it into these."""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from core.ids import NO_NUL
from schemas.vocabulary import PURPOSES

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


def _iso(value):
    """ISO 8601 only: pydantic would also read a number as seconds since 1970."""
    if isinstance(value, str) and not re.match(r"^\d{4}-\d{2}-\d{2}[Tt ]", value):
        raise ValueError("an ISO 8601 date and time with a time zone offset")
    return value


IsoMoment = Annotated[dt.datetime | None, BeforeValidator(_iso)]


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


class WaitingRecheckOut(BaseModel):
    application_id: str
    household_ref: str | None = Field(description="the household's pseudonym")
    attempts: int = Field(description="incomplete re-checks in a row")
    since: dt.datetime = Field(description="the first of them")
    last: dt.datetime = Field(description="the latest of them")
    next_due: dt.datetime = Field(description="when the household is due again (back-off: next run, 1 h, 4 h, 16 h, "
                                  "then every 24 h)")
    reasons: list[str] = Field(description="why the latest was incomplete: source:REASON, or FAILED")


class WaitingRechecksOut(BaseModel):
    count: int
    since: dt.datetime | None = Field(description="the longest wait's start; null when nobody waits")
    items: list[WaitingRecheckOut]


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


# -- the error answers routes declare in the OpenAPI document -----------------------------------
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
