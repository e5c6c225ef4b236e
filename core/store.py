"""The hub's store: SQLAlchemy models and sessions.

The schema is managed by Alembic (core/migrations); `hub init` upgrades it to head. The same code runs on
SQLite (default) and PostgreSQL (``HUB_DATABASE_URL=postgresql+psycopg://...``).

Personal data is never stored in clear: columns ending in ``_enc`` hold AES-GCM tokens (core.crypto), and
persons and households are keyed by HMAC pseudonyms (``person_ref``, ``household_ref``).
"""

from __future__ import annotations

import datetime as dt
import time
from contextlib import contextmanager
from functools import lru_cache
from typing import Iterator

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    create_engine,
    event,
    select,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, defer, mapped_column, sessionmaker

from core.crypto import json_encoder
from core.settings import settings

SCHEMA_REVISION = "0022"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class UTCDateTime(TypeDecorator):
    """Timestamps stored as naive UTC, returned as aware UTC on every backend."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use aware UTC datetimes")
        return value.astimezone(dt.timezone.utc).replace(tzinfo=None)

    def bind_processor(self, dialect):
        """``process_bind_param`` and the dialect's own processing, the last moment's result kept: a multi-row
        statement binds one moment (its ``created_at``) in each of thousands of rows."""
        both = super().bind_processor(dialect)
        last = [(None, None)]  # (the moment, as bound): replaced whole, so a thread reads one pair or the other

        def process(value):
            seen, bound = last[0]
            if value is seen and value is not None:
                return bound
            bound = both(value) if both is not None else value
            last[0] = (value, bound)
            return bound

        return process

    def process_result_value(self, value, dialect):
        return None if value is None else value.replace(tzinfo=dt.timezone.utc)


class Base(DeclarativeBase):
    pass


class Request(Base):
    """A department's verification request (单位委托) for one household."""

    __tablename__ = "requests"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    department: Mapped[str] = mapped_column(String(64))  # department code of the entrusting department
    purpose: Mapped[str] = mapped_column(String(32))  # e.g. dibao, low_income, medical
    case_ref: Mapped[str] = mapped_column(String(64))  # the department's own case number
    sources: Mapped[list] = mapped_column(JSON)  # source keys the department asks for
    status: Mapped[str] = mapped_column(String(16), default="received")  # received|running|published|refused|failed
    household_ref: Mapped[str | None] = mapped_column(String(40), index=True)  # known once household registration answered
    client_id: Mapped[str | None] = mapped_column(String(32))  # API client that submitted it, if any
    kind: Mapped[str] = mapped_column(String(16), default="application")  # application | recheck
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("requests.id"), index=True)  # a recheck's application
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # a re-check's lease (hub.stages.reverify): the worker on it (host:pid:process start) and until when it holds
    lease_owner: Mapped[str | None] = mapped_column(String(96))
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # a re-check's key: the same for every attempt at one application's re-check in one pipeline run
    # (hub.stages.reverify.recheck_key), so an attempt finds the re-check another made, and two at once make one
    recheck_key: Mapped[str | None] = mapped_column(String(20), index=True, unique=True)


class RequestMember(Base):
    """A family member named in a request."""

    __tablename__ = "request_members"
    __table_args__ = (UniqueConstraint("request_id", "person_ref"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("requests.id"))
    person_ref: Mapped[str] = mapped_column(String(40), index=True)  # HMAC pseudonym of the ID number
    id_number_enc: Mapped[str] = mapped_column(Text)  # AES-GCM: the resident ID number
    name_enc: Mapped[str] = mapped_column(Text)  # AES-GCM: the name as the applicant gave it
    relation: Mapped[str] = mapped_column(String(16))  # head, spouse, child, parent, ...


class Authorization(Base):
    """A household's authorization (个人授权) given in one entrustment: purpose, validity, the members' consents.

    ``receipt`` is the consent receipt (consent/receipt.schema.json, after ISO/IEC TS 27560 and the Kantara
    Consent Receipt): pseudonyms and hashes only.
    """

    __tablename__ = "authorizations"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("requests.id"), index=True)
    department: Mapped[str] = mapped_column(String(64))  # the entrusting department
    purpose: Mapped[str] = mapped_column(String(32))
    valid_from: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    valid_until: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    recheck_interval_days: Mapped[int] = mapped_column(Integer)  # how often re-checks may fetch again
    data_life_days: Mapped[int] = mapped_column(Integer)  # how long fetched raw data may be kept
    receipt: Mapped[dict] = mapped_column(JSON)
    receipt_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuthorizationMember(Base):
    """One member's consent within an authorization. Like the authorization, never updated or deleted."""

    __tablename__ = "authorization_members"
    __table_args__ = (UniqueConstraint("authorization_id", "person_ref"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    authorization_id: Mapped[str] = mapped_column(ForeignKey("authorizations.id"))
    person_ref: Mapped[str] = mapped_column(String(40), index=True)
    adult_from: Mapped[dt.date] = mapped_column(Date)  # the 18th birthday (decides guardian cover)
    evidence_sha256: Mapped[str | None] = mapped_column(String(64))  # own signature; None when a guardian covers
    guardian_ref: Mapped[str | None] = mapped_column(String(40))  # the covering adult member (minors)
    sources: Mapped[list] = mapped_column(JSON)
    financial_sources: Mapped[list] = mapped_column(JSON)  # the separate financial consent (PIPL Art. 29)
    financial_evidence_sha256: Mapped[str | None] = mapped_column(String(64))


class Revocation(Base):
    """A withdrawal of consent, appended and never updated or deleted: the whole authorization (``person_ref`` and
    ``source`` empty), one member's consent (``source`` empty), or one member's consent to one source. Each row is
    vouched for by the ``authorization.revoked`` ledger entry naming its id. Its id only grows: the largest id is
    the consent watermark a fetch compares before each agency call (consent.authorizations.watermark)."""

    __tablename__ = "revocations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    authorization_id: Mapped[str] = mapped_column(ForeignKey("authorizations.id"), index=True)
    person_ref: Mapped[str | None] = mapped_column(String(40))
    source: Mapped[str | None] = mapped_column(String(32))
    revoked_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class AuthorizationExpiry(Base):
    """An authorization whose expiry is in the ledger (logged once, by consent maintenance). Append-only."""

    __tablename__ = "authorization_expiries"
    authorization_id: Mapped[str] = mapped_column(ForeignKey("authorizations.id"), primary_key=True)
    logged_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class ConsentDecision(Base):
    """One decision of the consent gate: this person, source, purpose and moment, allowed or refused."""

    __tablename__ = "consent_decisions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("requests.id"), index=True)
    person_ref: Mapped[str] = mapped_column(String(40))
    source: Mapped[str] = mapped_column(String(32))
    purpose: Mapped[str] = mapped_column(String(32))
    decided_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    allowed: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(String(32))  # ALLOWED or a refusal code (consent.gate.Reason)
    authorization_id: Mapped[str | None] = mapped_column(String(32))  # the basis of an allow


class FetchBatch(Base):
    """One call (or series of calls) to one agency for one request."""

    __tablename__ = "fetch_batches"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("requests.id"))
    source: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))  # complete|incomplete|unavailable|refused
    reason: Mapped[str | None] = mapped_column(String(64))  # why not complete (no personal data)
    requested: Mapped[int] = mapped_column(Integer, default=0)  # members asked for (after the gate)
    refused: Mapped[int] = mapped_column(Integer, default=0)  # members the gate refused
    returned: Mapped[int] = mapped_column(Integer, default=0)  # rows the agency returned
    response_sha256: Mapped[str | None] = mapped_column(String(64))
    fetched_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    validated: Mapped[bool] = mapped_column(Boolean, default=False)
    members: Mapped[dict | None] = mapped_column(JSON)  # person_ref -> state (schemas.coverage), after validation
    purged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)  # raw answers and rows deleted (data life)
    # a batch exchange's share (批量核对): the exchange whose answers (ExchangeAnswer) its rows came from, and how
    # they are told apart there: {"refs": the references its persons were sent with, "excluded": pseudonyms of the
    # persons whose rows were left out (miscounted, answered under another reference)}
    exchange_id: Mapped[str | None] = mapped_column(String(32), index=True)
    exchange: Mapped[dict | None] = mapped_column(JSON)


# a batch's exchange share is read only to replay the batch: validation, the checks across sources and publication
# load thousands of batches with this option, without it
WITHOUT_SHARE = defer(FetchBatch.exchange)


class RawResponse(Base):
    """An agency's raw answer, encrypted, kept for its data life so a record can be replayed; its hash is in the
    ledger (fetch.completed)."""

    __tablename__ = "raw_responses"
    __table_args__ = (UniqueConstraint("batch_id", "seq"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    batch_id: Mapped[str] = mapped_column(ForeignKey("fetch_batches.id"))
    seq: Mapped[int] = mapped_column(Integer)  # order of the answer within the fetch
    body_enc: Mapped[str] = mapped_column(Text)  # AES-GCM: the body as received (Keyring.decrypt_bytes)
    sha256: Mapped[str] = mapped_column(String(64))
    # AES-GCM: the agency's signature headers (connectors.signing), JSON; None for answers stored before signing
    signature_enc: Mapped[str | None] = mapped_column(Text)


class ExchangeAnswer(Base):
    """An agency's raw answer to one call of a batch exchange (persons of many households), encrypted, kept once for
    every batch that took rows from it and purged with the last of them; its hash is in the ledger
    (fetch.exchanged, and each batch's fetch.completed)."""

    __tablename__ = "exchange_answers"
    __table_args__ = (UniqueConstraint("exchange_id", "seq"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    exchange_id: Mapped[str] = mapped_column(String(32))
    seq: Mapped[int] = mapped_column(Integer)  # the page's place within the exchange
    source: Mapped[str] = mapped_column(String(32))
    sha256: Mapped[str] = mapped_column(String(64))
    body_enc: Mapped[str] = mapped_column(Text)  # AES-GCM: the body as received (Keyring.decrypt_bytes)
    signature_enc: Mapped[str | None] = mapped_column(Text)  # AES-GCM: the agency's signature headers, JSON
    fetched_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class SourceRow(Base):
    """A canonical row from one agency, encrypted; ``valid`` is set by validation."""

    __tablename__ = "source_rows"
    __table_args__ = (UniqueConstraint("batch_id", "row_no"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    batch_id: Mapped[str] = mapped_column(ForeignKey("fetch_batches.id"))
    row_no: Mapped[int] = mapped_column(Integer)
    person_ref: Mapped[str | None] = mapped_column(String(40))
    data_enc: Mapped[str] = mapped_column(Text)  # AES-GCM: the canonical row as JSON
    valid: Mapped[bool | None] = mapped_column(Boolean)


class ValidationRun(Base):
    """The result of one GX suite (no personal data): a source's rows or its members (per batch), or the
    checks across the sources of a request (per request, ``batch_id`` empty)."""

    __tablename__ = "validation_runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    batch_id: Mapped[str | None] = mapped_column(ForeignKey("fetch_batches.id"), index=True)
    request_id: Mapped[str | None] = mapped_column(ForeignKey("requests.id"))
    source: Mapped[str | None] = mapped_column(String(32))  # the batch's source; empty across sources
    suite: Mapped[str] = mapped_column(String(64))
    success: Mapped[bool] = mapped_column(Boolean)
    rows: Mapped[int] = mapped_column(Integer)
    rows_failed: Mapped[int] = mapped_column(Integer)
    # per expectation: type, column, success, unexpected count; in validation_texts (results_sha256) since 0019,
    # inline in runs stored before
    results: Mapped[list | None] = mapped_column(JSON)
    results_sha256: Mapped[str | None] = mapped_column(String(64))
    run_id: Mapped[str | None] = mapped_column(String(250), index=True)  # the Airflow run id, or inline:<uuid>
    # the GX result without data values, packed (schemas.docs): in validation_texts (docs_sha256) since 0019
    docs: Mapped[str | None] = mapped_column(Text)
    docs_sha256: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ValidationText(Base):
    """A validation run's results or Data Docs, stored once however many runs have them (by the SHA-256 of the
    text): a re-check batch of 500 households makes 11,000 runs, with a few hundred distinct results among them and
    one Data Docs per GX run. No personal data: counts and checks only."""

    __tablename__ = "validation_texts"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    body: Mapped[str] = mapped_column(Text)


def store_validation_texts(s: Session, texts: dict[str, str]) -> None:
    """Store each text (SHA-256 -> text) not stored yet; one stored already, by this run or any other process's,
    is left as it is (an INSERT that ignores the key's conflict, on SQLite and PostgreSQL alike)."""
    if s.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    items = sorted(texts.items())  # in key order: two writers at once on PostgreSQL take the keys' locks in one order
    for start in range(0, len(items), 500):
        s.execute(insert(ValidationText.__table__).on_conflict_do_nothing(index_elements=["sha256"]),
                  [{"sha256": k, "body": v} for k, v in items[start: start + 500]])


def validation_texts(s: Session, shas) -> dict[str, str]:
    """The stored texts of these SHA-256s."""
    wanted, out = sorted({x for x in shas if x}), {}
    for start in range(0, len(wanted), 500):
        out.update(s.execute(select(ValidationText.sha256, ValidationText.body)
                             .where(ValidationText.sha256.in_(wanted[start: start + 500]))).all())
    return out


class QuarantinedRow(Base):
    """A row rejected by validation, with a reason staff can read."""

    __tablename__ = "quarantine"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    batch_id: Mapped[str] = mapped_column(ForeignKey("fetch_batches.id"), index=True)
    source: Mapped[str] = mapped_column(String(32))
    row_no: Mapped[int] = mapped_column(Integer)
    person_ref: Mapped[str | None] = mapped_column(String(40))
    expectation: Mapped[str] = mapped_column(String(96))
    reason: Mapped[str] = mapped_column(String(255))
    validation_run_id: Mapped[int | None] = mapped_column(ForeignKey("validation_runs.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class HouseholdRecord(Base):
    """A published, immutable version of a household's verified record."""

    __tablename__ = "household_records"
    __table_args__ = (
        UniqueConstraint("household_ref", "version"),
        UniqueConstraint("request_id"),  # publishing a request twice yields the same record
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    household_ref: Mapped[str] = mapped_column(String(40))
    version: Mapped[int] = mapped_column(Integer)
    request_id: Mapped[str] = mapped_column(ForeignKey("requests.id"))
    as_of: Mapped[dt.datetime] = mapped_column(UTCDateTime)  # the moment the facts describe
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    completeness: Mapped[dict] = mapped_column(JSON)  # source -> complete|incomplete|unavailable|refused
    content_enc: Mapped[str] = mapped_column(Text)  # AES-GCM: the record as canonical JSON, compressed
    content_sha256: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(128))  # Ed25519 over the canonical JSON


IMMUTABLE_TABLES = ("household_records",)  # published versions: triggers refuse UPDATE and DELETE
# consent is changed only by appending: triggers refuse UPDATE and DELETE, the application role has neither
CONSENT_TABLES = ("authorizations", "authorization_members", "revocations", "authorization_expiries")


class Notification(Base):
    """The outbox: one notification per published version, written in the publishing transaction; delivered to
    subscribed departments afterwards, at least once, with ``idempotency_key`` for them to drop repeats. The
    payload names what changed, never a value."""

    __tablename__ = "notifications"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    household_ref: Mapped[str] = mapped_column(String(40), index=True)
    # the version it announces; none for a review's finding (review.flagged), which announces no new version
    record_id: Mapped[int | None] = mapped_column(ForeignKey("household_records.id"), unique=True)
    version: Mapped[int] = mapped_column(Integer)  # the version announced, or the one a finding was read from
    kind: Mapped[str] = mapped_column(String(32))  # record.published (first version) | record.changed | review.flagged
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    payload: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    fanned_out_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)  # deliveries created for subscribers


class AssistanceGrant(Base):
    """Assistance a department reports it granted a household (幸福清单): what, from when, until when."""

    __tablename__ = "assistance_grants"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    household_ref: Mapped[str] = mapped_column(String(40), index=True)
    department: Mapped[str] = mapped_column(String(64))
    programme: Mapped[str] = mapped_column(String(32))  # a purpose key (hub.stages.intake.PURPOSES)
    request_id: Mapped[str | None] = mapped_column(ForeignKey("requests.id"))  # the verification it rests on
    granted_from: Mapped[dt.date] = mapped_column(Date)
    granted_until: Mapped[dt.date | None] = mapped_column(Date)  # open-ended when empty
    monthly_amount_fen: Mapped[int | None] = mapped_column(Integer)  # per month, in fen (0.01 yuan), when reported
    client_id: Mapped[str] = mapped_column(String(32))
    reported_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReviewRun(Base):
    """One run of the assistance review (精准评估, hub.stages.review): as of a date, under the standards in force then.
    ``summary`` holds counts only (lists, movement per month and county, funnel, coverage), no personal data."""

    __tablename__ = "review_runs"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    as_of: Mapped[dt.date] = mapped_column(Date, index=True)
    rules: Mapped[str] = mapped_column(String(32))  # the standards version the households were screened under
    households: Mapped[int] = mapped_column(Integer)  # households with a record by then
    summary: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReviewEntry(Base):
    """A household on one of a review run's lists, for one programme: ``missed`` (应救未救: screens yes, no active
    grant), ``review`` (screens needs_review, no active grant) or ``over`` (过度救助: an active grant, screens no).
    Pseudonyms, department codes and reason codes only."""

    __tablename__ = "review_entries"
    __table_args__ = (UniqueConstraint("run_id", "kind", "household_ref", "programme"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("review_runs.id"))
    kind: Mapped[str] = mapped_column(String(8))  # which list: missed | review | over
    household_ref: Mapped[str] = mapped_column(String(40), index=True)
    programme: Mapped[str] = mapped_column(String(32))
    county: Mapped[str | None] = mapped_column(String(6))
    departments: Mapped[list] = mapped_column(JSON)  # the departments whose household it is (requests, grants)
    reasons: Mapped[list] = mapped_column(JSON)  # the screening's reason codes
    since: Mapped[dt.date] = mapped_column(Date)  # since when the household has screened so
    since_version: Mapped[int] = mapped_column(Integer)  # the record version (a re-check's, mostly) it began with
    record_version: Mapped[int] = mapped_column(Integer)  # the latest version, read for this run
    new: Mapped[bool] = mapped_column(Boolean)  # not on this list for this programme in the previous run


class Subscription(Base):
    """A department's webhook for change notifications about the households it has requests for."""

    __tablename__ = "subscriptions"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    department: Mapped[str] = mapped_column(String(64), index=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("api_clients.id"))
    url: Mapped[str] = mapped_column(String(2048))
    secret_enc: Mapped[str] = mapped_column(Text)  # AES-GCM: the HMAC key the department checks deliveries with
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Delivery(Base):
    """One notification to one subscription: retried until delivered (at least once), or given up."""

    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("notification_id", "subscription_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    notification_id: Mapped[int] = mapped_column(ForeignKey("notifications.id"))
    subscription_id: Mapped[str] = mapped_column(ForeignKey("subscriptions.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_status: Mapped[str | None] = mapped_column(String(32))  # HTTP status or failure kind, no body
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class LedgerEvent(Base):
    """Append-only event log. MUST NOT be updated or deleted (triggers refuse it; on PostgreSQL the application
    role has no UPDATE or DELETE). Payloads hold pseudonyms and hashes only."""

    __tablename__ = "ledger_events"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(48), index=True)
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    payload: Mapped[dict] = mapped_column(JSON)
    leaf_sha256: Mapped[str] = mapped_column(String(64))  # RFC 6962 leaf hash of the entry (consent.ledger)


class AgencyCircuit(Base):
    """An agency address's circuit, shared by every process that calls it (connectors.transport.
    SharedCircuitBreaker): consecutive failures, when the circuit opened (None: closed), and the moment before
    which no call is made (a Retry-After one process was told). Keyed by the address's SHA-256."""

    __tablename__ = "agency_circuits"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    opened_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    not_before: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class LedgerLeaf(Base):
    """The event at each position of the Merkle tree, assigned when a checkpoint integrates it. Append-only."""

    __tablename__ = "ledger_leaves"
    leaf_index: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer, unique=True)  # ledger_events.seq
    leaf_sha256: Mapped[str] = mapped_column(String(64))


class LedgerNode(Base):
    """Tree state: the hash of every complete, aligned subtree (level 0 = leaves). Append-only; derived from the
    leaves, kept so proofs need O(log^2 n) reads."""

    __tablename__ = "ledger_nodes"
    level: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    index: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(String(64))


class LedgerCheckpoint(Base):
    """A signed checkpoint (C2SP tlog-checkpoint note, Ed25519). Append-only; numbered without gaps."""

    __tablename__ = "ledger_checkpoints"
    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    size: Mapped[int] = mapped_column(Integer)
    root_sha256: Mapped[str] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(Text)  # the signed note, as published
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


LEDGER_TABLES = ("ledger_events", "ledger_leaves", "ledger_nodes", "ledger_checkpoints")


class SourceCheck(Base):
    """One probe of an agency by the source_health DAG (no personal data: an empty query)."""

    __tablename__ = "source_checks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(32), index=True)
    checked_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    ok: Mapped[bool] = mapped_column(Boolean)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    failure: Mapped[str | None] = mapped_column(String(32))  # connectors.base.Failure value
    last_complete_fetch: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)  # freshness


class Alert(Base):
    """A failed pipeline task, for staff (written by the DAGs' failure callback; no personal data)."""

    __tablename__ = "alerts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dag_id: Mapped[str] = mapped_column(String(250))
    task_id: Mapped[str] = mapped_column(String(250))
    run_id: Mapped[str] = mapped_column(String(250))
    map_index: Mapped[int] = mapped_column(Integer, default=-1)
    try_number: Mapped[int] = mapped_column(Integer, default=1)
    error: Mapped[str] = mapped_column(String(128))  # the exception's class only: its text may hold data
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class ConsoleSession(Base):
    """A signed-in console user (the cookie holds a random token; only its SHA-256 is stored)."""

    __tablename__ = "console_sessions"
    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("api_clients.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class ApiClient(Base):
    """A client of the HTTP API; only the token's hash is stored."""

    __tablename__ = "api_clients"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16))  # department|auditor|staff|admin|federation
    department: Mapped[str | None] = mapped_column(String(64))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    public_key: Mapped[str | None] = mapped_column(String(64))  # federation: the platform's Ed25519 key (raw, base64url)


class DciTransaction(Base):
    """One DCI message exchanged with a federated platform (hub/dci): received (``in``: a search, subscription,
    unsubscription, status query or notification a platform sent) or sent (``out``: a message this hub sent whose
    answer comes back on a callback). A platform's message id is used once (replays are refused). Personal data only
    in ``payload_enc`` (AES-GCM): an answer kept until it is delivered (in) or as it was received (out)."""

    __tablename__ = "dci_transactions"
    __table_args__ = (UniqueConstraint("direction", "platform", "message_id"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # this hub's correlation id
    direction: Mapped[str] = mapped_column(String(3))  # in | out
    platform: Mapped[str] = mapped_column(String(64), index=True)  # the other platform (its client's code)
    client_id: Mapped[str | None] = mapped_column(ForeignKey("api_clients.id"))  # in: the platform's client
    operation: Mapped[str] = mapped_column(String(16))  # search | subscribe | unsubscribe | txn-status | notify
    mode: Mapped[str] = mapped_column(String(8))  # sync | async
    transaction_id: Mapped[str] = mapped_column(String(99), index=True)  # the sender's transaction id
    message_id: Mapped[str] = mapped_column(String(99))
    status: Mapped[str] = mapped_column(String(8))  # rcvd | pdng | succ | rjct
    items: Mapped[list] = mapped_column(JSON)  # per reference id: status, reason code, records (no personal data)
    callback_uri: Mapped[str | None] = mapped_column(String(2048))  # in, async: where the answer goes
    payload_enc: Mapped[str | None] = mapped_column(Text)  # AES-GCM: the answer's message (see the class doc)
    delivery: Mapped[str | None] = mapped_column(String(16))  # in, async: pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_status: Mapped[str | None] = mapped_column(String(32))  # HTTP status or failure kind, no body
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class DciSubscription(Base):
    """A federated platform's subscription to a household's record events (DCI subscribe), resting on the platform's
    own request in this hub (its entrustment and the person's authorization, which the gate checks at every
    notification)."""

    __tablename__ = "dci_subscriptions"
    code: Mapped[str] = mapped_column(String(32), primary_key=True)  # the subscription code the platform holds
    client_id: Mapped[str] = mapped_column(ForeignKey("api_clients.id"))
    platform: Mapped[str] = mapped_column(String(64), index=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("requests.id"))  # the platform's request: the basis
    person_ref: Mapped[str] = mapped_column(String(40))  # the person the platform named
    household_ref: Mapped[str] = mapped_column(String(40), index=True)  # the household whose record is followed
    purpose: Mapped[str] = mapped_column(String(32))
    reg_event_type: Mapped[str] = mapped_column(String(32))  # REGISTER | NewHouseHoldMember
    notify_record_type: Mapped[str] = mapped_column(String(32))
    frequency: Mapped[dict | None] = mapped_column(JSON)  # as the platform asked (start, end, cron)
    status: Mapped[str] = mapped_column(String(12))  # subscribe | unsubscribe
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    unsubscribed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class DciNotification(Base):
    """One record event (an outbox notification) to one DCI subscription: sent signed to the platform's
    /registry/notify, retried until delivered, or refused when the subscription's basis no longer holds."""

    __tablename__ = "dci_notifications"
    __table_args__ = (UniqueConstraint("subscription_code", "notification_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subscription_code: Mapped[str] = mapped_column(ForeignKey("dci_subscriptions.code"))
    notification_id: Mapped[int] = mapped_column(ForeignKey("notifications.id"))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | delivered | failed | refused
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_status: Mapped[str | None] = mapped_column(String(32))
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class SignedForm(Base):
    """An applicant's signed authorization form as a department gave it for a household lookup (一证通办): the
    document itself, AES-GCM encrypted (``content_enc``: Keyring.encrypt_bytes, bound to the row by
    aad_signed_form), its SHA-256 (named by the lookup's ledger entry) and the department's case number. Written,
    with the lookup's id, before household registration is asked: the department's forms of the last hour are its
    lookups of the hour (the rate limit, hub.services.lookup)."""

    __tablename__ = "signed_forms"
    __table_args__ = (Index("ix_signed_forms_department_created_at", "department", "created_at"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)  # of the document's bytes
    media_type: Mapped[str] = mapped_column(String(32))  # application/pdf | image/jpeg | image/png
    size: Mapped[int] = mapped_column(Integer)  # bytes
    content_enc: Mapped[str] = mapped_column(Text)
    department: Mapped[str] = mapped_column(String(64))
    case_ref: Mapped[str] = mapped_column(String(64))
    lookup_id: Mapped[str] = mapped_column(String(32), unique=True)  # the household.lookup ledger entry's
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class SigningTerms(Base):
    """What the members of a request are asked to sign on their phones (码上办): the authorization's terms as the
    department set them (validity, re-check interval, data life, the sources and, apart, the financial ones). The
    authorization itself is stored (consent.authorizations.store_authorization) only once every member has signed
    or declined: nothing half-signed reaches the gate. ``authorization_id`` names it then."""

    __tablename__ = "signing_terms"
    request_id: Mapped[str] = mapped_column(ForeignKey("requests.id"), primary_key=True)
    terms: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    authorization_id: Mapped[str | None] = mapped_column(String(32))


class SigningInvitation(Base):
    """One member's invitation to sign (a QR code and a short link, /m/s/<token>): only the token's SHA-256 is
    looked up; the token itself is kept encrypted (``token_enc``, bound to the row) so the caseworker can show the
    code again. Answered once: signed (``evidence``: the ID token's issuer and subject, the moment, the text shown
    and its hash; ``evidence_sha256`` goes into the authorization as the member's evidence) or declined."""

    __tablename__ = "signing_invitations"
    __table_args__ = (UniqueConstraint("request_id", "person_ref"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    token_enc: Mapped[str] = mapped_column(Text)
    request_id: Mapped[str] = mapped_column(ForeignKey("requests.id"))
    person_ref: Mapped[str] = mapped_column(String(40), index=True)
    minor: Mapped[bool] = mapped_column(Boolean)  # under 18 when asked: a guardian (an adult member) signs
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending | signed | declined
    answered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    signer_ref: Mapped[str | None] = mapped_column(String(40))  # the member, or the guardian who signed for a minor
    financial: Mapped[bool | None] = mapped_column(Boolean)  # also signed the separate financial consent
    evidence: Mapped[dict | None] = mapped_column(JSON)
    evidence_sha256: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ResidentLogin(Base):
    """A resident's sign-in in progress at the identity provider: its state (the key), nonce and PKCE verifier,
    and the /m/ page to return to. Used once, then deleted; stale ones are deleted with the next sign-in."""

    __tablename__ = "resident_logins"
    state: Mapped[str] = mapped_column(String(64), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64))
    code_verifier: Mapped[str] = mapped_column(String(128))
    return_to: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class ResidentSession(Base):
    """A signed-in resident (the HttpOnly cookie holds a random token; only its SHA-256 is stored): the person's
    pseudonym, the ID number masked and encrypted, the name encrypted (both bound to the row), who vouched for them
    (issuer, subject). Deleted at sign-out; an expired one with the next sign-in."""

    __tablename__ = "resident_sessions"
    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    person_ref: Mapped[str] = mapped_column(String(40), index=True)
    masked_id: Mapped[str] = mapped_column(String(18))
    id_number_enc: Mapped[str] = mapped_column(Text)
    name_enc: Mapped[str] = mapped_column(Text)
    adult_from: Mapped[dt.date] = mapped_column(Date)
    issuer: Mapped[str] = mapped_column(String(256))
    subject: Mapped[str] = mapped_column(String(256))
    id_token_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class ResidentMessage(Base):
    """A message to a resident inside the hub (no SMS gateway): its kind and parameters (ids and codes, never
    personal data), shown on /m/messages in the resident's language."""

    __tablename__ = "resident_messages"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    person_ref: Mapped[str] = mapped_column(String(40), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    request_id: Mapped[str | None] = mapped_column(String(32))
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class ResidentApplication(Base):
    """An application a resident started on /m/ (申请) for a programme at a department: pending until the department
    accepts (its entrustment: a request is made and its members are asked to sign) or declines it with a reason.
    The members are kept as in a request (encrypted, bound to the application)."""

    __tablename__ = "resident_applications"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    applicant_ref: Mapped[str] = mapped_column(String(40), index=True)
    department: Mapped[str] = mapped_column(String(64), index=True)
    programme: Mapped[str] = mapped_column(String(32))
    members_enc: Mapped[str] = mapped_column(Text)  # AES-GCM: the members (ID number, name, relation) as JSON
    member_refs: Mapped[list] = mapped_column(JSON)  # their pseudonyms, to find the application by member
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | accepted | declined
    reason: Mapped[str | None] = mapped_column(String(500))  # the department's, when it declines
    request_id: Mapped[str | None] = mapped_column(ForeignKey("requests.id"))  # the request its acceptance made
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    decided_by: Mapped[str | None] = mapped_column(String(32))  # the client who decided


Index("ix_fetch_batches_request_source", FetchBatch.request_id, FetchBatch.source)
# a re-check batch asks which of its requests have their checks across sources in this run already, and which
# re-checks are unfinished: by these, not by run_id alone (every run of the night so far) or a scan of the requests
Index("ix_validation_runs_request_batch_run", ValidationRun.request_id, ValidationRun.batch_id,
      ValidationRun.run_id)
Index("ix_requests_kind_status", Request.kind, Request.status)


# -- associated data: each encrypted value is bound to its place (table, column, row key) ------------------


def aad_member(request_id: str, column: str, person_ref: str) -> str:
    return f"request_members.{column}:{request_id}:{person_ref}"


def aad_source_row(batch_id: str, row_no: int) -> str:
    return f"source_rows.data_enc:{batch_id}:{row_no}"


def aad_raw_response(batch_id: str, seq: int) -> str:
    return f"raw_responses.body_enc:{batch_id}:{seq}"


def aad_raw_signature(batch_id: str, seq: int) -> str:
    return f"raw_responses.signature_enc:{batch_id}:{seq}"


def aad_invitation(invitation_id: str) -> str:
    return f"signing_invitations.token_enc:{invitation_id}"


def aad_resident_session(token_sha256: str, column: str = "name_enc") -> str:
    return f"resident_sessions.{column}:{token_sha256}"


def aad_application(application_id: str) -> str:
    return f"resident_applications.members_enc:{application_id}"


def aad_exchange_answer(exchange_id: str, seq: int) -> str:
    return f"exchange_answers.body_enc:{exchange_id}:{seq}"


def aad_exchange_signature(exchange_id: str, seq: int) -> str:
    return f"exchange_answers.signature_enc:{exchange_id}:{seq}"


def aad_record(household_ref: str, version: int) -> str:
    return f"household_records.content_enc:{household_ref}:{version}"


def aad_dci(transaction: str) -> str:
    return f"dci_transactions.payload_enc:{transaction}"


def aad_signed_form(form_id: str) -> str:
    return f"signed_forms.content_enc:{form_id}"


# -- engine and sessions ---------------------------------------------------------------------


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA cache_size=-32768")  # 32 MB of pages (2 MB by default): a city's store outgrows that
    if cur.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":  # kept in the file once set
        cur.execute("PRAGMA journal_mode=WAL")
    cur.close()


# Connections kept open per engine: as many as the API's worker threads (anyio's 40) may use at once, so that a busy
# API reuses its connections instead of opening and closing one per request beyond the pool.
POOL_SIZE, POOL_OVERFLOW = 40, 20


def engine(url: str | None = None) -> Engine:
    """The engine of ``url`` (default: HUB_DATABASE_URL as it is now), one per URL per process."""
    return _engine(url or settings().database_url)


# JSON columns' text as SQLAlchemy's default (json.dumps) writes it, from an encoder made once
# (core.crypto.json_encoder)
_JSON_TEXT = json_encoder(ensure_ascii=True)


@lru_cache(maxsize=8)
def _engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        memory = url in ("sqlite://", "sqlite:///:memory:")
        # the connection returned last is the next one given (LIFO): each connection keeps a page cache of its own
        # (cache_size, up to 32 MB), and a re-check whose fetch threads drew a dozen connections from the pool
        # otherwise had its large reads go round all of them, filling each one's cache (a worker's resident set
        # at 30,000 persons, 14 batches of 1,000 households: 837 MB with the pool's default order, 699 MB with this)
        eng = create_engine(url, connect_args={"timeout": 30}, hide_parameters=True, json_serializer=_JSON_TEXT,
                            **({} if memory else {"pool_size": POOL_SIZE, "max_overflow": POOL_OVERFLOW,
                                                  "pool_use_lifo": True}))
        event.listen(eng, "connect", _sqlite_pragmas)
    else:
        eng = create_engine(url, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW, hide_parameters=True,
                            json_serializer=_JSON_TEXT)
        event.listen(eng, "checkin", _idle_since)
        event.listen(eng, "checkout", _ping_if_idle)
    return eng


class AsyncEngines:
    """asyncio engines (SQLAlchemy's, on psycopg's asyncio connection) of PostgreSQL stores, one per URL, for the
    event loop that made them: the API's record read runs its statement there instead of in a worker thread (each
    thread hop costs about as much as a whole bare request). For reads: every connection is in autocommit. Made by
    the app while it serves, disposed when it stops (hub.web.app); SQLite has no asyncio driver here, so ``get``
    gives None for it."""

    def __init__(self) -> None:
        self._engines: dict[str, AsyncEngine] = {}

    def get(self, url: str | None = None) -> AsyncEngine | None:
        url = url or settings().database_url
        if not url.startswith("postgresql"):
            return None
        eng = self._engines.get(url)
        if eng is None:
            # reads only, each one statement: autocommit set once per connection (not per checkout and return)
            eng = self._engines[url] = create_async_engine(
                make_url(url).set(drivername="postgresql+psycopg"), pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW,
                hide_parameters=True, isolation_level="AUTOCOMMIT")
            event.listen(eng.sync_engine, "checkin", _idle_since)
            event.listen(eng.sync_engine, "checkout", _ping_if_idle)
        return eng

    async def dispose(self) -> None:
        engines, self._engines = list(self._engines.values()), {}
        for eng in engines:
            await eng.dispose()


# A pooled PostgreSQL connection idle longer than this is pinged before use (the server may have restarted or closed
# it meanwhile); one in steady use is not, so that a busy API pays no extra round trip per request. A connection lost
# anyway fails its statement once: SQLAlchemy then drops the whole pool, and the next request connects afresh.
PING_AFTER_IDLE_S = 5.0


def _idle_since(_dbapi_conn, record) -> None:
    record.info["idle_since"] = time.monotonic()


def _ping_if_idle(dbapi_conn, record, _proxy) -> None:
    """SQLAlchemy's pessimistic disconnect handling ("Disconnect Handling - Pessimistic", custom form): a connection
    that does not answer is replaced (DisconnectionError makes the pool retry with a new one)."""
    idle_since = record.info.get("idle_since")  # None: connected just now
    if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_S:
        return
    try:
        with dbapi_conn.cursor() as cur:
            cur.execute("SELECT 1")
        dbapi_conn.rollback()
    except Exception as exc:  # noqa: BLE001 - any failure means this connection is not usable
        raise DisconnectionError() from exc


@lru_cache(maxsize=8)
def _factory(eng: Engine) -> sessionmaker:
    return sessionmaker(eng, expire_on_commit=False)


@contextmanager
def session(url: str | None = None) -> Iterator[Session]:
    """A transaction: committed when the block ends, rolled back on error."""
    with _factory(engine(url))() as s:
        with s.begin():
            yield s


def _lock_key(name: str) -> int:
    """A fixed signed 64-bit key for ``name`` (PostgreSQL advisory locks)."""
    import hashlib

    return int.from_bytes(hashlib.sha256(f"verification-hub:{name}".encode()).digest()[:8], "big", signed=True)


def _begin_immediate(conn) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _driver_autocommit(dbapi_conn, _record) -> None:
    dbapi_conn.isolation_level = None  # pysqlite emits no BEGIN of its own; the "begin" event does


@lru_cache(maxsize=8)
def _exclusive_engine(url: str) -> Engine:
    """SQLite: an engine of its own whose transactions start with BEGIN IMMEDIATE (the write lock taken at once,
    waited for up to busy_timeout), as the SQLAlchemy docs on pysqlite transactions describe. The engine of
    ``engine`` keeps pysqlite's own transaction handling. No pool: a connection per block, nothing left open."""
    from sqlalchemy.pool import NullPool

    eng = create_engine(url, connect_args={"timeout": 30}, poolclass=NullPool, hide_parameters=True)
    event.listen(eng, "connect", _sqlite_pragmas)
    event.listen(eng, "connect", _driver_autocommit)
    event.listen(eng, "begin", _begin_immediate)
    return eng


@contextmanager
def exclusive_session(url: str | None = None, lock: str = "ledger") -> Iterator[Session]:
    """A transaction like ``session`` that holds the writer lock ``lock`` before anything is read, so one such
    block runs at a time across processes: on PostgreSQL a transaction-level advisory lock on a fixed key derived
    from ``lock`` (its first statement; at READ COMMITTED each later statement sees what the previous holder
    committed); on SQLite the database's write lock (``BEGIN IMMEDIATE``: one writer per database, whatever
    ``lock`` names). Other sessions keep reading; on SQLite their writes wait (busy_timeout) until it ends."""
    from sqlalchemy import text

    url = url or settings().database_url
    eng = _exclusive_engine(url) if url.startswith("sqlite") else engine(url)
    with _factory(eng)() as s:
        with s.begin():
            if eng.dialect.name == "postgresql":
                s.connection(execution_options={"isolation_level": "READ COMMITTED"})
                s.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key(lock)})
            else:
                s.connection()  # BEGIN IMMEDIATE now, before the first read
            yield s


def upgrade(url: str | None = None, revision: str = "head") -> None:
    """Create or upgrade the schema to the newest migration (or to ``revision``)."""
    from pathlib import Path

    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.attributes["url"] = url or settings().database_url
    command.upgrade(cfg, revision)


class SchemaMismatch(RuntimeError):
    """The store's schema is not the one this code was written for (an older store not yet upgraded, or a newer
    one written by a later release): serving on it would read or write columns that are not there."""


def schema_revision(url: str | None = None) -> str | None:
    """The store's Alembic revision, or None when the store has none (never initialised)."""
    from sqlalchemy import inspect, text

    eng = engine(url)
    with eng.connect() as c:
        if not inspect(c).has_table("alembic_version"):
            return None
        return c.execute(text("SELECT version_num FROM alembic_version")).scalar()


def check_schema(url: str | None = None) -> None:
    """At start-up (``hub api``, ``hub verify``, ``hub reverify``): the store MUST be at SCHEMA_REVISION, else
    SchemaMismatch says what to run. The message names revisions only, never the database's address."""
    found = schema_revision(url)
    if found != SCHEMA_REVISION:
        raise SchemaMismatch(f"the store's schema is at revision {found or 'none'}, this hub needs {SCHEMA_REVISION}: "
                             "run `hub init` (it upgrades the store, keeping its data)")


def grant_app_role(admin_url: str, role: str) -> None:
    """PostgreSQL: let ``role`` (the hub's application login; created without a password when missing, set one
    with ALTER ROLE where the server asks for passwords) read and write the store, but only SELECT and INSERT on
    the ledger, the published records and the consent tables (CONSENT_TABLES). Run as the owner of the schema,
    after ``upgrade``."""
    from sqlalchemy import text

    if not admin_url.startswith("postgresql"):
        raise ValueError("application roles exist on PostgreSQL only")
    if not role.replace("_", "").isalnum():
        raise ValueError("role names are letters, digits and '_'")
    eng = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with eng.connect() as c:
            exists = c.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first()
            if not exists:
                c.execute(text(f'CREATE ROLE "{role}" LOGIN'))
            c.execute(text(f'GRANT USAGE ON SCHEMA public TO "{role}"'))
            c.execute(text(f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "{role}"'))
            c.execute(text(f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO "{role}"'))
            for table in (*LEDGER_TABLES, *IMMUTABLE_TABLES, *CONSENT_TABLES):
                c.execute(text(f'REVOKE UPDATE, DELETE, TRUNCATE ON {table} FROM "{role}"'))
            # key rotation re-encrypts a published record's ciphertext (a trigger refuses any other change)
            c.execute(text(f'GRANT UPDATE (content_enc) ON household_records TO "{role}"'))
            c.execute(text(f'REVOKE ALL ON alembic_version FROM "{role}"'))
            c.execute(text(f'GRANT SELECT ON alembic_version TO "{role}"'))
    finally:
        eng.dispose()
