"""The published household record: unified from validated rows (hub.rules.unify), versioned, bitemporal, signed.

Publishing is idempotent and atomic: the record version, its ledger entry, its outbox notification and the
request's status change are one transaction, keyed by natural keys (a request publishes at most one version; a
household's versions are unique and consecutive). Two concurrent publishes of the same household race on the unique
(household_ref, version) key; the loser retries. A task killed at any moment and run again loses nothing and
duplicates nothing: an uncommitted transaction leaves no trace, a committed one is found by its request.

Bitemporal: ``as_of`` is the moment the facts describe (valid time), ``recorded_at`` the moment the hub published
them (transaction time); both are in the signed content. Rows of ``household_records`` cannot be updated or deleted
(triggers on both backends).
"""

from __future__ import annotations

import datetime as dt
import json
import logging

from sqlalchemy import and_, bindparam, func, or_, select
from sqlalchemy.exc import IntegrityError

from consent import ledger
from core.crypto import canonical_json, keyring, sha256_hex, verify_signature
from core.store import (
    FetchBatch,
    HouseholdRecord,
    Notification,
    Request,
    RequestMember,
    ResidentMessage,
    SourceRow,
    ValidationRun,
    WITHOUT_SHARE,
    aad_member,
    aad_record,
    session,
    utcnow,
)
from hub.stages.rows import row_of
from hub.rules.standards import rules_at
from hub.rules.unify import AUTHORITY, Applicant, material_changes, unify
from schemas.codes import RELATION_CODES

RELATION_ORDER = {name: int(code) for name, code in RELATION_CODES.items()}

log = logging.getLogger(__name__)

# What a stage logs for each of many items (a record published, a validation run) it logs one line each up to this
# many; beyond it, one line for them all, but for each that needs a look (a failed run). In an Airflow task every
# line goes through the task's supervisor to its log file: 25 lines a household took about a third of a re-check
# task's time (10,000 persons, 5 tasks: 208.5 s in all at INFO, 144.8 s at WARNING).
LOG_EACH = 50

RECORD_SCHEMA = "hub.household_record/2"


class NotPublished(RuntimeError):
    """Nothing could be published for a request; the reason names no person."""


class RecordNotFound(LookupError):
    pass


WHOLE = ("rows", "no_records")  # member states (schemas.coverage) a source answered in full for


def _members_left_out(batches: dict[str, FetchBatch], members: list[str],
                      cut: dict[str, set[str]]) -> dict[str, list[dict]]:
    """For each source not complete: the members it left out or cut, with their state (schemas.coverage: refused,
    not_found, unanswered, silent, quarantined), so that the record names whom a source is incomplete for. A member
    whose rows were only partly quarantined (a row failed, another passed: ``cut``, by batch) is "quarantined" too;
    a source the gate allowed nobody for (no member states) left out every member."""
    short = {src: b for src, b in batches.items() if b.status != "complete"}
    out = {}
    for src, b in short.items():
        states = dict(b.members) if b.members else {ref: "refused" for ref in members}
        for ref in cut.get(b.id, set()) & set(members):  # rows about anyone else are no member's gap
            if states.get(ref, "rows") in WHOLE:
                states[ref] = "quarantined"
        out[src] = [{"person_ref": ref, "state": st} for ref, st in sorted(states.items()) if st not in WHOLE]
    return out


def _last_complete(s, req: Request, sources: list[str]) -> dict[str, dict]:
    """For each of ``sources`` (left incomplete or unavailable by this request), the provenance it had in the latest
    earlier record of the same application (the application's own or a re-check's) where it was complete, with that
    record's version: what was last known whole, kept next to what is missing now."""
    if not sources:
        return {}
    root = req.parent_id or req.id
    lineage = select(Request.id).where(or_(Request.id == root, Request.parent_id == root), Request.id != req.id)
    out: dict[str, dict] = {}
    for record in s.scalars(select(HouseholdRecord).where(HouseholdRecord.request_id.in_(lineage))
                            .order_by(HouseholdRecord.recorded_at.desc(), HouseholdRecord.id.desc())):
        wanted = [src for src in sources if src not in out and record.completeness.get(src) == "complete"]
        if not wanted:
            continue
        entries = decrypt_content(record)["sources"]
        for src in wanted:
            entry = entries.get(src, {})
            out[src] = {"record_version": record.version, "recorded_at": record.recorded_at.isoformat(),
                        **{k: entry.get(k) for k in ("batch_id", "fetched_at", "response_sha256", "validation_run")}}
        if len(out) == len(sources):
            break
    return out


def _registries(source: str, rows: dict[str, list[dict]]) -> dict:
    """For other regions' platforms (DCI): which of them answered, by platform code."""
    if source != "remote_registry":
        return {}
    return {"registries": sorted({r["registry"] for r in rows.get(source) or [] if isinstance(r.get("registry"), str)})}


def build_content(request: Request, batches: dict[str, FetchBatch], rows: dict[str, list[dict]], provenance: dict,
                  as_of: dt.datetime, applicants) -> tuple[str, dict]:
    """(household_ref, content without version and recorded_at). Raises NotPublished when the household cannot be
    identified."""
    keys = keyring()
    if not rows.get("household"):
        raise NotPublished("household registration returned no valid row: the household cannot be identified")
    completeness = {src: b.status for src, b in batches.items()}
    try:
        household_no, body = unify(applicants, rows, completeness, as_of, rules_at(as_of.date()), keys.pseudonym)
    except ValueError:
        raise NotPublished("household registration returned none of the members: the household cannot be "
                           "identified") from None
    household_ref = keys.pseudonym(household_no, kind="household")
    body["members"].sort(key=lambda m: (RELATION_ORDER.get(m["relation"], 99), m["birth_date"], m["person_ref"]))
    authority_of: dict[str, list[str]] = {}
    for fact, src in AUTHORITY.items():
        authority_of.setdefault(src, []).append(fact)
    content = {
        "schema": RECORD_SCHEMA,
        "household_ref": household_ref,
        "request_id": request.id,
        "purpose": request.purpose,
        "as_of": as_of.isoformat(),
        **body,
        "sources": {
            source: {"status": b.status, "reason": b.reason, "authoritative_for": sorted(authority_of.get(source, [])),
                     **provenance[source], **_registries(source, rows)} for source, b in batches.items()
        },
    }
    return household_ref, content


class _Read:
    """What publishing needs of many requests, read in a few statements for all of them (a re-check batch's
    households at once): the requests, records published already, each source's latest batch, the checks across
    sources, each batch's valid rows (as this pass has them: hub.stages.rows), validation runs and rows cut, and the
    members."""

    def __init__(self, s, request_ids: list[str]):
        keys = keyring()
        self.requests: dict[str, Request] = {}
        self.existing: dict[str, int] = {}
        self.cross: dict[str, int] = {}
        self.members: dict[str, list[tuple]] = {}
        latest: dict[tuple[str, str], FetchBatch] = {}
        for chunk in _chunks(request_ids):
            self.requests.update((r.id, r) for r in s.scalars(select(Request).where(Request.id.in_(chunk))))
            self.existing.update(s.execute(select(HouseholdRecord.request_id, HouseholdRecord.id)
                                           .where(HouseholdRecord.request_id.in_(chunk))).all())
            for b in s.scalars(select(FetchBatch).where(FetchBatch.request_id.in_(chunk))
                               .options(WITHOUT_SHARE)
                               .order_by(FetchBatch.fetched_at, FetchBatch.id)):
                latest[(b.request_id, b.source)] = b
            self.cross.update(s.execute(select(ValidationRun.request_id, func.max(ValidationRun.id)).where(
                ValidationRun.request_id.in_(chunk), ValidationRun.batch_id.is_(None))
                .group_by(ValidationRun.request_id)).all())
            for m in s.execute(select(RequestMember.request_id, RequestMember.person_ref, RequestMember.id_number_enc,
                                      RequestMember.name_enc).where(RequestMember.request_id.in_(chunk))
                               .order_by(RequestMember.id)):
                self.members.setdefault(m.request_id, []).append(m)
        self.batches: dict[str, dict[str, FetchBatch]] = {}
        for request_id, req in self.requests.items():
            self.batches[request_id] = {src: latest[(request_id, src)] for src in req.sources
                                        if (request_id, src) in latest}
        every = [b for bs in self.batches.values() for b in bs.values()]
        self.rows: dict[str, list[dict]] = {b.id: [] for b in every}
        self.runs: dict[tuple[str, str], int] = {}
        self.cut: dict[str, set[str]] = {}
        short = [b.id for b in every if b.status != "complete"]
        for chunk in _chunks([b.id for b in every]):
            for r in s.execute(select(SourceRow.batch_id, SourceRow.row_no, SourceRow.data_enc).where(
                    SourceRow.batch_id.in_(chunk), SourceRow.valid.is_(True))
                    .order_by(SourceRow.batch_id, SourceRow.row_no)):
                self.rows[r.batch_id].append(row_of(r.batch_id, r.row_no, r.data_enc, keys))
            for batch_id, suite, run_id in s.execute(
                    select(ValidationRun.batch_id, ValidationRun.suite, ValidationRun.id)
                    .where(ValidationRun.batch_id.in_(chunk)).order_by(ValidationRun.id.desc())):
                self.runs[(batch_id, suite)] = run_id  # descending: the first run of each ends up kept
        for chunk in _chunks(short):
            for batch_id, ref in s.execute(select(SourceRow.batch_id, SourceRow.person_ref).where(
                    SourceRow.batch_id.in_(chunk), SourceRow.valid.is_(False)).distinct()):
                if ref:
                    self.cut.setdefault(batch_id, set()).add(ref)

    def applicants(self, request_id: str) -> list[Applicant]:
        keys = keyring()
        return [Applicant(m.person_ref,
                          keys.decrypt(m.id_number_enc, aad=aad_member(request_id, "id_number_enc", m.person_ref)),
                          keys.decrypt(m.name_enc, aad=aad_member(request_id, "name_enc", m.person_ref)))
                for m in self.members.get(request_id, [])]

    def provenance(self, batches: dict[str, FetchBatch], cross_run: int | None) -> dict[str, dict]:
        """Each batch's provenance: when it was fetched, its answers' hash, its validation run and the cross-source
        run."""
        return {src: {"batch_id": b.id, "fetched_at": b.fetched_at.isoformat(), "response_sha256": b.response_sha256,
                      "validation_run": self.runs.get((b.id, f"{b.source}_suite")), "cross_source_run": cross_run}
                for src, b in batches.items()}


def _chunks(items: list, size: int = 500):
    for start in range(0, len(items), size):
        yield items[start: start + size]


def prepare(request_id: str, as_of: dt.datetime) -> tuple[str, dict] | int | None:
    """What publishing a request needs: (household_ref, content), or the id of the record it already published,
    or None when nothing may be published (the reason is stored and logged)."""
    found = prepare_many([(request_id, as_of)])[request_id]
    if isinstance(found, Exception):
        raise found
    return found


def prepare_many(items: list[tuple[str, dt.datetime]]) -> dict[str, tuple[str, dict] | int | None | Exception]:
    """``prepare`` for many requests (request id, as_of) in one transaction, what they need read for all at once
    (``_Read``); request id -> what ``prepare`` returns, or the exception it raises."""
    out: dict[str, tuple[str, dict] | int | None | Exception] = {}
    with session() as s:
        read = _Read(s, list(dict.fromkeys(r for r, _ in items)))
        for request_id, as_of in items:
            try:
                out[request_id] = _prepare(s, read, request_id, as_of)
            except Exception as exc:  # this household's: the others are prepared all the same
                out[request_id] = exc
    return out


def _prepare(s, read: _Read, request_id: str, as_of: dt.datetime) -> tuple[str, dict] | int | None:
    req = read.requests.get(request_id)
    if req is None:
        raise LookupError(f"no request {request_id}")
    if request_id in read.existing:
        return read.existing[request_id]
    batches = read.batches[request_id]
    unvalidated = [src for src, b in batches.items() if not b.validated]
    if unvalidated:
        raise NotPublished(f"batches not validated yet: {', '.join(unvalidated)}")
    if not batches or all(b.status == "refused" for b in batches.values()):
        req.status = "refused"
        ledger.append(s, "publish.refused", {"request_id": request_id, "reason": "NO_MEMBER_AUTHORIZED"})
        return None
    rows = {src: read.rows[b.id] for src, b in batches.items()}
    provenance = read.provenance(batches, read.cross.get(request_id))
    missing = [src for src, b in batches.items() if b.status in ("incomplete", "unavailable")]
    for src, last in _last_complete(s, req, missing).items():
        provenance[src]["last_complete"] = last
    members = [m.person_ref for m in read.members.get(request_id, [])]
    for src, left_out in _members_left_out(batches, members, read.cut).items():
        provenance[src]["members"] = left_out
    try:
        return build_content(req, batches, rows, provenance, as_of, read.applicants(request_id))
    except NotPublished as exc:
        req.status = "failed"
        ledger.append(s, "publish.failed", {"request_id": request_id, "reason": str(exc)})
        return None


def _as_of(as_of: dt.datetime) -> dt.datetime:
    """``as_of`` as the record keeps it: an aware moment (the caller's: a DAG run's logical date, the inline runner's
    clock), in UTC, as a plain datetime (Airflow hands over pendulum's)."""
    if as_of.tzinfo is None or as_of.utcoffset() is None:
        raise ValueError("as_of must be timezone-aware")
    return dt.datetime.fromisoformat(as_of.astimezone(dt.timezone.utc).isoformat())


def publish_record(request_id: str, *, as_of: dt.datetime) -> int | None:
    """Publish the request's record, describing the household at ``as_of`` (valid time: the caller's moment, a
    DAG run's logical date; the stage never takes it from the clock); return its id, or None when nothing may be
    published."""
    as_of = _as_of(as_of)
    prepared = prepare(request_id, as_of)
    if prepared is None or isinstance(prepared, int):
        return prepared
    household_ref, base = prepared
    return store_record(request_id, household_ref, base, as_of)


def _sealed(keys, data: bytes, household_ref: str, version: int) -> str:
    """A record's canonical JSON (UTF-8) encrypted for the store, compressed (about 28 KB -> 5 KB: a province's
    records were most of its store); ``decrypt`` reads it back as text."""
    return keys.encrypt_bytes(data, aad=aad_record(household_ref, version))


def store_record(request_id: str, household_ref: str, base: dict, as_of: dt.datetime) -> int:
    """Give the content its version, sign it, and store it with its ledger entry and its outbox notification, in
    one transaction; return the record id (the existing one when the request has published already)."""
    keys = keyring()
    for _attempt in range(5):
        try:
            with session() as s:
                if (rid := s.scalars(select(HouseholdRecord.id).where(HouseholdRecord.request_id == request_id)).first()):
                    return rid
                previous = s.scalars(select(HouseholdRecord).where(HouseholdRecord.household_ref == household_ref)
                                     .order_by(HouseholdRecord.version.desc()).limit(1)).first()
                version = (previous.version if previous else 0) + 1
                recorded_at = utcnow()  # transaction time: when the hub publishes, by definition the clock's
                content = {**base, "version": version, "recorded_at": recorded_at.isoformat()}
                data = canonical_json(content)
                record = HouseholdRecord(
                    household_ref=household_ref, version=version, request_id=request_id, as_of=as_of,
                    recorded_at=recorded_at, completeness={src: v["status"] for src, v in content["sources"].items()},
                    content_enc=_sealed(keys, data, household_ref, version),
                    content_sha256=sha256_hex(data), signature=keys.sign(data),
                )
                s.add(record)
                s.flush()
                changes = material_changes(decrypt_content(previous) if previous else None, content)
                kinds = sorted({c["field"] for c in changes})
                s.add(Notification(household_ref=household_ref, record_id=record.id, version=version,
                                   kind="record.changed" if previous else "record.published",
                                   idempotency_key=f"{household_ref}:{version}",
                                   payload={"household_ref": household_ref, "version": version,
                                            "previous_version": previous.version if previous else None,
                                            "changed": kinds}))
                ledger.append(s, "record.published", {"request_id": request_id, "household_ref": household_ref,
                                                       "version": version, "content_sha256": record.content_sha256,
                                                       "completeness": record.completeness, "changed": kinds})
                req = s.get(Request, request_id)
                req.status, req.household_ref = "published", household_ref
                if req.kind == "application":  # its members read it on /m/: a message each, in the same transaction
                    s.add_all(ResidentMessage(person_ref=ref, kind="result.published", request_id=request_id,
                                              params={"department": req.department, "purpose": req.purpose},
                                              created_at=recorded_at)
                              for ref in s.scalars(select(RequestMember.person_ref)
                                                   .where(RequestMember.request_id == request_id)))
                log.info("published %s version %d (%d material changes)", household_ref, version, len(changes))
                return record.id
        except IntegrityError:
            continue  # a concurrent publish took this version or this request: look again
    raise NotPublished("could not allocate a record version after 5 attempts")


def publish_records(items: list[tuple[str, dt.datetime]],
                    failed: dict[str, str] | None = None) -> dict[str, int | None]:
    """``publish_record`` for many requests (request id, as_of): each prepared as alone, then every record stored
    together (``store_records``); request id -> record id, or None when nothing may be published. A request that
    cannot be prepared raises, as alone; with ``failed``, it is left out and named there instead (with its error's
    class), and the others are published."""
    out: dict[str, int | None] = {}
    ready = []
    items = [(request_id, _as_of(as_of)) for request_id, as_of in items]
    prepared_of = prepare_many(items)
    for request_id, as_of in items:
        prepared = prepared_of[request_id]
        if isinstance(prepared, Exception):
            if failed is None:
                raise prepared
            failed[request_id] = prepared.__class__.__name__
            continue
        if prepared is None or isinstance(prepared, int):
            out[request_id] = prepared
        else:
            ready.append((request_id, *prepared, as_of))
    out.update(store_records(ready))
    return out


def store_records(items: list[tuple[str, str, dict, dt.datetime]]) -> dict[str, int]:
    """``store_record`` for many requests (request id, household_ref, content, as_of) in one transaction, with
    multi-row statements (Core) for the records, their outbox notifications, their ledger entries and the requests:
    each record still its own version of its household, signed, keyed by its request (a request published already
    keeps its record). If a concurrent publish takes a version or a request meanwhile, nothing of the group is kept
    and each is stored on its own (``store_record``). Returns request id -> record id."""
    if not items:
        return {}
    keys = keyring()
    table, notes, reqs = HouseholdRecord.__table__, Notification.__table__, Request.__table__
    request_ids = [i[0] for i in items]
    refs = list({i[1] for i in items})
    try:
        with session() as s:
            out = dict(s.execute(select(table.c.request_id, table.c.id).where(table.c.request_id.in_(request_ids))
                                 ).all())
            latest: dict[str, HouseholdRecord] = {}
            newest = (select(HouseholdRecord.household_ref, func.max(HouseholdRecord.version).label("v"))
                      .where(HouseholdRecord.household_ref.in_(refs)).group_by(HouseholdRecord.household_ref)
                      .subquery())
            for previous in s.scalars(select(HouseholdRecord).join(newest, and_(
                    HouseholdRecord.household_ref == newest.c.household_ref, HouseholdRecord.version == newest.c.v))):
                latest[previous.household_ref] = previous
            previous_content = {ref: decrypt_content(r) for ref, r in latest.items()}
            records, made = [], []
            recorded_at = utcnow()  # transaction time: when the hub publishes, by definition the clock's
            for request_id, household_ref, base, as_of in items:
                if request_id in out:
                    continue
                prior = latest.get(household_ref)
                version = (prior.version if prior else 0) + 1
                content = {**base, "version": version, "recorded_at": recorded_at.isoformat()}
                data = canonical_json(content)
                values = {"household_ref": household_ref, "version": version, "request_id": request_id,
                          "as_of": as_of, "recorded_at": recorded_at,
                          "completeness": {src: v["status"] for src, v in content["sources"].items()},
                          "content_enc": _sealed(keys, data, household_ref, version),
                          "content_sha256": sha256_hex(data), "signature": keys.sign(data)}
                records.append(values)
                changes = material_changes(previous_content.get(household_ref), content)
                made.append((values, prior.version if prior else None, sorted({c["field"] for c in changes})))
                # a second request of the same household in this group follows this version
                latest[household_ref] = HouseholdRecord(household_ref=household_ref, version=version)
                previous_content[household_ref] = content
            if not records:
                return out
            s.execute(table.insert(), records)
            ids = {(ref, v): rid for rid, ref, v in s.execute(
                select(table.c.id, table.c.household_ref, table.c.version).where(
                    table.c.request_id.in_([r["request_id"] for r in records])))}
            s.execute(notes.insert(), [
                {"household_ref": v["household_ref"], "record_id": ids[(v["household_ref"], v["version"])],
                 "version": v["version"], "kind": "record.changed" if before else "record.published",
                 "idempotency_key": f"{v['household_ref']}:{v['version']}", "created_at": recorded_at,
                 "payload": {"household_ref": v["household_ref"], "version": v["version"],
                             "previous_version": before, "changed": kinds}} for v, before, kinds in made])
            ledger.append_many(s, [("record.published", {
                "request_id": v["request_id"], "household_ref": v["household_ref"], "version": v["version"],
                "content_sha256": v["content_sha256"], "completeness": v["completeness"], "changed": kinds})
                for v, _, kinds in made])
            s.execute(reqs.update().where(reqs.c.id == bindparam("rid")).values(
                status="published", household_ref=bindparam("ref")),
                [{"rid": v["request_id"], "ref": v["household_ref"]} for v in records])
            for v, _, _ in made:
                out[v["request_id"]] = ids[(v["household_ref"], v["version"])]
            if len(made) <= LOG_EACH:
                for v, _, kinds in made:
                    log.info("published %s version %d (%d material changes)", v["household_ref"], v["version"],
                             len(kinds))
            else:
                log.info("published %d records: %d first versions, %d with material changes", len(made),
                         sum(before is None for _, before, _ in made), sum(bool(kinds) for *_, kinds in made))
            return out
    except IntegrityError:  # a concurrent publish took a version or a request: each on its own, as alone
        return {request_id: store_record(request_id, ref, base, as_of) for request_id, ref, base, as_of in items}


def decrypt_content(record: HouseholdRecord) -> dict:
    text = keyring().decrypt(record.content_enc,
                             aad=aad_record(record.household_ref, record.version))
    return json.loads(text)


def verify_record(content: dict, signature: str, public_key=None) -> bool:
    """Check a record's Ed25519 signature (what a department can do offline with the hub's public key)."""
    return verify_signature(public_key or keyring().public_key, canonical_json(content), signature)


def load_record(household_ref: str, *, as_of: dt.datetime | None = None,
                valid_at: dt.datetime | None = None, s=None) -> tuple[HouseholdRecord, dict]:
    """The household's record as the hub had published it at ``as_of`` (transaction time; default now), and among
    those, the latest describing the household no later than ``valid_at`` (valid time; default any). Inside the
    caller's transaction ``s`` when given."""
    if s is None:
        with session() as own:
            return load_record(household_ref, as_of=as_of, valid_at=valid_at, s=own)
    record = s.scalars(record_query(household_ref, as_of=as_of, valid_at=valid_at)).first()
    if record is None:
        raise RecordNotFound(household_ref)
    return record, decrypt_content(record)


def record_query(household_ref, *columns, as_of=None, valid_at=None):
    """SELECT the record ``load_record`` reads (or only its ``columns``): the latest published at ``as_of``, among
    those the latest describing the household by ``valid_at``. Each argument is a value or a bind parameter (a
    statement built once and run with other values)."""
    q = select(*(columns or (HouseholdRecord,))).where(HouseholdRecord.household_ref == household_ref)
    if as_of is not None:
        q = q.where(HouseholdRecord.recorded_at <= as_of)
    if valid_at is not None:
        q = q.where(HouseholdRecord.as_of <= valid_at)
    order = (HouseholdRecord.as_of.desc(), HouseholdRecord.version.desc()) if valid_at is not None else (
        HouseholdRecord.version.desc(),)
    return q.order_by(*order).limit(1)


def record_of_request(request_id: str) -> tuple[HouseholdRecord, dict]:
    """The record version a request published."""
    with session() as s:
        record = s.scalars(select(HouseholdRecord).where(HouseholdRecord.request_id == request_id)).first()
        if record is None:
            raise RecordNotFound(request_id)
        return record, decrypt_content(record)
