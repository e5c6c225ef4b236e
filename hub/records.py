"""The published household record: built from validated rows, versioned, signed, read per purpose.

Publishing is idempotent and atomic: the record version, its ledger entry and the request's status change
are one transaction, keyed by the request (a request publishes at most one version). Two concurrent
publishes of the same household race on the unique (household_ref, version) key; the loser retries.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections import Counter

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from consent import ledger
from hub.crypto import canonical_json, keyring, sha256_hex, verify_signature
from hub.store import FetchBatch, HouseholdRecord, Request, SourceRow, ValidationRun, aad_record, aad_source_row, session
from schemas.codes import ANSHAN_DIVISIONS, RELATION_CODES, mask_id

RELATION_ORDER = {name: int(code) for name, code in RELATION_CODES.items()}

log = logging.getLogger(__name__)

RECORD_SCHEMA = "hub.household_record/1"


class NotPublished(RuntimeError):
    """Nothing could be published for a request; the reason names no person."""


class RecordNotFound(LookupError):
    pass


def _latest_batches(s, request_id: str, sources: list[str]) -> dict[str, FetchBatch]:
    out = {}
    for source in sources:
        batch = s.scalars(
            select(FetchBatch).where(FetchBatch.request_id == request_id, FetchBatch.source == source)
            .order_by(FetchBatch.fetched_at.desc(), FetchBatch.id.desc()).limit(1)
        ).first()
        if batch is not None:
            out[source] = batch
    return out


def _valid_rows(s, batch: FetchBatch) -> list[dict]:
    keys = keyring()
    rows = s.scalars(select(SourceRow).where(SourceRow.batch_id == batch.id, SourceRow.valid.is_(True))
                     .order_by(SourceRow.row_no)).all()
    return [json.loads(keys.decrypt(r.data_enc, aad=aad_source_row(batch.id, r.row_no))) for r in rows]


def _provenance(s, batch: FetchBatch) -> dict:
    run_id = s.scalars(select(ValidationRun.id).where(ValidationRun.batch_id == batch.id)).first()
    return {"source": batch.source, "batch_id": batch.id, "fetched_at": batch.fetched_at.isoformat(),
            "response_sha256": batch.response_sha256, "validation_run": run_id}


def build_content(request: Request, batches: dict[str, FetchBatch], rows: dict[str, list[dict]], provenance: dict,
                  as_of: dt.datetime) -> tuple[str, dict]:
    """The record (household_ref, content). Raises NotPublished when the household cannot be identified."""
    keys = keyring()
    people = rows.get("household") or []
    if not people:
        raise NotPublished("household registration returned no valid row: the household cannot be identified")
    household_no = Counter(p["household_no"] for p in people).most_common(1)[0][0]
    household_ref = keys.pseudonym(household_no, kind="household")
    division = next((p["address_code"] for p in people if p["relation"] == "head"), people[0]["address_code"])
    members = [
        {
            "person_ref": keys.pseudonym(p["id_number"]),
            "id_number_masked": mask_id(p["id_number"]),
            "name": p["name"],
            "sex": p["sex"],
            "birth_date": p["birth_date"],
            "relation": p["relation"],
            "status": p["status"],
            "provenance": "household",
        }
        for p in sorted(people, key=lambda p: (RELATION_ORDER.get(p["relation"], 99), p["birth_date"], p["id_number"]))
        if p["household_no"] == household_no
    ]
    content = {
        "schema": RECORD_SCHEMA,
        "household_ref": household_ref,
        "request_id": request.id,
        "purpose": request.purpose,
        "as_of": as_of.isoformat(),
        "division": {"code": division, "name": ANSHAN_DIVISIONS.get(division, ("", ""))[0],
                     "area_type": ANSHAN_DIVISIONS.get(division, ("", "unknown"))[1]},
        "members": members,
        "sources": {
            source: {"status": b.status, "reason": b.reason, **provenance[source]} for source, b in batches.items()
        },
    }
    return household_ref, content


def publish_record(request_id: str, *, as_of: dt.datetime) -> int | None:
    """Publish the request's record; return its id, or None when nothing may be published."""
    with session() as s:
        req = s.get(Request, request_id)
        if req is None:
            raise LookupError(f"no request {request_id}")
        existing = s.scalars(select(HouseholdRecord.id).where(HouseholdRecord.request_id == request_id)).first()
        if existing is not None:
            return existing
        batches = _latest_batches(s, request_id, list(req.sources))
        unvalidated = [src for src, b in batches.items() if not b.validated]
        if unvalidated:
            raise NotPublished(f"batches not validated yet: {', '.join(unvalidated)}")
        if not batches or all(b.status == "refused" for b in batches.values()):
            req.status = "refused"
            ledger.append(s, "publish.refused", {"request_id": request_id, "reason": "NO_MEMBER_AUTHORIZED"})
            return None
        rows = {src: _valid_rows(s, b) for src, b in batches.items()}
        provenance = {src: _provenance(s, b) for src, b in batches.items()}
        try:
            household_ref, content = build_content(req, batches, rows, provenance, as_of)
        except NotPublished as exc:
            req.status = "failed"
            ledger.append(s, "publish.failed", {"request_id": request_id, "reason": str(exc)})
            return None

    keys = keyring()
    data = canonical_json(content)
    for _attempt in range(5):
        try:
            with session() as s:
                if (rid := s.scalars(select(HouseholdRecord.id).where(HouseholdRecord.request_id == request_id)).first()):
                    return rid
                version = (s.scalar(select(func.max(HouseholdRecord.version))
                                    .where(HouseholdRecord.household_ref == household_ref)) or 0) + 1
                record = HouseholdRecord(
                    household_ref=household_ref, version=version, request_id=request_id, as_of=as_of,
                    completeness={src: v["status"] for src, v in content["sources"].items()},
                    content_enc=keys.encrypt(data.decode("utf-8"), aad=aad_record(household_ref, version)),
                    content_sha256=sha256_hex(data), signature=keys.sign(data),
                )
                s.add(record)
                s.flush()
                ledger.append(s, "record.published", {"request_id": request_id, "household_ref": household_ref,
                                                       "version": version, "content_sha256": record.content_sha256,
                                                       "completeness": record.completeness})
                req = s.get(Request, request_id)
                req.status, req.household_ref = "published", household_ref
                log.info("published %s version %d", household_ref, version)
                return record.id
        except IntegrityError:
            continue  # a concurrent publish took this version or this request: look again
    raise NotPublished("could not allocate a record version after 5 attempts")


def _decrypt(record: HouseholdRecord) -> dict:
    text = keyring().decrypt(record.content_enc,
                             aad=aad_record(record.household_ref, record.version))
    return json.loads(text)


def verify_record(content: dict, signature: str) -> bool:
    """Check a record's Ed25519 signature with the hub's public key (what a department can do offline)."""
    return verify_signature(keyring().public_key, canonical_json(content), signature)


def load_record(household_ref: str, *, as_of: dt.datetime | None = None) -> tuple[HouseholdRecord, dict]:
    with session() as s:
        q = select(HouseholdRecord).where(HouseholdRecord.household_ref == household_ref)
        if as_of is not None:
            q = q.where(HouseholdRecord.recorded_at <= as_of)
        record = s.scalars(q.order_by(HouseholdRecord.version.desc()).limit(1)).first()
        if record is None:
            raise RecordNotFound(household_ref)
        return record, _decrypt(record)


def record_of_request(request_id: str) -> tuple[HouseholdRecord, dict]:
    """The record version a request published."""
    with session() as s:
        record = s.scalars(select(HouseholdRecord).where(HouseholdRecord.request_id == request_id)).first()
        if record is None:
            raise RecordNotFound(request_id)
        return record, _decrypt(record)
