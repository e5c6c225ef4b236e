"""The JSON API's models: what comes in (…In, validated as the hub reads it: ISO 8601 text for moments and days, no
number read as seconds since 1970) and what goes out (…Out), and the error answers every route declares in the
OpenAPI document. Services return plain data; the routers turn it into these."""

from __future__ import annotations

import datetime as dt
import enum
import math
import re
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from core.ids import NO_NUL
from schemas.vocabulary import ANSWERS, PURPOSES

Purpose = Literal[tuple(PURPOSES)]  # type: ignore[valid-type]


# -- models: what comes in, what goes out -----------------------------------------------------
# the one error body every JSON route answers a refusal with (hub/web/errors.py; README, "Errors"):
# code -> (the status it comes with, what it means): the one list of codes, in the OpenAPI's ErrorCode enum
ERROR_CODES = {
    "invalid_body": (400, "the body could not be read: not UTF-8 JSON, or nested deeper than 32 levels"),
    "unauthenticated": (401, "no bearer token, or one that is not valid or no longer active"),
    "forbidden": (403, "the client's role may not do this"),
    "not_found": (404, "no such object for this client (the same whether it exists or not), or no such route"),
    "not_registered": (404, "household lookup: household registration does not know the person"),
    "method_not_allowed": (405, "the path does not take this method: Allow names those it takes"),
    "conflict": (409, "the object is not in the state the operation needs (yet)"),
    "body_too_large": (413, "the body is larger than the hub reads"),
    "invalid_field": (422, "a field is missing or not acceptable: `field` names it"),
    "invalid_request": (422, "the input is not acceptable as a whole (no one field at fault)"),
    "invalid_lookup": (422, "household lookup: the signed form, its hash, the ID number or the case number"),
    "rate_limited": (429, "too many requests from this client or address: wait as Retry-After says"),
    "lookup_rate_limited": (429, "household lookup: the department's lookups per hour are used up"),
    "internal_error": (500, "an unexpected error: the message carries a reference for the hub's log"),
    "store_unavailable": (503, "the hub's store is not available now (locked, full, down): retry after Retry-After"),
    "source_unavailable": (503, "household lookup: household registration is unavailable: retry after Retry-After"),
}
ErrorCode = enum.Enum("ErrorCode", {c: c for c in ERROR_CODES}, type=str)  # a schema of its own in the OpenAPI


class ErrorItem(BaseModel):
    code: ErrorCode = Field(description="stable: what went wrong (README, \"Errors\")")
    message: str = Field(description="what is wrong, in English; never a value sent (no ID number, no name)")
    field: str | None = Field(description="the field at fault as a JSON path into the body (members[0].id_number, "
                              "counting from 0), or the query or path parameter's name; null when no one field is")


class ErrorDetail(ErrorItem):
    details: list[ErrorItem] | None = Field(None, description="on 422: every problem found, the first of which is "
                                            "the one in code, message and field")


class ErrorOut(BaseModel):
    """The one error body of the JSON API (not of /dci/, which answers in DCI's form)."""

    model_config = ConfigDict(json_schema_extra={"example": {"error": {
        "code": "invalid_field", "message": "members[0].id_number: not a valid resident ID number (format, date or "
        "check character)", "field": "members[0].id_number", "details": [{
            "code": "invalid_field", "message": "members[0].id_number: not a valid resident ID number (format, date "
            "or check character)", "field": "members[0].id_number"}]}}})

    error: ErrorDetail


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


class MobileSigningIn(BaseModel):
    """The terms the members are asked to sign on their phones (码上办), instead of an uploaded authorization."""

    model_config = ConfigDict(extra="forbid")
    valid_days: int = Field(180, ge=1, le=3650, description="the authorization's validity from now, in days")
    recheck_interval_days: int = Field(90, ge=1, le=3650)
    data_life_days: int = Field(30, ge=1, le=3650, description="how long raw answers are kept")
    link_days: int = Field(14, ge=1, le=60, description="how long each member's signing link is valid")


class RequestIn(BaseModel):
    purpose: Purpose
    case_ref: str = Field(pattern=NO_NUL)
    sources: list[str]
    members: list[MemberIn]
    authorization: AuthorizationIn | None = None
    mobile_signing: MobileSigningIn | None = Field(None, description="ask each member to sign on their phone "
                                                   "(a QR code and a link per member: GET /v1/requests/{id}/"
                                                   "invitations) instead of giving `authorization`; the request "
                                                   "waits, status `signing`, until every member has answered")
    department: str | None = Field(None, description="ignored: the department is the token's")


class InvitationOut(BaseModel):
    member: int = Field(description="the member's position in the request's `members`, from 0")
    relation: str
    state: str = Field(description="pending, signed or declined")
    minor: bool = Field(description="under 18: an adult member who signed signs for them as guardian")
    expires_at: dt.datetime
    link: str = Field(description="the member's own signing link (show it as a QR code); it signs nothing by itself: "
                      "the member signs in with the government identity service first")


class InvitationsOut(BaseModel):
    request_id: str
    items: list[InvitationOut]


# -- applications residents start on /m/ (申请) ------------------------------------------------------------------
class ApplicationMember(BaseModel):
    id_number: str
    name: str
    relation: str


class ApplicationOut(BaseModel):
    id: str
    department: str
    programme: str
    status: str = Field(description="pending, accepted or declined")
    reason: str | None = Field(description="why it was declined")
    request_id: str | None = Field(description="the request its acceptance made (its members sign on their phones)")
    created_at: str
    members: list[ApplicationMember] = Field(description="as the applicant named them; the first is the applicant, "
                                             "whose identity the government identity service vouched for")


class ApplicationsOut(BaseModel):
    items: list[ApplicationOut]


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: Literal["accept", "decline"]
    reason: str | None = Field(None, max_length=500, pattern=NO_NUL, description="required to decline; the "
                               "applicant reads it")
    case_ref: str | None = Field(None, min_length=1, max_length=64, pattern=NO_NUL,
                                 description="the department's case number (default APP-<id>)")
    sources: list[str] | None = Field(None, description="the sources to verify (default: every agency source)")


class DecisionOut(BaseModel):
    id: str
    status: str
    request_id: str | None


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


# -- the record's content: what GET /v1/households/{household_id}/record returns in `content` ---------------------------
# Built by hub.rules.unify and hub.stages.records (schema hub.household_record/2), cut by the access policy
# (hub/rules/access_policy.toml), persons re-keyed for the department. These models describe it in the OpenAPI
# document; they never re-validate an answer (RecordBody returns the signed content as it is). Every one allows
# fields it does not name: a part the hub adds to the record is returned before it is described here.
class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


Answer = Literal[tuple(ANSWERS)]  # type: ignore[valid-type]
_FROM = "the source the fact comes from (its authoritative source: `authority`)"
_PERSON = "the member's pseudonym, as this department sees it (members[].person_ref)"
_MONTH = "a month, YYYY-MM"


class RecordReason(_Open):
    code: str = Field(description="stable code of the reason, e.g. INCOME_BELOW_STANDARD, OWNS_VEHICLE, "
                      "SOURCES_INCOMPLETE, MEMBER_NOT_REGISTERED")
    text: str = Field(description="the reason in words: Chinese / English")
    values: dict[str, Any] | None = Field(None, description="the figures the reason states (e.g. per_capita, "
                                          "standard), and `persons`: the members it names (pseudonyms)")


class RecordScreening(_Open):
    answer: Answer = Field(description="yes, no, or needs_review (a caseworker decides)")
    reasons: list[RecordReason] = Field(description="why: the income test first, then the asset test's failures or its "
                                  "pass, then what leaves the answer to a caseworker")
    rules: str = Field(description="the version of the city's rules applied")


class RecordScreenings(_Open):
    dibao: RecordScreening | None = Field(None, description="最低生活保障 / minimum living guarantee")
    low_income: RecordScreening | None = Field(None, description="低收入家庭 / low-income family")
    tekun: RecordScreening | None = Field(None, description="特困人员供养 / support for persons in extreme poverty")
    expenditure_poverty: RecordScreening | None = Field(None, description="支出型困难家庭 / expenditure poverty")


class RecordStandard(_Open):
    county: str = Field(description="the division code (county level) whose standard applies")
    area_type: str = Field(description="urban or rural")
    dibao_monthly: float = Field(description="the dibao standard, yuan per person per month")
    low_income_line: float = Field(description="the low-income line, yuan per person per month")


class RecordWindow(_Open):
    from_: str = Field(alias="from", description="the first month of the income window, YYYY-MM")
    to: str = Field(description="its last month, YYYY-MM")
    months: int


class RecordIncome(_Open):
    monthly_total: float = Field(description="the counted members' income per month over the window, yuan")
    monthly_per_capita: float = Field(description="monthly_total per counted member, yuan")
    monthly_by_category: dict[str, float] = Field(description="monthly_total by category: wages, labour, business, "
                                                  "property_lease, pension, unemployment")


class RecordAssets(_Open):
    deposits: float = Field(description="bank balances at the window's last month, yuan")
    securities: float = Field(description="market value, yuan")
    insurance_cash_value: float = Field(description="cash value of commercial insurance, yuan")
    internet_finance: float = Field(description="balances on internet finance platforms, yuan")
    financial_total: float = Field(description="the four above, yuan")
    financial_per_capita: float = Field(description="financial_total per counted member, yuan")
    residential_properties: int = Field(description="residential properties (distinct certificates)")
    residential_area_per_capita: float = Field(description="residential area per counted member, m², by share")
    cars: int = Field(description="cars and trucks in use, not adapted for a disability")
    vessels: int = Field(description="vessels in use (rural working vessels exempt)")
    market_entities: int = Field(description="active market entities a counted member represents or holds")


class RecordAssetTest(_Open):
    passes: bool | None = Field(description="null when it cannot be decided: a source it rests on is incomplete")
    failures: list[RecordReason] = Field(description="each limit exceeded")
    limit_per_capita: float = Field(description="the financial-asset limit per counted member, yuan")
    incomplete_sources: list[str] = Field(description="the sources it rests on that are not complete")


class RecordAssessment(_Open):
    rules: str | None = Field(None, description="the version of the city's rules applied")
    standard: RecordStandard | None = None
    window: RecordWindow | None = Field(None, description="the months income is averaged over")
    members_counted: int | None = Field(None, description="members counted in the household (status normal)")
    income: RecordIncome | None = None
    assets: RecordAssets | None = None
    asset_test: RecordAssetTest | None = None
    screening: RecordScreenings | None = Field(None, description="the answer per programme, with its reasons")


class RecordDivision(_Open):
    code: str | None = Field(description="the household's administrative division (GB/T 2260), from the head's "
                             "registered address")
    name: str = Field(description="its name; empty outside the city")
    area_type: str = Field(description="urban, rural or unknown")


class RecordMember(_Open):
    person_ref: str = Field(description=_PERSON)
    id_number_masked: str = Field(description="the ID number masked: first 4 and last 4 characters")
    name: str = Field(description="as household registration records it")
    sex: str = Field(description="male or female")
    birth_date: dt.date
    age: int | None = Field(description="on the record's as_of")
    relation: str = Field(description="to the head: head, spouse, son, daughter, parent, grandchild, other, ...")
    status: str = Field(description="normal, deceased or moved_out")
    address_code: str | None = Field(None, description="the registered address's division code")
    counted: bool = Field(description="counted in the household's income and assets (status normal)")
    from_: str = Field(alias="from", description="household: registration is authoritative for members")


class IncomeFact(_Open):
    person_ref: str = Field(description=_PERSON)
    category: str = Field(description="wages, labour, business, property_lease (tax); pension, unemployment "
                          "(social insurance benefits)")
    period: str = Field(description=_MONTH)
    amount: float = Field(description="yuan")
    tax: float | None = Field(None, description="tax withheld, yuan (tax only)")
    payer: str | None = Field(None, description="the withholder's unified social credit code (tax only)")
    from_: str = Field(alias="from", description=_FROM)


class ContributionFact(_Open):
    person_ref: str = Field(description=_PERSON)
    insurance_type: str
    period: str = Field(description=_MONTH)
    base: float | None = Field(description="the contribution base, yuan")
    amount: float
    from_: str = Field(alias="from", description=_FROM)


class ProvidentFundFact(_Open):
    person_ref: str = Field(description=_PERSON)
    period: str = Field(description=_MONTH)
    base: float
    balance: float
    employer: str | None = Field(None, description="the employer's unified social credit code")
    from_: str = Field(alias="from", description=_FROM)


class PropertyFact(_Open):
    person_ref: str = Field(description=_PERSON)
    cert_no: str = Field(description="the real-estate certificate number")
    use: str = Field(description="residential, commercial, ...")
    area: float = Field(description="m²")
    share: float = Field(description="the member's share, 0 to 1")
    location_code: str
    acquired: dt.date | None
    mortgaged: bool | None = None
    from_: str = Field(alias="from", description=_FROM)


class MarketEntityFact(_Open):
    person_ref: str = Field(description=_PERSON)
    uscc: str = Field(description="unified social credit code")
    name: str
    role: str = Field(description="legal_representative, shareholder, operator, ...")
    registered_capital: float | None = None
    share: float | None = None
    status: str = Field(description="active, revoked, cancelled, ...")
    established: dt.date | None = None
    from_: str = Field(alias="from", description=_FROM)


class VehicleVesselFact(_Open):
    person_ref: str = Field(description=_PERSON)
    kind: str = Field(description="vehicle or vessel")
    plate: str
    type: str = Field(description="car, truck, motorcycle, ...; for vessels their type")
    purchase_price: float | None = None
    registered: dt.date | None = None
    status: str
    disability_adapted: bool
    from_: str = Field(alias="from", description=_FROM)


class DepositFact(_Open):
    person_ref: str = Field(description=_PERSON)
    bank: str
    account: str = Field(description="masked")
    product: str
    period: str = Field(description=_MONTH)
    balance: float
    from_: str = Field(alias="from", description=_FROM)


class SecurityFact(_Open):
    person_ref: str = Field(description=_PERSON)
    firm: str
    security_code: str
    quantity: float
    market_value: float
    as_of: dt.date | None = None
    from_: str = Field(alias="from", description=_FROM)


class InsuranceFact(_Open):
    person_ref: str = Field(description=_PERSON)
    insurer: str
    policy_no: str
    type: str
    cash_value: float
    from_: str = Field(alias="from", description=_FROM)


class InternetFinanceFact(_Open):
    person_ref: str = Field(description=_PERSON)
    platform: str
    product: str
    balance: float
    as_of: dt.date | None = None
    from_: str = Field(alias="from", description=_FROM)


class RemoteRegistration(_Open):
    person_ref: str = Field(description=_PERSON)
    registry: str = Field(description="the other region's platform (HUB-... or FED-...)")
    household: str | None = Field(None, description="the household's reference there")
    status: str | None = None
    relation: str | None = None
    division: str | None = None
    record_version: int | None = None
    record_as_of: str | None = None
    record_sha256: str | None = None
    income_total: float | None = None
    income_months: int | None = None
    members_counted: int | None = None
    income_per_capita: float | None = None
    screening: dict[str, str] = Field(default_factory=dict, description="that household's answers there, per "
                                      "programme")
    from_: str = Field(alias="from", description=_FROM)


class RecordFacts(_Open):
    """Every fact of the members, each from its authoritative source; a kind the policy cuts is absent."""

    income: list[IncomeFact] | None = None
    contributions: list[ContributionFact] | None = None
    provident_fund: list[ProvidentFundFact] | None = None
    properties: list[PropertyFact] | None = None
    market_entities: list[MarketEntityFact] | None = None
    vehicles_vessels: list[VehicleVesselFact] | None = None
    deposits: list[DepositFact] | None = None
    securities: list[SecurityFact] | None = None
    insurance_cash_value: list[InsuranceFact] | None = None
    internet_finance: list[InternetFinanceFact] | None = None
    remote_registrations: list[RemoteRegistration] | None = Field(None, description="when other regions' platforms "
                                                                   "were asked")


class RecordDiscrepancy(RecordReason):
    kind: str = Field(description="e.g. member_not_registered, name_differs, wages_vs_insurance_base, "
                      "deceased_owner_vehicle, registered_in_another_region")
    person_ref: str | None = Field(None, description="the member it concerns (" + _PERSON + ")")
    sources: list[str] = Field(description="the sources (or application, id_number) that disagree")
    periods: list[str] | None = Field(None, description="the months it holds in, YYYY-MM")
    registry: str | None = Field(None, description="the other region's platform, for remote discrepancies")
    programmes: list[str] | None = None


class SourceLastComplete(_Open):
    record_version: int
    recorded_at: dt.datetime
    batch_id: str | None = None
    fetched_at: dt.datetime | None = None
    response_sha256: str | None = None
    validation_run: int | None = None


class RecordSource(_Open):
    status: str = Field(description="complete, incomplete, unavailable or refused")
    reason: str | None = Field(description="why not complete (a code), else null")
    authoritative_for: list[str] = Field(description="the facts this source is the authority for")
    batch_id: str
    fetched_at: dt.datetime
    response_sha256: str = Field(description="SHA-256 of the source's answer as received")
    validation_run: int | None = Field(None, description="its validation run (GET /v1/validation-runs)")
    cross_source_run: int | None = Field(None, description="the checks across the request's sources")
    last_complete: SourceLastComplete | None = Field(None, description="when not complete: the latest earlier record of "
                                               "the same application where it was")
    registries: list[str] | None = Field(None, description="remote_registry: the platforms that answered")


class RecordContent(_Open):
    """The record as the access policy lets this department read it for this purpose: its identity always, then
    the parts the rule grants (`fields` of the answer), or `answers` alone."""

    schema_: str = Field(alias="schema", description="the record's format: hub.household_record/2")
    household_ref: str = Field(description="the household's pseudonym (the path's household_id)")
    purpose: str = Field(description="the purpose of the request that published this version")
    as_of: dt.datetime = Field(description="valid time: when the sources were read")
    version: int
    recorded_at: dt.datetime = Field(description="transaction time: when the hub published it")
    request_id: str | None = Field(None, description="the request that published it")
    division: RecordDivision | None = None
    members: list[RecordMember] | None = Field(None, description="the members, head first")
    facts: RecordFacts | None = None
    discrepancies: list[RecordDiscrepancy] | None = Field(None, description="where sources disagree, or a fact cannot be "
                                                    "true of its person: never resolved silently")
    assessment: RecordAssessment | None = None
    sources: dict[str, RecordSource] | None = Field(None, description="per source asked: completeness and provenance")
    authority: dict[str, str] | None = Field(None, description="fact -> the source authoritative for it")
    answers: dict[str, Answer | None] | None = Field(None, description="answers-only rules: the screening answer "
                                                     "per programme, and nothing else")


class RecordBody(BaseModel):
    """What the record route answers: the envelope and ``content`` exactly as signed (a model would add the parts
    absent as null and change the order of the rest; the signature is over the content as it is)."""

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


class RecordOut(RecordBody):
    """RecordBody as the OpenAPI document describes it: ``content`` typed."""

    content: RecordContent = Field(description="the record, cut to what the policy grants (see `fields`)")


class AssistanceIn(BaseModel):
    household_id: str = Field(max_length=40, pattern=NO_NUL, description="the household's id in the hub (its records' "
                              "household_id)")
    programme: Purpose = Field(description="what was granted")
    granted_from: Annotated[dt.date, BeforeValidator(_date_text)]
    granted_until: Annotated[dt.date | None, BeforeValidator(_date_text)] = Field(None, description="empty while "
                                                                                 "it runs")
    request_id: str | None = Field(None, max_length=32, pattern=NO_NUL, description="the verification the grant rests "
                                   "on")
    monthly_amount: Decimal | None = Field(None, ge=0, le=1_000_000, decimal_places=2, description="yuan per "
                                           "month, when the department reports it (the household sees it on /m/)")


class AssistanceOut(BaseModel):
    id: str
    department: str
    programme: str
    granted_from: dt.date
    granted_until: dt.date | None
    monthly_amount: Decimal | None = Field(None, description="yuan per month, when reported")
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
    state: Literal["green", "amber", "red"] = Field(description="green: intact and every entry under a signed "
                                                    "checkpoint; amber: intact, but entries_after_checkpoint entries "
                                                    "are under none yet; red: problems found (as the console shows)")
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
ERRORS = {401: {"model": ErrorOut, "description": "unauthenticated: no valid bearer token",
               "headers": {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}}},
          403: {"model": ErrorOut, "description": "forbidden: not for this client's role"},
          422: {"model": ErrorOut, "description": "invalid_field or invalid_request: the input is not acceptable: "
                "the fields at fault (details lists them all), never their values"},
          429: {"model": ErrorOut, "description": "rate_limited: wait as Retry-After says", "headers": RETRY_AFTER},
          503: {"model": ErrorOut, "description": "store_unavailable: the hub's store is not available now: retry "
                "after Retry-After", "headers": RETRY_AFTER}}
BAD_BODY = {400: {"model": ErrorOut, "description": "invalid_body: the body could not be read: not UTF-8 JSON, or "
                  "nested deeper than 32 levels of arrays and objects"},
            413: {"model": ErrorOut, "description": "body_too_large: the body is larger than the hub reads "
                  "(HUB_API_MAX_BODY_BYTES, default 1 MiB)"}}
NOT_FOUND = {404: {"model": ErrorOut, "description": "not_found: no such object for this client (the same whether "
                   "it exists or not)"}}
