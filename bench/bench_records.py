"""Households unified and published per second, at 10,000 and 100,000 households (1,000 and 10,000 with --quick).

Each household of the generated population goes through what publishing does after validation: ``hub.rules.unify``
(members, facts, discrepancies, assessment) and ``hub.stages.records.store_record`` (version, Ed25519 signature, AES-GCM
encryption, the record row, its ledger entry and its outbox notification, one transaction per household), on SQLite
in a scratch HUB_HOME. Generating the population and inserting the requests the records belong to are not counted.
"""

from __future__ import annotations

# Imports inside functions below are deliberate: `hub bench` imports every benchmark to list it, and each loads
# what it measures only when it runs (some in a child process of their own, with a scratch HUB_HOME set first).
import datetime as dt
import time
import uuid

from schemas.vocabulary import AGENCY_SOURCES

SOURCES_ALL = AGENCY_SOURCES


def record_inputs(f, keyed):
    from hub.rules.unify import Applicant

    hh = f.household
    rows = {"household": [{"id_number": p.id_number, "name": p.name, "sex": p.sex, "birth_date": p.birth_date.isoformat(),
                           "household_no": hh.household_no, "relation": p.relation, "status": p.status,
                           "address_code": p.address_code} for p in hh.members]}
    for source, by_person in f.by_source.items():
        rows[source] = [{"id_number": i, **r} for i, rs in by_person.items() for r in rs]
    applicants = [Applicant(keyed(p.id_number), p.id_number, p.name) for p in hh.members if p.status == "normal"]
    return applicants, rows


def publish(request_id: str, applicants, rows: dict, as_of: dt.datetime, rules, keys,
            sources=SOURCES_ALL) -> str:
    """Unify and publish one household's rows as complete answers of ``sources``; its household_ref."""
    from hub.rules.unify import unify
    from hub.stages.records import RECORD_SCHEMA, store_record

    household_no, body = unify(applicants, rows, {s: "complete" for s in sources}, as_of, rules, keys.pseudonym)
    ref = keys.pseudonym(household_no, kind="household")
    store_record(request_id, ref, {"schema": RECORD_SCHEMA, "household_ref": ref, "request_id": request_id,
                                   "purpose": "dibao", "as_of": as_of.isoformat(), **body,
                                   "sources": {s: {"status": "complete", "reason": None} for s in sources}}, as_of)
    return ref


def _requests(n: int) -> list[str]:
    from core.store import Request, session

    ids = [uuid.uuid4().hex for _ in range(n)]
    now = dt.datetime.now(dt.timezone.utc)
    with session() as s:
        s.execute(Request.__table__.insert(), [
            {"id": i, "department": "MZ-210302", "purpose": "dibao", "case_ref": f"bench-{j}",
             "sources": list(SOURCES_ALL), "status": "running", "created_at": now,
             "updated_at": now} for j, i in enumerate(ids)])
    return ids


def _measure(n: int, seed: int) -> tuple[float, float, int]:
    """(households per second, unify share of the time, facts) for ``n`` households."""
    from agencies.population import population_facts
    from core.crypto import keyring
    from hub.rules.standards import rules_at
    from hub.rules.unify import unify
    from hub.stages.records import RECORD_SCHEMA, store_record

    keys = keyring()
    as_of = dt.datetime.now(dt.timezone.utc)
    rules = rules_at(as_of.date())
    complete = {s: "complete" for s in SOURCES_ALL}
    request_ids = _requests(n)
    unify_s = publish_s = 0.0
    facts = 0
    for request_id, f in zip(request_ids, population_facts(seed, n)):
        applicants, rows = record_inputs(f, keys.pseudonym)
        t0 = time.perf_counter()
        household_no, body = unify(applicants, rows, complete, as_of, rules, keys.pseudonym)
        household_ref = keys.pseudonym(household_no, kind="household")
        content = {"schema": RECORD_SCHEMA, "household_ref": household_ref, "request_id": request_id,
                   "purpose": "dibao", "as_of": as_of.isoformat(), **body,
                   "sources": {s: {"status": "complete", "reason": None} for s in SOURCES_ALL}}
        t1 = time.perf_counter()
        store_record(request_id, household_ref, content, as_of)
        t2 = time.perf_counter()
        unify_s += t1 - t0
        publish_s += t2 - t1
        facts += sum(len(v) for v in body["facts"].values())
    return n / (unify_s + publish_s), unify_s / (unify_s + publish_s), facts


def run(quick: bool = False) -> dict:
    import logging

    from bench.scratch import scratch_home

    logging.getLogger("hub.stages.records").setLevel(logging.WARNING)  # one line per record is not a benchmark's output
    out = {}
    for n in ((1_000, 10_000) if quick else (10_000, 100_000)):
        with scratch_home("hub-bench-records-"):
            rate, unify_share, facts = _measure(n, seed=11)
        label = f"{n // 1000}k"
        out[f"records_published_per_s_{label}"] = round(rate, 1)
        print(f"{n:,} households unified and published: {rate:,.0f} households/s "
              f"({unify_share:.0%} of the time in unify; {facts / n:,.0f} facts per household)")
    return out


if __name__ == "__main__":
    run()
