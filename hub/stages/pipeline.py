"""The pipeline's stages, plain functions over the store.

Two drivers call them: the ``verify_household`` DAG (each stage a task, fetch mapped per source) and
``run_inline`` (``hub verify --sync``, tests, benchmarks). Stages pass ids, never personal data.

    start_request -> fetch_source (per source; the consent gate decides per member) -> validate_batch
                  -> cross_check (across the sources) -> publish_record (hub.stages.records)
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import functools
import hashlib
import json
import logging
import threading
import urllib.parse
import uuid
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from connectors.base import Exchanged, Person
from connectors.signing import KEY_ID, BadSignature, count_mismatches, trusted_keys, verify_answer
from connectors.wire import BadAnswer, parse_answer
from consent import ledger
from consent.authorizations import views_many, watermark
from consent.decisions import Asker, ConsentWatch, DecisionBatch
from consent.gate import Allow
from core.crypto import json_encoder, keyring
from core.ids import ordered_id
from core.settings import settings
from core.store import (
    ExchangeAnswer,
    FetchBatch,
    QuarantinedRow,
    RawResponse,
    Request,
    RequestMember,
    SourceRow,
    ValidationRun,
    WITHOUT_SHARE,
    aad_exchange_answer,
    aad_exchange_signature,
    aad_member,
    aad_raw_response,
    aad_raw_signature,
    aad_source_row,
    session,
    store_validation_texts,
    utcnow,
)
from hub.airflow.alerts import alert_on_failure
from hub.federation import sources
from hub.stages import rows as one_pass_rows
from hub.stages.records import LOG_EACH, publish_record
from schemas.codes import birth_date_from_id, valid_id_mask
from schemas.contracts import SPECS, from_wire
from schemas.coverage import state
from schemas.cross import fact_date
from schemas.docs import pack
from schemas.parallel import Job, validate_all
from schemas.suite import validate

log = logging.getLogger(__name__)
_row_text = json_encoder()  # a row's text as json.dumps(row, ensure_ascii=False) writes it


class RequestNotFound(LookupError):
    pass


class AwaitingSignatures(RuntimeError):
    """The request waits for its members to sign on their phones (status ``signing``, hub.stages.signing): there is
    no authorization yet, so nothing may be asked; it is released to verification when every member has answered."""


def _not_signing(reqs) -> None:
    waiting = [r.id for r in reqs if r.status == "signing"]
    if waiting:
        raise AwaitingSignatures(f"request {waiting[0]} waits for its members' signatures")


WITHDRAWN = "withdrawn"  # a member's outcome when consent was withdrawn before or during a call
CONSENT_WITHDRAWN = ("consent_withdrawn",
                     "该成员在查询过程中撤回了授权，其数据不予使用 / the member withdrew consent while the agency was "
                     "being asked: their data is not used")


def _request(s, request_id: str) -> Request:
    req = s.get(Request, request_id)
    if req is None:
        raise RequestNotFound(f"no request {request_id}")
    return req


def start_request(request_id: str) -> list[str]:
    """Mark the request running; return the sources to fetch (AwaitingSignatures while members are to sign)."""
    with session() as s:
        req = _request(s, request_id)
        _not_signing([req])
        if req.status in ("received", "failed", "refused"):
            req.status = "running"
        return list(req.sources)


def _batch_id(request_id: str, source: str, after: str | None = None) -> str:
    """The id of the batch of a request's source that follows batch ``after`` (None: the source's first). Derived,
    not drawn: two attempts at the same fetch (a retried task beside the attempt it replaces) make the same id, and
    the store keeps one of them (``_store``). It begins with the request's id, so a request's batches (and their rows,
    runs and flags) sit together in every index keyed by batch id, and those of re-checks started together (ids that
    begin with the time, ``hub.stages.reverify.start_rechecks``) at the end of it."""
    return request_id[:16] + uuid.uuid5(uuid.NAMESPACE_URL, f"hub:batch:{request_id}:{source}:{after or ''}").hex[16:]


def _asked(batch: FetchBatch) -> set[str]:
    """The members a stored batch asked its agency about (person_refs): the fetch's outcomes before validation, the
    members' states after (schemas.coverage), less those the gate refused or who withdrew during the call."""
    return {ref for ref, outcome in (batch.members or {}).items() if outcome not in (WITHDRAWN, "refused")}


def _skipped(batch_id: str, request_id: str, source: str, refused: int) -> tuple[dict, tuple[str, dict]]:
    """The batch of a source for which the gate allowed nobody (nothing is fetched), and its ledger entry."""
    return ({"id": batch_id, "request_id": request_id, "source": source, "status": "refused",
             "reason": "NO_MEMBER_AUTHORIZED", "requested": 0, "refused": refused, "returned": 0, "validated": True},
            ("fetch.skipped", {"request_id": request_id, "batch_id": batch_id, "source": source,
                               "reason": "NO_MEMBER_AUTHORIZED", "refused": refused}))


@dataclass
class _Shared:
    """A batch exchange's raw answers as the store keeps them (once, for every batch that took rows from them),
    and its ledger entry."""

    id: str
    answers: list[dict]
    hashes: list[str]
    entry: tuple[str, dict]


@dataclass
class _Call:
    """One agency fetch the gate allowed: the batch it makes, who asks, and the members asked for."""

    batch_id: str
    asker: Asker
    source: str
    allows: list[Allow]
    refused: int  # members the gate refused
    ids: dict[str, str]  # person_ref -> ID number of the allowed members (never logged)
    exchange: _Shared | None = None  # asked in this batch exchange, with other households
    exchange_refs: list[str] | None = None  # the references its members were sent with there
    excluded: list[str] | None = None  # pseudonyms of the exchange's persons whose rows it left out
    exchange_used: int = 0  # the exchange's answers whose rows were taken (the first ones)

    def persons(self) -> list[Person]:
        """The members as a batch exchange names them: each with the reference of their own authorization (the
        authorization's id and the member's pseudonym, so no two persons of an exchange share one)."""
        return [Person(a, self.ids[a.person_ref], f"{a.authorization_id}:{a.person_ref[:12]}") for a in self.allows]


@dataclass
class _Stored:
    """What one fetch puts in the store: the batch, its raw answers, its rows and its ledger entry."""

    batch: dict
    raws: list[dict]
    rows: list[dict]
    entry: tuple[str, dict]
    shared: _Shared | None = None


def _shared(exchange_id: str, ex: Exchanged, calls: list[_Call], keys) -> _Shared:
    """A batch exchange's raw answers encrypted for the store, and its ``fetch.exchanged`` entry."""
    answers, hashes = [], []
    now = utcnow()
    for seq, (raw, signature) in enumerate(zip(ex.raw, ex.signatures)):
        hashes.append(hashlib.sha256(raw).hexdigest())
        answers.append({"exchange_id": exchange_id, "seq": seq, "source": ex.source, "sha256": hashes[-1],
                        "fetched_at": now,
                        "body_enc": keys.encrypt_bytes(raw, aad=aad_exchange_answer(exchange_id, seq)),
                        "signature_enc": None if signature is None else keys.encrypt(
                            json.dumps(signature), aad=aad_exchange_signature(exchange_id, seq))})
    outcomes: dict[str, int] = {}
    for outcome in ex.outcome.values():
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return _Shared(exchange_id, answers, hashes, ("fetch.exchanged", {
        "exchange_id": exchange_id, "source": ex.source, "batches": [c.batch_id for c in calls],
        "persons": len(ex.outcome), "outcomes": dict(sorted(outcomes.items())), "failure": ex.failure,
        "calls": ex.calls, "response_sha256": ex.response_sha256, "response_hashes": hashes}))


def _stored(call: _Call, result, keys, withdrawn: set[str] = frozenset()) -> _Stored:
    """Encrypt one fetch's answers and rows for the store. A member whose consent was withdrawn before a call
    (``result.withdrawn``) or while it was in flight (``withdrawn``, person_refs) is ``withdrawn``: not asked, the
    source incomplete for them, any row naming them quarantined by validation (kept out of the record)."""
    batch_id, request_id, source, ids = call.batch_id, call.asker.request_id, call.source, call.ids
    refused = call.refused
    status, reason = result.status, result.reason
    withdrawn = {ref for ref, idn in ids.items() if ref in withdrawn or idn in result.withdrawn}
    if withdrawn and len(withdrawn) == len(ids) and status == "complete":
        status, reason = "refused", "CONSENT_WITHDRAWN"
    elif withdrawn and status == "complete":
        status, reason = "incomplete", "CONSENT_WITHDRAWN"
    elif refused and status == "complete":
        status, reason = "incomplete", "MEMBERS_NOT_AUTHORIZED"
    refused += len(withdrawn)
    outcomes = {ref: WITHDRAWN if ref in withdrawn else "not_found" if idn in result.not_found
                else "unanswered" if idn in result.unanswered else "answered" for ref, idn in ids.items()}
    raws, hashes = [], []
    signatures = result.signatures or [None] * len(result.raw)
    for i, (raw, signature) in enumerate(zip(result.raw, signatures)):
        hashes.append(hashlib.sha256(raw).hexdigest())
        raws.append({"batch_id": batch_id, "seq": i, "sha256": hashes[-1],
                     "body_enc": keys.encrypt_bytes(raw, aad=aad_raw_response(batch_id, i)),
                     "signature_enc": None if signature is None else keys.encrypt(
                         json.dumps(signature), aad=aad_raw_signature(batch_id, i))})
    rows = []
    for i, row in enumerate(result.rows):
        idn = row.get("id_number")
        text = _row_text(row)
        # in a re-check's pass validation reads it here, neither decrypted nor parsed again (a row from the wire is
        # plain JSON values: the same as its text read back)
        one_pass_rows.keep(batch_id, i, row)
        rows.append({"batch_id": batch_id, "row_no": i,
                     "person_ref": keys.pseudonym(idn) if isinstance(idn, str) else None,
                     "data_enc": keys.encrypt(text, aad=aad_source_row(batch_id, i))})
    requested = result.requested - sum(1 for ref in withdrawn if ids[ref] not in result.withdrawn)
    batch = {"id": batch_id, "request_id": request_id, "source": source, "status": status, "reason": reason,
             "requested": requested, "refused": refused, "returned": len(result.rows),
             "response_sha256": result.response_sha256, "members": outcomes, "fetched_at": utcnow(),
             "validated": False}
    shared = call.exchange
    if shared is not None:  # its answers are the exchange's: the same hashes, kept once
        hashes = shared.hashes
        batch.update(exchange_id=shared.id, exchange={"refs": call.exchange_refs, "excluded": call.excluded,
                                                      "answers": call.exchange_used})
    entry = ("fetch.completed", {"request_id": request_id, "batch_id": batch_id, "source": source,
                                 "status": status, "reason": reason, "requested": requested,
                                 "returned": len(result.rows), "response_sha256": result.response_sha256,
                                 "response_hashes": hashes, "calls": result.calls,
                                 **({"exchange_id": shared.id} if shared is not None else {}),
                                 **({"withdrawn": sorted(withdrawn)} if withdrawn else {})})
    return _Stored(batch, raws, rows, entry, shared)


def _insert_stored(s, stored: list[_Stored], skipped: list[tuple[dict, tuple[str, dict]]] = ()) -> None:
    """Every batch, raw answer, row and ledger entry of ``stored`` and ``skipped`` in the caller's transaction,
    one statement per table."""
    batches = [b for b, _ in skipped] + [x.batch for x in stored]
    if batches:
        s.execute(FetchBatch.__table__.insert(), [{"fetched_at": utcnow(), "validated": False, "members": None,
                                                   "reason": None, "response_sha256": None, "exchange_id": None,
                                                   "exchange": None, **b} for b in batches])
    shared = list({x.shared.id: x.shared for x in stored if x.shared is not None}.values())
    answers = [a for sh in shared for a in sh.answers]
    if answers:
        s.execute(ExchangeAnswer.__table__.insert(), answers)
    raws = [r for x in stored for r in x.raws]
    if raws:
        s.execute(RawResponse.__table__.insert(), raws)
    rows = [r for x in stored for r in x.rows]
    if rows:
        s.execute(SourceRow.__table__.insert(), rows)
    ledger.append_many(s, [e for _, e in skipped] + [sh.entry for sh in shared] + [x.entry for x in stored])


def _taken(batch_ids: list[str]) -> set[str]:
    """Which of ``batch_ids`` are in the store already."""
    taken: set[str] = set()
    with session() as s:
        for start in range(0, len(batch_ids), 500):
            taken.update(s.scalars(select(FetchBatch.id).where(FetchBatch.id.in_(batch_ids[start: start + 500]))))
    return taken


def _store(done: list[tuple[_Call, object, _Stored]], skipped: list[tuple[dict, tuple[str, dict]]],
           watch: ConsentWatch, keys) -> None:
    """Store fetched batches in one transaction: ``skipped`` (the gate allowed nobody) and the answers of ``done``
    (call, result, what to store), the gate asked again first for the members of calls during which consent was
    withdrawn (their answers are then kept out of the record). A batch that a concurrent attempt at the same fetch
    stored first has our batch's (derived) id: it is kept, ours dropped, and the others stored without it."""
    while done or skipped:
        try:
            with session() as s:
                if done and watermark(s) > watch.mark:  # consent withdrawn since the decisions: during a call?
                    again = []
                    for call, result, stored in done:
                        gone = watch.withdrawn(s, call.asker, call.allows)
                        again.append((call, result, _stored(call, result, keys, gone) if gone else stored))
                    done = again
                _insert_stored(s, [x for _, _, x in done], skipped)
            return
        except IntegrityError:
            taken = _taken([call.batch_id for call, _, _ in done] + [b["id"] for b, _ in skipped])
            if not taken:
                raise
            done = [d for d in done if d[0].batch_id not in taken]
            skipped = [x for x in skipped if x[0]["id"] not in taken]


class Fetched(NamedTuple):
    """The batch of one (request, source): its id, and whether it is validated already."""

    batch_id: str
    validated: bool


def fetch_batches(wanted: list[tuple[str, str]], *, workers: int = 12, base_urls: dict[str, str] | None = None,
                  secrets: dict[str, str] | None = None, exchange: bool = False) -> dict[tuple[str, str], Fetched]:
    """The batch of each (request id, source) of ``wanted``: the one fetch stage both drivers call (the DAG's
    ``fetch_source``, one source a task; ``fetch_many`` for the inline runner and the re-checks).

    The gate decides for every member of the request, for the source, now (each decision recorded and logged); only
    allowed members are asked for, each source's agency calls made concurrently (``workers`` at a time) and the
    store's work done in a few statements per chunk of calls.

    Idempotent, per (request, source): one that has a batch already keeps it when the gate allows now the very
    members that batch asked about, so a retried task or a resumed run finds its batch again, asks no agency twice
    and stores nothing twice. Only when consent changed since (withdrawn or expired for a member it asked about,
    valid now for one it could not ask) is a new batch made, with what the gate allows now, superseding the old one
    (a source's latest batch is the one validated and published).
    A batch is stored whole (answers, rows, ledger entry) in one transaction: a task killed before that leaves
    nothing and its retry fetches again; two attempts at once make the same batch id and the store keeps one.

    ``base_urls`` and ``secrets`` are agencies' addresses and credentials by source (from the Airflow connection
    ``agency_<key>`` in a DAG); where missing, the agencies' index at HUB_AGENCIES_URL is asked and the credential
    comes from HUB_HOME. A request that cannot be fetched (it no longer exists) raises before anything is asked."""
    keys = keyring()
    moment = utcnow()  # consent is decided at the moment of the fetch, never at a run's logical date
    wanted = list(dict.fromkeys(wanted))
    request_ids = list(dict.fromkeys(request_id for request_id, _ in wanted))
    out: dict[tuple[str, str], Fetched] = {}
    calls: list[_Call] = []
    skipped = []
    with session() as s:
        watch = ConsentWatch(watermark(s))
        reqs = {r.id: r for r in s.scalars(select(Request).where(Request.id.in_(request_ids)))}
        missing = [r for r in request_ids if r not in reqs]
        if missing:
            raise RequestNotFound(f"no request {missing[0]}")
        _not_signing(reqs.values())  # no call for a request whose members have not all answered
        members: dict[str, list[RequestMember]] = {}
        for m in s.scalars(select(RequestMember).where(RequestMember.request_id.in_(request_ids))
                           .order_by(RequestMember.id)):
            members.setdefault(m.request_id, []).append(m)
        latest: dict[tuple[str, str], FetchBatch] = {}
        for b in s.scalars(select(FetchBatch).where(FetchBatch.request_id.in_(request_ids))
                           .order_by(FetchBatch.fetched_at, FetchBatch.id)):
            latest[(b.request_id, b.source)] = b
        decisions = DecisionBatch(s, moment)  # recorded together below
        auths = views_many(s, request_ids)  # every request's authorizations in a few reads
        id_numbers: dict[str, dict[str, str]] = {}
        for request_id, source in wanted:
            req = reqs[request_id]
            decided = decisions.ask(Asker.of(req), [m.person_ref for m in members.get(request_id, [])], source,
                                    authorizations=auths[request_id])
            allows, refused = decided.allows, len(decided.refusals)
            allowed = {a.person_ref for a in allows}
            b = latest.get((request_id, source))
            if b is not None and _asked(b) == allowed:  # fetched already, consent unchanged: the same batch
                out[(request_id, source)] = Fetched(b.id, b.validated)
                continue
            batch_id = _batch_id(request_id, source, b.id if b is not None else None)
            out[(request_id, source)] = Fetched(batch_id, not allows)
            if not allows:
                skipped.append(_skipped(batch_id, request_id, source, refused))
                continue
            if request_id not in id_numbers:
                id_numbers[request_id] = {m.person_ref: keys.decrypt(m.id_number_enc, aad=aad_member(
                    request_id, "id_number_enc", m.person_ref)) for m in members.get(request_id, [])}
            calls.append(_Call(batch_id, Asker.of(req), source, allows, refused,
                               {ref: idn for ref, idn in id_numbers[request_id].items() if ref in allowed}))
        decisions.record()
    _store([], skipped, watch, keys)

    local = threading.local()

    def connector(source: str):
        conns = local.__dict__.setdefault("connectors", {})
        if source not in conns:
            base = (base_urls or {}).get(source) or sources.base_url(source, settings().agencies_url)
            conns[source] = sources.connector(source, base, (secrets or {}).get(source))
        return conns[source]

    def call(c: _Call) -> list[tuple[_Call, object, _Stored]]:
        result = connector(c.source).fetch(c.allows, c.ids, auth_ref=c.asker.request_id,
                                           still_allowed=functools.partial(watch.still_allowed, c.asker))
        return [(c, result, _stored(c, result, keys))]

    def exchanged(unit: list[_Call]) -> list[tuple[_Call, object, _Stored]]:
        """One batch exchange for the calls of ``unit`` (one source), its answer split back per call."""
        if unit[0].exchange_refs is None:  # not for an exchange: a call of its own
            return call(unit[0])
        persons = {c.batch_id: c.persons() for c in unit}
        owner = {p.ref: c for c in unit for p in persons[c.batch_id]}

        def still(group: list[Person]) -> list[Person]:  # the gate asked again, per household, if consent moved
            if not watch.changed():
                return group
            kept: list[Person] = []
            for c in unit:
                mine = [p for p in group if owner[p.ref] is c]
                held = {a.person_ref for a in watch.still_allowed(c.asker, [p.allow for p in mine], changed=True)
                        } if mine else ()
                kept += [p for p in mine if p.allow.person_ref in held]
            return kept

        ex = connector(unit[0].source).exchange([p for c in unit for p in persons[c.batch_id]], still_allowed=still)
        shared = _shared(ordered_id(), ex, unit, keys)
        excluded = sorted(keys.pseudonym(i) for i in ex.why)
        out = []
        for c in unit:
            c.exchange, c.exchange_refs, c.excluded = shared, [p.ref for p in persons[c.batch_id]], excluded
            c.exchange_used = ex.used
            result = ex.result_for(persons[c.batch_id])
            out.append((c, result, _stored(c, result, keys)))
        return out

    units = _exchanges(calls) if exchange else [[c] for c in calls]
    chunk = max(1, workers * 16)
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(workers, len(units)))) as pool:
        for start in range(0, len(units), chunk):
            done = [d for ds in pool.map(exchanged, units[start: start + chunk]) for d in ds]
            _store(done, [], watch, keys)
            for c, result, _ in done:
                log.debug("source %s: batch %s %s, %d rows", c.source, c.batch_id, result.status, len(result.rows))
    log.info("fetched %d sources: %d batches found again, %d refused by the gate, %d fetched in %d agency exchanges",
             len(wanted), len(wanted) - len(skipped) - len(calls), len(skipped), len(calls), len(units))
    return out


def _exchanges(calls: list[_Call]) -> list[list[_Call]]:
    """The calls packed into batch exchanges: per agency, households in order, as many as the agency's batch limit
    of persons allows, a household never split across two, and no ID number or reference twice in one. A source
    that is no agency of the contracts (a federated registry), or a household larger than the limit, is asked on
    its own."""
    out: list[list[_Call]] = []
    open_: dict[str, tuple[list[_Call], set[str], int]] = {}  # per source: calls, their IDs and references, persons
    for c in calls:
        spec = SPECS.get(c.source)
        persons = c.persons()
        if spec is None or len(persons) > spec.max_batch:
            out.append([c])
            continue
        unit, seen, n = open_.get(c.source, ([], set(), 0))
        names = {p.id_number for p in persons} | {p.ref for p in persons}
        if unit and (n + len(persons) > spec.max_batch or names & seen):
            out.append(unit)
            unit, seen, n = [], set(), 0
        c.exchange_refs = [p.ref for p in persons]  # to be asked in an exchange
        open_[c.source] = (unit + [c], seen | names, n + len(persons))
    out += [unit for unit, _, _ in open_.values() if unit]
    return out


def fetch_source(request_id: str, source: str, *, base_url: str | None = None, secret: str | None = None) -> str:
    """The DAG's fetch task: the batch of one source of the request (``fetch_batches``: fetched once, found again by
    a retried task); returns its id.

    ``base_url`` and ``secret`` are the agency's address and credential (from the Airflow connection
    ``agency_<key>`` in a DAG); without them the agencies' index at HUB_AGENCIES_URL is asked and the
    credential comes from HUB_HOME.
    """
    fetched = fetch_batches([(request_id, source)], workers=1, base_urls={source: base_url} if base_url else None,
                            secrets={source: secret} if secret else None)
    return fetched[(request_id, source)].batch_id


def fetch_many(request_ids: list[str], *, workers: int = 12, base_urls: dict[str, str] | None = None,
               exchange: bool = False) -> list[str]:
    """Every source of each request (``fetch_batches``: the same gate decisions, agency calls, batches and ledger
    entries as the DAG's ``fetch_source`` one source at a time), the requests marked running: the inline runner's
    and the re-checks' fetch, for many households at once; with ``exchange``, the households asked together in
    batch exchanges (批量核对). Returns the batches not validated yet. A request that cannot be fetched (it no
    longer exists) raises before anything is asked."""
    wanted = []
    with session() as s:
        reqs = {r.id: r for r in s.scalars(select(Request).where(Request.id.in_(request_ids)))}
        missing = [r for r in request_ids if r not in reqs]
        if missing:
            raise RequestNotFound(f"no request {missing[0]}")
        _not_signing(reqs.values())
        for request_id in dict.fromkeys(request_ids):
            req = reqs[request_id]
            if req.status in ("received", "failed", "refused"):
                req.status = "running"
            wanted += [(request_id, source) for source in req.sources]
    fetched = fetch_batches(wanted, workers=workers, base_urls=base_urls, exchange=exchange)
    return [f.batch_id for f in fetched.values() if not f.validated]


REQUESTED_MEMBER = ("requested_member",
                    "应答中的人员不在本次核对请求中 / the answer names a person who was not asked for")


def docs_url(validation_run_id: int) -> str:
    """Where staff read the Data Docs of a validation run (the console served by ``hub api``)."""
    return f"{settings().api_url.rstrip('/')}/console/data-docs/{validation_run_id}"


def _packed_docs(outcome) -> str | None:
    """The outcome's Data Docs packed for the store, once per outcome (every batch of a GX run shares them)."""
    if not outcome.docs:
        return None
    if outcome.packed_docs is None:
        outcome.packed_docs = pack(outcome.docs)
    return outcome.packed_docs


RUN_COLUMNS = ("batch_id", "request_id", "source", "suite", "success", "rows", "rows_failed", "run_id")


@dataclass(slots=True)
class _Run:
    """A suite's result as stored (a ``validation_runs`` row; not an ORM object: thousands are written at once)."""

    batch_id: str | None
    request_id: str | None
    source: str | None
    suite: str
    success: bool
    rows: int
    rows_failed: int
    results: list | str  # the results, or their JSON text (encoded once for many runs)
    run_id: str | None
    docs: str | None
    id: int | None = None


def _store_run(s, outcome, *, run_id: str | None, rows: int, failed: int, batch: FetchBatch | None = None,
               request_id: str | None = None, results: list[dict] | None = None, flush: bool = True) -> _Run:
    """A suite's stored result; with ``flush=False`` not stored yet: the caller stores many at once
    (``_insert_runs``) and logs them."""
    run = _Run(batch_id=batch.id if batch else None, request_id=batch.request_id if batch else request_id,
               source=batch.source if batch else None, suite=outcome.suite, success=not failed,
               rows=rows, rows_failed=failed, results=_own_results(outcome) if results is None else results,
               run_id=run_id, docs=_packed_docs(outcome))
    if flush:
        _insert_runs(s, [run])
        _log_run(run)
    return run


def _own_results(outcome) -> str:
    """The outcome's own results, as stored: encoded once however many requests' runs store them."""
    memo = outcome.encoded_results
    if None not in memo:
        memo[None] = json.dumps(outcome.results)
    return memo[None]


def _insert_runs(s, runs: list[_Run]) -> None:
    """Store suites' results in one multi-row INSERT (Core), each run given its id; their results and Data Docs
    each stored once among the validation texts (a batch's runs share a few hundred of them)."""
    if not runs:
        return
    table, now = ValidationRun.__table__, utcnow()
    texts: dict[str, str] = {}  # text -> its SHA-256 (a text shared by many runs is hashed once)

    def sha(text: str | None) -> str | None:
        if text is None:
            return None
        if text not in texts:
            texts[text] = hashlib.sha256(text.encode("utf-8")).hexdigest()
        return texts[text]

    rows = [{**{c: getattr(r, c) for c in RUN_COLUMNS}, "created_at": now,
             "results_sha256": sha(r.results if isinstance(r.results, str) else json.dumps(r.results)),
             "docs_sha256": sha(r.docs)} for r in runs]
    store_validation_texts(s, {h: text for text, h in texts.items()})
    s.execute(table.insert(), rows)
    # their ids read back by what tells them apart (a batch's suite, or a request's), among the runs made just now
    key_of = {(r.batch_id, r.request_id, r.suite): r for r in runs}
    request_ids = list({r.request_id for r in runs})
    for start in range(0, len(request_ids), 500):
        for run_pk, batch_id, request_id, suite in s.execute(
                select(table.c.id, table.c.batch_id, table.c.request_id, table.c.suite)
                .where(table.c.request_id.in_(request_ids[start: start + 500]), table.c.created_at == now)):
            run = key_of.get((batch_id, request_id, suite))
            if run is not None and (run.id is None or run.id < run_pk):
                run.id = run_pk


@dataclass
class _Row:
    """A stored source row as validation reads it (columns, not an ORM object: its flag is written in bulk)."""

    id: int
    batch_id: str
    row_no: int
    person_ref: str | None
    data_enc: str
    valid: bool | None = None


def _flag_rows(s, batch_ids: list[str], invalid: list[int]) -> None:
    """Every row of ``batch_ids`` valid but those of ``invalid`` (ids): a few set-based UPDATEs (Core)."""
    table = SourceRow.__table__
    for start in range(0, len(batch_ids), 500):
        s.execute(table.update().where(table.c.batch_id.in_(batch_ids[start: start + 500])).values(valid=True))
    for start in range(0, len(invalid), 500):
        s.execute(table.update().where(table.c.id.in_(invalid[start: start + 500])).values(valid=False))


def _log_run(run: _Run) -> None:
    if not log.isEnabledFor(logging.INFO):  # thousands a re-check batch: not even their addresses made
        return
    log.info("validation %s (%s): %d of %d failed; Data Docs: %s", run.suite, "failed" if run.rows_failed else "passed",
             run.rows_failed, run.rows, docs_url(run.id))


def _log_runs(runs: list[_Run], run_id: str | None) -> None:
    """Each run's line (``_log_run``) when they are few (``LOG_EACH``), else each failed run's and one line for the
    passed runs of each suite and source, with where staff list them (the API's validation runs of this pipeline run
    and source): a re-check batch stores two runs a household and source, some 22,000 for 1,000 households."""
    if not log.isEnabledFor(logging.INFO):
        return
    if len(runs) <= LOG_EACH:
        for run in runs:
            _log_run(run)
        return
    passed: dict[tuple[str, str | None], list[int]] = {}
    for run in runs:
        if run.rows_failed:
            _log_run(run)
        else:
            counts = passed.setdefault((run.suite, run.source), [0, 0])
            counts[0] += 1
            counts[1] += run.rows
    api = settings().api_url.rstrip("/")
    for (suite, source), (n, rows) in passed.items():
        query = urllib.parse.urlencode({k: v for k, v in (("run_id", run_id), ("source", source)) if v})
        log.info("validation %s (passed): %d runs, none of their %d rows failed; the runs and their Data Docs: "
                 "%s/v1/validation-runs?%s", suite, n, rows, api, query)


def _results_of(outcome, failures: dict[int, list[tuple[str, str]]], rows: int) -> str:
    """The suite's per-check results for the rows of one batch (``failures`` by position within the batch), as
    stored: encoded once per distinct result of the run (most of a re-check's thousands of batches have the same
    counts and differ, if at all, in their number of rows)."""
    counts: dict[tuple[str, str], int] = {}
    for checks in failures.values():
        for key in set(checks):
            counts[key] = counts.get(key, 0) + 1
    memo = outcome.encoded_results
    key = (rows, tuple(sorted(counts.items())))
    if key not in memo:
        memo[key] = json.dumps([{**r, "unexpected": counts.get((r["check"], r["reason"]), 0),
                                 "success": not counts.get((r["check"], r["reason"])), "rows": rows}
                                for r in outcome.results])
    return memo[key]


def _split(outcome, offset: int, n: int) -> dict[int, list[tuple[str, str]]]:
    return {pos - offset: list(checks) for pos, checks in outcome.failures.items() if offset <= pos < offset + n}


def _quarantined(run: _Run, source: str, rows: list, failures: dict) -> list[dict]:
    """The quarantine's rows for the failures of ``rows`` (each such row marked not valid), to insert in bulk."""
    out = []
    now = utcnow()
    for pos, r in enumerate(rows):
        for check, reason in failures.get(pos, []):
            r.valid = False
            out.append({"batch_id": r.batch_id, "source": source, "row_no": r.row_no, "person_ref": r.person_ref,
                        "expectation": check, "reason": reason, "validation_run_id": run.id, "created_at": now})
    return out


def _quarantine(s, found: list[dict]) -> None:
    """Insert the quarantine's rows in one multi-row statement (Core)."""
    if found:
        s.execute(QuarantinedRow.__table__.insert(), found)


def _member_states(s, batch: FetchBatch, rows: list, members: list[str] | None = None) -> dict[str, str]:
    """person_ref -> state (schemas.coverage) of every member of the request (``members``, else read), for this
    batch."""
    if members is None:
        members = s.scalars(select(RequestMember.person_ref).where(RequestMember.request_id == batch.request_id)).all()
    outcomes = batch.members or {}
    counts: dict[str, list[int]] = {}
    for r in rows:
        c = counts.setdefault(r.person_ref, [0, 0])
        c[0] += 1
        c[1] += bool(r.valid)
    return {ref: state(asked=outcomes.get(ref, WITHDRAWN) != WITHDRAWN, outcome=outcomes.get(ref),
                       rows=counts.get(ref, [0, 0])[0], valid=counts.get(ref, [0, 0])[1], source=batch.source)
            for ref in members}


def validate_batch(batch_id: str, *, run_id: str | None = None) -> dict:
    """Validate one batch (see ``validate_batches``). Idempotent."""
    return validate_batches([batch_id], run_id=run_id)[batch_id]


def validate_batches(batch_ids: list[str], *, run_id: str | None = None) -> dict[str, dict]:
    """Validate batches: their rows with their source's suite (failing rows quarantined), then their members with
    the ``members`` suite (every member answered or explained). Idempotent.

    Batches of one source are validated together, in one GX run over all their rows, and the members of every batch
    in one more (GX's cost is mostly per run: a re-check of many households pays it once per source); every result,
    quarantined row and status is still per batch, and uniqueness holds within a batch. ``run_id`` names the pipeline
    run (the Airflow run id, or inline:<uuid>) the stored results are linked to; each result's Data Docs address is
    logged (the Airflow task log shows it)."""
    keys = keyring()
    out: dict[str, dict] = {}
    with session() as s:
        groups: dict[str, list[FetchBatch]] = {}
        loaded: dict[str, FetchBatch] = {}
        for start in range(0, len(batch_ids), 500):
            loaded.update((b.id, b) for b in s.scalars(select(FetchBatch).where(
                FetchBatch.id.in_(batch_ids[start: start + 500])).options(WITHOUT_SHARE)))
        for batch_id in batch_ids:
            batch = loaded.get(batch_id)
            if batch is None:
                raise LookupError(f"no batch {batch_id}")
            if batch.validated:
                out[batch_id] = {"batch_id": batch_id, "status": batch.status, "already": True}
            elif batch_id not in out:
                out[batch_id] = {}
                groups.setdefault(batch.source, []).append(batch)
        member_rows, member_which, found = [], [], []  # the members suite runs once, over every batch
        members_of: dict[str, list[str]] = {}
        request_ids = list({b.request_id for group in groups.values() for b in group})
        for start in range(0, len(request_ids), 500):
            for request_id, ref in s.execute(select(RequestMember.request_id, RequestMember.person_ref).where(
                    RequestMember.request_id.in_(request_ids[start: start + 500]))):
                members_of.setdefault(request_id, []).append(ref)
        loaded_rows, jobs = [], []
        for source, group in groups.items():
            rows: dict[str, list[_Row]] = {b.id: [] for b in group}
            for start in range(0, len(group), 500):
                chunk = [b.id for b in group[start: start + 500]]
                for r in s.execute(select(SourceRow.id, SourceRow.batch_id, SourceRow.row_no, SourceRow.person_ref,
                                          SourceRow.data_enc).where(SourceRow.batch_id.in_(chunk))
                                   .order_by(SourceRow.batch_id, SourceRow.row_no)):
                    rows[r.batch_id].append(_Row(*r))
            data, which = [], []
            for i, b in enumerate(group):
                data += [one_pass_rows.row_of(b.id, r.row_no, r.data_enc, keys) for r in rows[b.id]]
                which += [i] * len(rows[b.id])
            loaded_rows.append(rows)
            jobs.append(Job(source, data, run_id, which))
        # every source's suite at once: side by side in the process's pool of warm processes when it has one
        outcomes = validate_all(jobs)
        jobs = data = None  # the decrypted rows: not kept longer than their validation
        for (source, group), rows, outcome in zip(groups.items(), loaded_rows, outcomes):
            offset = 0
            for b in group:
                brows = rows[b.id]
                failures = _split(outcome, offset, len(brows))
                offset += len(brows)
                rejected = sorted({reason for checks in failures.values() for name, reason in checks
                                   if name in outcome.must_pass_checks})
                for reason in rejected:  # the whole batch is rejected: every row goes to quarantine
                    for pos in range(len(brows)):
                        failures.setdefault(pos, []).append(("batch_rejected", reason))
                asked = {ref for ref, outcome in (b.members or {}).items() if outcome != WITHDRAWN}
                for pos, r in enumerate(brows):
                    if (b.members or {}).get(r.person_ref) == WITHDRAWN:
                        failures.setdefault(pos, []).append(CONSENT_WITHDRAWN)
                    elif r.person_ref not in asked:
                        failures.setdefault(pos, []).append(REQUESTED_MEMBER)
                for pos, r in enumerate(brows):
                    r.valid = pos not in failures
                run = _store_run(s, outcome, run_id=run_id, rows=len(brows), failed=len(failures), batch=b,
                                 results=_results_of(outcome, failures, len(brows)), flush=False)
                states = _member_states(s, b, brows, members_of.get(b.request_id, []))
                member_rows += [{"person_ref": k, "state": v} for k, v in states.items()]
                member_which += [len(found)] * len(states)
                found.append((b, outcome, run, failures, rejected, states, brows))
        members = validate("members", member_rows, run_name=run_id, batch_keys=member_which) if found else None
        offset, done = 0, []
        for b, outcome, run, failures, rejected, states, brows in found:
            unexplained = sum(v in ("unanswered", "silent") for v in states.values())
            member_failures = _split(members, offset, len(states))
            offset += len(states)
            members_run = _store_run(s, members, run_id=run_id, rows=len(states), failed=unexplained, batch=b,
                                     results=_results_of(members, member_failures, len(states)), flush=False)
            b.members = states
            b.validated = True
            if rejected:
                b.status, b.reason = "unavailable", "BATCH_REJECTED"
            elif failures and b.status == "complete":
                b.status, b.reason = "incomplete", "ROWS_QUARANTINED"
            elif unexplained and b.status == "complete":
                b.status, b.reason = "incomplete", "MEMBERS_NOT_ANSWERED"
            done.append((members_run, unexplained))
        # every run of every batch in one statement: their ids for the quarantine and the ledger
        runs = [x for f, (members_run, _) in zip(found, done) for x in (f[2], members_run)]
        _insert_runs(s, runs)
        _flag_rows(s, [f[0].id for f in found], [r.id for f in found for pos, r in enumerate(f[6]) if pos in f[3]])
        entries, quarantine = [], []
        _log_runs(runs, run_id)
        for (b, outcome, run, failures, rejected, states, brows), (members_run, unexplained) in zip(found, done):
            quarantine += _quarantined(run, b.source, brows, failures)
            entries.append(("validation.completed", {
                "batch_id": b.id, "source": b.source, "suite": outcome.suite, "success": not failures,
                "rows": len(brows), "rows_failed": len(failures), "validation_run": run.id,
                "members_unexplained": unexplained, "members_run": members_run.id, "run_id": run_id}))
            out[b.id] = {"batch_id": b.id, "status": b.status, "rows": len(brows),
                         "rows_failed": len(failures), "members_unexplained": unexplained}
        _quarantine(s, quarantine)
        ledger.append_many(s, entries)
    return out


def cross_check(request_id: str, *, run_id: str | None = None) -> dict:
    """Checks across the sources of a request (see ``cross_check_many``)."""
    return cross_check_many([request_id], run_id=run_id)[request_id]


def _facts_across(s, request_ids: list[str], keys) -> dict[str, tuple[list[dict], list[_Row], list[FetchBatch]]]:
    """Per request: its valid dated facts with each person's birth date (household registration's, else the ID's),
    the rows they came from and their batches; a few statements for all the requests, each row as this pass has it
    (hub.stages.rows)."""
    latest: dict[tuple[str, str], FetchBatch] = {}
    births: dict[str, dict[str, str]] = {r: {} for r in request_ids}
    members = []
    for start in range(0, len(request_ids), 500):
        chunk = request_ids[start: start + 500]
        for b in s.scalars(select(FetchBatch).where(FetchBatch.request_id.in_(chunk)).options(WITHOUT_SHARE)
                           .order_by(FetchBatch.fetched_at, FetchBatch.id)):
            latest[(b.request_id, b.source)] = b
        members += s.execute(select(RequestMember.request_id, RequestMember.person_ref, RequestMember.id_number_enc)
                             .where(RequestMember.request_id.in_(chunk))).all()
    ids = [keys.decrypt(enc, aad=aad_member(rid, "id_number_enc", ref)) for rid, ref, enc in members]
    for (rid, ref, _), idn, ok in zip(members, ids, valid_id_mask(ids)):
        if ok:
            births[rid][ref] = birth_date_from_id(idn).isoformat()

    def valid_rows(batches: dict[str, FetchBatch]) -> list[_Row]:  # columns, not ORM objects: flags go in bulk
        found = []
        keys_ = list(batches)
        for start in range(0, len(keys_), 500):
            found += [_Row(*r, valid=True) for r in s.execute(
                select(SourceRow.id, SourceRow.batch_id, SourceRow.row_no, SourceRow.person_ref, SourceRow.data_enc)
                .where(SourceRow.batch_id.in_(keys_[start: start + 500]), SourceRow.valid.is_(True))
                .order_by(SourceRow.batch_id, SourceRow.row_no))]
        return found

    household = {b.id: b for (_, source), b in latest.items() if source == "household"}
    for r in valid_rows(household):  # household registration's birth dates, where it gave valid rows
        row = one_pass_rows.row_of(r.batch_id, r.row_no, r.data_enc, keys)
        if r.person_ref and row.get("birth_date"):
            births[household[r.batch_id].request_id][r.person_ref] = row["birth_date"]
    checked = {b.id: b for (_, source), b in latest.items() if source != "household" and b.validated}
    out: dict[str, tuple[list[dict], list[_Row], list[FetchBatch]]] = {r: ([], [], []) for r in request_ids}
    for r in sorted(valid_rows(checked), key=lambda r: (checked[r.batch_id].source, r.row_no)):
        batch = checked[r.batch_id]
        row = one_pass_rows.row_of(batch.id, r.row_no, r.data_enc, keys)
        facts, rows, batches = out[batch.request_id]
        facts.append({"source": batch.source, "person_ref": r.person_ref, "fact_date": fact_date(row),
                      "birth_date": births[batch.request_id].get(r.person_ref)})
        rows.append(r)
        batches.append(batch)
    return out


def checked_across_in_run(request_ids: list[str], run_id: str):
    """Which of the requests have their checks across sources in run ``run_id`` already: by the index on
    (request_id, batch_id, run_id), whatever the size of the run or the store."""
    return select(ValidationRun.request_id).where(ValidationRun.request_id.in_(request_ids),
                                                  ValidationRun.batch_id.is_(None), ValidationRun.run_id == run_id)


def cross_check_many(request_ids: list[str], *, run_id: str | None = None) -> dict[str, dict]:
    """Checks across the sources of each request (schemas.cross), once its sources are validated: failing rows are
    quarantined like any other. The requests' facts go through one GX run; results stay per request. Idempotent
    per run: only rows still valid are checked."""
    keys = keyring()
    out: dict[str, dict] = {}
    with session() as s:
        wanted = list(dict.fromkeys(request_ids))
        done: set[str] = set()
        for start in range(0, len(wanted), 500) if run_id else ():
            done.update(s.scalars(checked_across_in_run(wanted[start: start + 500], run_id)))
        out.update({r: {"request_id": r, "already": True} for r in wanted if r in done})
        facts_of = _facts_across(s, [r for r in wanted if r not in done], keys)
        todo = [(request_id, *found) for request_id, found in facts_of.items()]
        facts = [f for _, fs, _, _ in todo for f in fs]
        which = [i for i, (_, fs, _, _) in enumerate(todo) for _ in fs]
        outcome = validate("cross_source", facts, run_name=run_id, batch_keys=which)
        offset, made = 0, []
        for request_id, fs, rows, batches in todo:
            failures = _split(outcome, offset, len(fs))
            offset += len(fs)
            made.append((request_id, rows, batches, failures, _store_run(
                s, outcome, run_id=run_id, rows=len(rows), failed=len(failures), request_id=request_id,
                results=_results_of(outcome, failures, len(rows)), flush=False)))
        runs = [run for *_, run in made]
        _insert_runs(s, runs)  # every request's result in one statement
        quarantine, entries = [], []
        _log_runs(runs, run_id)
        for request_id, rows, batches, failures, run in made:
            for pos, checks in failures.items():
                quarantine += _quarantined(run, batches[pos].source, [rows[pos]], {0: checks})
                if batches[pos].status == "complete":
                    batches[pos].status, batches[pos].reason = "incomplete", "ROWS_QUARANTINED"
            entries.append(("validation.completed", {
                "request_id": request_id, "suite": outcome.suite, "success": not failures, "rows": len(rows),
                "rows_failed": len(failures), "validation_run": run.id, "run_id": run_id}))
            out[request_id] = {"request_id": request_id, "rows": len(rows), "rows_failed": len(failures)}
        _flag_rows(s, [], [r.id for _, rows, _, failures, _ in made for pos, r in enumerate(rows) if pos in failures])
        _quarantine(s, quarantine)
        ledger.append_many(s, entries)
    return out


class AnswerCheck(NamedTuple):
    """One stored raw answer as checked again: its place, the key that signed it and when, and what failed."""

    seq: int
    kid: str | None
    signed_at: str | None
    rows: int
    problem: str | None  # None: hash, signature and counts hold


def _stored_answers(batch_id: str) -> tuple[FetchBatch, list[tuple[int, str, bytes, dict | None]]]:
    """A batch and its raw answers: (seq, stored hash, body, signature headers or None), decrypted; a batch
    exchange's share: the exchange's answers."""
    keys = keyring()
    with session() as s:
        batch = s.get(FetchBatch, batch_id)
        if batch is None:
            raise LookupError(f"no batch {batch_id}")
        s.expunge(batch)
        if batch.exchange_id is not None:
            found = s.scalars(select(ExchangeAnswer).where(ExchangeAnswer.exchange_id == batch.exchange_id)
                              .order_by(ExchangeAnswer.seq)).all()
            body_aad, signature_aad, owner = aad_exchange_answer, aad_exchange_signature, batch.exchange_id
        else:
            found = s.scalars(select(RawResponse).where(RawResponse.batch_id == batch_id)
                              .order_by(RawResponse.seq)).all()
            body_aad, signature_aad, owner = aad_raw_response, aad_raw_signature, batch_id
        return batch, [(r.seq, r.sha256, keys.decrypt_bytes(r.body_enc, aad=body_aad(owner, r.seq)),
                        None if r.signature_enc is None else json.loads(keys.decrypt(
                            r.signature_enc, aad=signature_aad(owner, r.seq)))) for r in found]


def check_answers(batch_id: str, home=None) -> tuple[str, list[AnswerCheck]]:
    """Every stored raw answer of a batch checked again as the agency signed it (``hub audit answer``): the body
    against its stored hash, the signature with the agency's public keys (retired ones too: an answer stays
    verifiable after a rotation), the rows against the signed counts. Returns the batch's source and one check per
    answer; nothing of the answers' content."""
    batch, answers = _stored_answers(batch_id)
    if batch.source not in SPECS:
        raise LookupError(f"batch {batch_id} is of {batch.source}, not an agency's: no agency signature")
    spec = SPECS[batch.source]
    trusted = trusted_keys(home or settings().home, batch.source, retired=True)
    out = []
    for seq, sha256, body, signature in answers:
        kid = (signature or {}).get(KEY_ID)
        if hashlib.sha256(body).hexdigest() != sha256:
            out.append(AnswerCheck(seq, kid, None, 0, "hash"))
            continue
        try:
            manifest = verify_answer(signature, body, source=batch.source, trusted=trusted, nonce=None, max_age=None)
        except BadSignature as exc:
            out.append(AnswerCheck(seq, kid, None, 0, f"signature {exc.why}"))
            continue
        signed_at = dt.datetime.fromtimestamp(manifest.time, dt.timezone.utc).isoformat()
        try:
            rows = parse_answer(spec, body, {}).rows
        except BadAnswer as exc:
            out.append(AnswerCheck(seq, kid, signed_at, 0, f"unreadable {exc.kind}"))
            continue
        miscounted = count_mismatches(manifest, rows, spec.id_field)
        out.append(AnswerCheck(seq, kid, signed_at, len(rows), "counts" if miscounted else None))
    return batch.source, out


def replay_batch(batch_id: str) -> list[dict]:
    """The canonical rows of a batch, parsed again from its stored raw answers: each checked against its hash and,
    where the agency signed it, its signature (with the agency's public keys, retired ones included) and counts. A
    batch exchange's share is told apart in the exchange's answers as the fetch did: the rows answered under its
    persons' references, less every row of a person the exchange left out, from the answers whose rows were taken
    (an answer that failed a check is kept for audit, its rows never used)."""
    batch, answers = _stored_answers(batch_id)
    spec, rows = SPECS[batch.source], []
    problems = {c.seq: c.problem for c in check_answers(batch_id)[1] if c.problem} if any(
        sig for *_, sig in answers) else {}
    share = batch.exchange if batch.exchange_id is not None else None
    keys = keyring() if share else None
    for seq, sha256, body, _ in answers:
        if hashlib.sha256(body).hexdigest() != sha256:
            raise ValueError(f"raw answer {seq} of batch {batch_id} does not match its hash")
        if share is not None and seq >= share["answers"]:
            continue
        if seq in problems:
            raise ValueError(f"raw answer {seq} of batch {batch_id}: {problems[seq]}")
        parsed = parse_answer(spec, body, {}).rows
        if share is None:
            rows.extend(from_wire(spec, row) for row in parsed)
            continue
        refs, excluded = set(share["refs"]), set(share["excluded"])
        for row in parsed:
            if row.pop(spec.ref_field, None) not in refs:
                continue
            canonical = from_wire(spec, row)
            idn = canonical.get("id_number")
            if not (excluded and isinstance(idn, str) and keys.pseudonym(idn) in excluded):
                rows.append(canonical)
    return rows


@dataclass
class InlineResult:
    request_id: str
    status: str
    record_id: int | None
    household_ref: str | None


def fetch_missing(request_id: str, *, base_urls: dict[str, str] | None = None) -> list[str]:
    """Fetch each source of the request that has no batch yet; return the batches not validated yet."""
    return fetch_many([request_id], base_urls=base_urls)


def resume(request_id: str, *, run_id: str, as_of: dt.datetime, base_urls: dict[str, str] | None = None) -> InlineResult:
    """Every stage a request still needs, in order, in this process: sources without a batch are fetched, batches
    not validated are validated, then the checks across sources and the publication (both idempotent per run)."""
    validate_batches(fetch_missing(request_id, base_urls=base_urls), run_id=run_id)
    return finish(request_id, run_id, as_of)


def finish(request_id: str, run_id: str, as_of: dt.datetime) -> InlineResult:
    """The checks across sources and the publication, once every batch is validated."""
    cross_check(request_id, run_id=run_id)
    record_id = publish_record(request_id, as_of=as_of)
    with session() as s:
        req = _request(s, request_id)
        return InlineResult(request_id, req.status, record_id, req.household_ref)


def run_inline(request_id: str, *, as_of: dt.datetime | None = None,
               base_urls: dict[str, str] | None = None) -> InlineResult:
    """Every stage in order, in this process (``hub verify --sync``): the sources are fetched concurrently, validated
    together, checked across and published."""
    run_id = f"inline:{uuid.uuid4().hex}"
    # a stage that raises leaves the alert its DAG task's failure would (no Airflow here to make it); a request
    # that does not exist is the caller's mistake, not a failure staff must act on
    def stage(task_id: str):
        return alert_on_failure(dag_id="verify_household", task_id=task_id, run_id=run_id, ignore=(RequestNotFound, AwaitingSignatures))

    with stage("fetch_source"):
        batches = fetch_many([request_id], base_urls=base_urls)
    with stage("validate_batch"):
        validate_batches(batches, run_id=run_id)
    with stage("cross_check"):
        cross_check(request_id, run_id=run_id)
    with stage("publish_record"):  # finish() finds the checks across sources done for this run
        return finish(request_id, run_id, as_of or utcnow())
