"""Auditors' routes: the ledger's entries, its integrity against the latest signed checkpoint, an entry's inclusion
proof, a person's pseudonym and timeline, and unusual reads. Every look at the ledger is itself a ledger entry
(audit.read); addresses carry pseudonyms only (an ID number goes in a body)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from fastapi import Path as PathParam

from core.crypto import keyring
from core.ids import HEX32, HOUSEHOLD, MAX_ID, NO_NUL, PERSON
from core.store import utcnow
from hub.services import audit
from hub.services.reads import audit_read, ledger_proof
from hub.web.deps import Auditor, Before, Limit, Moment, aware
from hub.web import examples as ex
from hub.web.errors import DocumentRoute
from hub.web.models import (
    BAD_BODY,
    NOT_FOUND,
    CheckpointOut,
    ErrorOut,
    LedgerEntriesOut,
    LedgerEntryOut,
    PersonIn,
    PersonRefOut,
    UnusualReadOut,
    UnusualReadsOut,
)
from schemas.codes import valid_id_mask

router = APIRouter(route_class=DocumentRoute)


def _entries(rows, limit: int) -> LedgerEntriesOut:
    items = [LedgerEntryOut(seq=e.seq, kind=e.kind, recorded_at=e.recorded_at, payload=e.payload) for e in rows]
    return LedgerEntriesOut(items=items, next_before=items[-1].seq if len(items) == limit else None)


@router.get("/v1/audit/events", response_model=LedgerEntriesOut, tags=["audit"],
            responses=ex.answers(ex.LEDGER_ENTRIES_OUT))
def get_audit_events(
    client: Auditor, limit: Limit = 50, before: Before = None,
    kind: Annotated[str | None, Query(max_length=48, pattern=NO_NUL)] = None, since: Moment = None,
    until: Moment = None,
    client_id: Annotated[str | None, Query(pattern=HEX32)] = None,
    household_id: Annotated[str | None, Query(pattern=HOUSEHOLD)] = None,
    request_id: Annotated[str | None, Query(pattern=HEX32)] = None,
) -> LedgerEntriesOut:
    """Ledger entries, newest first: every consent decision, fetch, publication and read."""
    aware(since=since, until=until)
    rows = audit.events(kind=kind, since=since, until=until, client_id=client_id, household_ref=household_id,
                        request_id=request_id, before=before, limit=limit)
    audit_read(client, "events", len(rows))
    return _entries(rows, limit)


@router.get("/v1/audit/checkpoint", response_model=CheckpointOut, tags=["audit"], responses=ex.answers(ex.CHECKPOINT_OUT))
def get_audit_checkpoint(client: Auditor) -> CheckpointOut:
    """The ledger's integrity: every entry and signed checkpoint checked, against the latest checkpoint."""
    return CheckpointOut(**audit.integrity())


@router.get("/v1/audit/proof/{seq}", tags=["audit"], responses={
    **ex.answers(ex.PROOF_OUT, description="the entry, its leaf hash and its inclusion proof (RFC 6962) against the "
                 "latest signed checkpoint"),
    **NOT_FOUND, 409: {"model": ErrorOut, "description": "the entry is not covered by a signed checkpoint yet"}})
def get_audit_proof(seq: Annotated[int, PathParam(ge=1, le=MAX_ID)], client: Auditor) -> dict:
    """The inclusion proof of ledger entry ``seq`` against the latest signed checkpoint (RFC 6962)."""
    return ledger_proof(seq)


@router.post("/v1/audit/person-ref", response_model=PersonRefOut, tags=["audit"],
             responses={**BAD_BODY, **ex.answers(ex.PERSON_REF_OUT)}, openapi_extra=ex.body(ex.PERSON_IN))
def post_person_ref(body: PersonIn, client: Auditor) -> PersonRefOut:
    """A person's pseudonym, to look them up (the ID number goes in the body, never in an address)."""
    id_number = body.id_number.strip().upper()  # as intake stores it
    if not valid_id_mask([id_number])[0]:
        raise HTTPException(422, "id_number: not a valid resident ID number (check character)")
    return PersonRefOut(person_ref=keyring().pseudonym(id_number))


@router.get("/v1/audit/persons/{person_ref}/timeline", response_model=LedgerEntriesOut, tags=["audit"],
            responses=ex.answers(ex.LEDGER_ENTRIES_OUT))
def get_timeline(person_ref: Annotated[str, PathParam(pattern=PERSON)], client: Auditor, limit: Limit = 200,
                 before: Before = None) -> LedgerEntriesOut:
    """One person's authorizations, consent decisions, fetches, publications and reads, newest first."""
    rows = audit.timeline(person_ref, before=before, limit=limit)
    audit_read(client, "timeline", len(rows), person_ref=person_ref)
    return _entries(rows, limit)


@router.get("/v1/audit/unusual-reads", response_model=UnusualReadsOut, tags=["audit"],
            responses=ex.answers(ex.UNUSUAL_READS_OUT))
def get_unusual_reads(client: Auditor, since: Moment = None, until: Moment = None) -> UnusualReadsOut:
    """Bulk reads, reads refused for want of an open case, reads outside office hours (default: 7 days)."""
    aware(since=since, until=until)
    found = audit.unusual_reads(since or utcnow() - dt.timedelta(days=7), until)
    return UnusualReadsOut(items=[UnusualReadOut(seq=u.seq, at=u.at, kind=u.kind, client_id=u.client_id,
                                                 department=u.department, household_id=u.household_ref,
                                                 detail=u.detail) for u in found])
