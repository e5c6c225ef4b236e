"""The stages' handling of bad input, partial consent and unavailable agencies."""

from __future__ import annotations

import json
import logging

import pytest

from sqlalchemy import select

from consent.authorizations import revoke
from core.crypto import keyring
from hub.stages.intake import create_request
from hub.stages.pipeline import fetch_source, run_inline, start_request, validate_batch
from hub.stages.records import load_record
from core.store import (Authorization, FetchBatch, HouseholdRecord, QuarantinedRow, Request, SourceRow,
                       aad_raw_response, aad_source_row, session, utcnow)
from tests.support.households import (ALL_SOURCES, household_with_several_members as _household_with_several_members,
                                      sample)
from tests.support.store import ledger_entries, tampering


def test_dirty_rows_are_quarantined_with_reasons_and_the_source_is_marked_incomplete(dirty_agencies):
    # find a household whose answer the dirty profile corrupts
    for k in range(50):
        doc = sample(k)
        result = run_inline(create_request(doc))
        with session() as s:
            q = s.scalars(select(QuarantinedRow).join(FetchBatch, FetchBatch.id == QuarantinedRow.batch_id)
                          .where(FetchBatch.request_id == result.request_id)).all()
        if q:
            break
    else:
        raise AssertionError("the dirty profile corrupted no row of 50 households")
    checks = {r.expectation for r in q}
    known = {"required_field", "id_check_digit", "known_division", "known_sex_code", "known_relation_code",
             "known_status_code", "sex_matches_id", "birth_matches_id", "unique_person", "requested_member",
             "unexpected_field", "batch_rejected"}
    assert checks and checks <= known
    assert all(" / " in r.reason for r in q)
    if result.household_ref:  # the household was still identified from its good rows
        record, content = load_record(result.household_ref)
        assert record.completeness["household"] == "incomplete"
        assert content["sources"]["household"]["reason"] in ("ROWS_QUARANTINED", "MEMBERS_NOT_FOUND")
        quarantined_people = {r.person_ref for r in q}
        assert not quarantined_people & {m["person_ref"] for m in content["members"]}
        assert len(content["members"]) < len(doc["members"])


def test_a_member_without_authorization_is_not_asked_for_and_the_record_says_incomplete(agencies):
    k = _household_with_several_members()
    doc = sample(k)
    left_out = doc["authorization"]["consents"].pop()
    assert "evidence_sha256" in left_out or not any(c.get("guardian_id_number") == left_out["id_number"]
                                                    for c in doc["authorization"]["consents"])
    result = run_inline(create_request(doc))
    assert result.status == "published"
    record, content = load_record(result.household_ref)
    assert record.completeness == {"household": "incomplete"}
    assert content["sources"]["household"]["reason"] == "MEMBERS_NOT_AUTHORIZED"
    assert agencies.stats()["household"]["rows"] == len(doc["members"]) - 1
    assert left_out["id_number"][-4:] not in {m["id_number_masked"][-4:] for m in content["members"]} or \
        len(content["members"]) == len(doc["members"]) - 1


def test_revocation_holds_from_the_next_call(agencies):
    request_id = create_request(sample(11))
    start_request(request_id)
    first = fetch_source(request_id, "household")
    with session() as s:
        for a in s.scalars(select(Authorization).where(Authorization.request_id == request_id)):
            revoke(s, a.id)
    served = agencies.stats()["household"]["requests"]
    second = fetch_source(request_id, "household")
    assert agencies.stats()["household"]["requests"] == served  # no new call
    with session() as s:
        assert s.get(FetchBatch, first).status == "complete"
        assert s.get(FetchBatch, second).status == "refused"


def test_an_unavailable_agency_publishes_nothing_and_says_why(monkeypatch):
    monkeypatch.setenv("HUB_AGENCIES_URL", "http://127.0.0.1:9/")
    request_id = create_request(sample(12))
    result = run_inline(request_id, base_urls={"household": "http://127.0.0.1:9/household/"})
    assert result.status == "failed" and result.record_id is None
    with session() as s:
        batch = s.scalars(select(FetchBatch).where(FetchBatch.request_id == request_id)).one()
        assert (batch.status, batch.reason) == ("unavailable", "UNREACHABLE")
        assert s.scalars(select(HouseholdRecord).where(HouseholdRecord.request_id == request_id)).first() is None


def test_validating_a_batch_twice_changes_nothing(agencies):
    request_id = create_request(sample(13))
    batch = fetch_source(request_id, "household")
    first = validate_batch(batch)
    again = validate_batch(batch)
    assert again["already"] and again["status"] == first["status"] == "complete"


def test_logs_of_a_run_hold_no_personal_data(agencies, caplog):
    doc = sample(14)
    with caplog.at_level(logging.DEBUG):
        run_inline(create_request(doc))
    text = caplog.text
    for m in doc["members"]:
        assert m["id_number"] not in text and m["name"] not in text
    assert "published" in text


def test_xcom_worthy_returns_are_ids_only(agencies):
    doc = sample(15)
    request_id = create_request(doc)
    values = [start_request(request_id)]
    batch = fetch_source(request_id, "household")
    values += [batch, validate_batch(batch)]
    dumped = json.dumps(values, ensure_ascii=False)
    for m in doc["members"]:
        assert m["id_number"] not in dumped and m["name"] not in dumped
    with session() as s:
        assert s.get(Request, request_id).status == "running"


_AUTH = "request_id = :r"
_MEMBERS = "authorization_id IN (SELECT id FROM authorizations WHERE request_id = :r)"
REFUSALS = [  # reason, table, change, which rows
    ("EXPIRED", "authorizations", "valid_from = '2020-01-01 00:00:00', valid_until = '2020-01-02 00:00:00'", _AUTH),
    ("NOT_YET_VALID", "authorizations", "valid_from = '2099-01-01 00:00:00', valid_until = '2099-02-01 00:00:00'", _AUTH),
    ("REVOKED", "revocations", "SELECT id, NULL, NULL, '2020-01-01 00:00:00' FROM authorizations", _AUTH),
    ("WRONG_DEPARTMENT", "authorizations", "department = 'YB-210303'", _AUTH),
    ("WRONG_PURPOSE", "authorizations", "purpose = 'medical'", _AUTH),
    ("SOURCE_NOT_IN_SCOPE", "authorization_members", "sources = '[\"tax\"]'", _MEMBERS),
    ("MINOR_WITHOUT_GUARDIAN", "authorization_members",
     "guardian_ref = NULL, evidence_sha256 = NULL, adult_from = '2099-01-01'", _MEMBERS),
    ("ADULT_WITHOUT_OWN_CONSENT", "authorization_members", "evidence_sha256 = NULL",
     _MEMBERS),
    ("MEMBER_NOT_NAMED", "authorization_members", None, _MEMBERS),
]


@pytest.mark.parametrize("reason, table, change, rows", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_every_refusal_reaches_no_agency_and_is_a_ledger_entry_with_its_reason(own_store, agencies, reason, table,
                                                                                change, rows):
    from sqlalchemy import text

    from core.store import LedgerEvent

    k = next(k for k in range(50) if all("evidence_sha256" in c for c in sample(k)["authorization"]["consents"]))
    request_id = create_request(sample(k))
    statement = f"UPDATE {table} SET {change} WHERE {rows}" if change else f"DELETE FROM {table} WHERE {rows}"
    if table == "revocations":  # consent is withdrawn by appending
        statement = f"INSERT INTO revocations (authorization_id, person_ref, source, revoked_at) {change} WHERE {rows}"
    with tampering() as c:  # the application cannot reach these states: authorizations are append-only
        c.execute(text(statement), {"r": request_id})
    batch = fetch_source(request_id, "household")
    with session() as s:
        assert s.get(FetchBatch, batch).status == "refused"
        refusals = [e.payload for e in s.scalars(select(LedgerEvent).where(LedgerEvent.kind == "consent.refused"))
                    if e.payload["request_id"] == request_id]
    assert refusals and {r["reason"] for r in refusals} == {reason}
    assert agencies.stats()["household"]["requests"] == 0


def test_raw_answers_are_stored_encrypted_hashed_in_the_ledger_and_replay_to_the_same_rows(agencies):
    import base64
    import hashlib

    from hub.stages.pipeline import replay_batch
    from core.store import LedgerEvent, RawResponse, SourceRow, engine
    from sqlalchemy import text, update

    doc = sample(25)
    batch = fetch_source(create_request(doc), "household")
    with session() as s:
        raws = s.scalars(select(RawResponse).where(RawResponse.batch_id == batch)).all()
        event = next(e.payload for e in s.scalars(select(LedgerEvent).where(LedgerEvent.kind == "fetch.completed"))
                     if e.payload["batch_id"] == batch)
        stored = [json.loads(keyring().decrypt(r.data_enc, aad=aad_source_row(batch, r.row_no)))
                  for r in s.scalars(select(SourceRow).where(SourceRow.batch_id == batch).order_by(SourceRow.row_no))]
    assert raws and event["response_hashes"] == [r.sha256 for r in raws]
    assert replay_batch(batch) == stored
    with engine().connect() as c:
        dump = " ".join(str(v) for row in c.execute(text("SELECT * FROM raw_responses")) for v in row)
    assert all(m["id_number"] not in dump for m in doc["members"])
    first = keyring().decrypt_bytes(raws[0].body_enc, aad=aad_raw_response(batch, 0))
    assert hashlib.sha256(first).hexdigest() == raws[0].sha256
    # a store written before v3 held each answer as its base64 text (v2): it replays to the same rows
    legacy = {r.id: keyring().encrypt(base64.b64encode(keyring().decrypt_bytes(r.body_enc, aad=aad_raw_response(
        batch, r.seq))).decode("ascii"), aad=aad_raw_response(batch, r.seq)) for r in raws}
    # sealed compressed (v3), an answer takes under half the room it took (even a one-person answer)
    assert all(r.body_enc.startswith("v3.") and len(r.body_enc) < len(legacy[r.id]) / 2 for r in raws)
    with session() as s:
        for r in raws:
            s.execute(update(RawResponse).where(RawResponse.id == r.id).values(body_enc=legacy[r.id]))
    with session() as s:
        assert all(r.startswith("v2.") for r in s.scalars(select(RawResponse.body_enc)
                                                          .where(RawResponse.batch_id == batch)))
    assert replay_batch(batch) == stored


@pytest.mark.parametrize("key", ["household", "tax", "social_insurance", "provident_fund", "real_estate",
                                 "market_entity", "vehicles_vessels", "bank", "securities", "commercial_insurance",
                                 "internet_finance"])
def test_no_source_is_asked_without_an_allow(agencies, key):
    doc = sample(26)  # authorizes household only
    if key == "household":
        doc["authorization"] = None
    batch = fetch_source(create_request(doc), key)
    with session() as s:
        assert s.get(FetchBatch, batch).status == "refused"
    assert agencies.stats()[key]["requests"] == 0


def test_a_request_for_all_eleven_sources_fetches_validates_and_publishes_each(agencies):
    doc = sample(27, sources=ALL_SOURCES)
    result = run_inline(create_request(doc))
    assert result.status == "published"
    record, content = load_record(result.household_ref)
    assert record.completeness == {k: "complete" for k in ALL_SOURCES}
    assert all(agencies.stats()[k]["served"] >= 1 for k in ALL_SOURCES)


def test_dirty_agencies_for_all_sources_crash_nothing_and_publish_nothing_bad(dirty_agencies):
    quarantined = set()
    for k in range(32, 40):  # households no other test publishes (versions stay predictable there)
        result = run_inline(create_request(sample(k, sources=ALL_SOURCES)))
        with session() as s:
            q = s.scalars(select(QuarantinedRow).join(FetchBatch, FetchBatch.id == QuarantinedRow.batch_id)
                          .where(FetchBatch.request_id == result.request_id)).all()
            batches = s.scalars(select(FetchBatch).where(FetchBatch.request_id == result.request_id)).all()
        quarantined |= {r.source for r in q}
        for b in batches:  # a source with quarantined rows is never complete
            if any(r.batch_id == b.id for r in q):
                assert b.status != "complete"
        if result.household_ref:
            _, content = load_record(result.household_ref)
            assert not {r.person_ref for r in q if r.source == "household"} & {m["person_ref"] for m in content["members"]}
    assert len(quarantined) >= 3, quarantined


def test_a_failed_must_pass_check_rejects_the_whole_batch(agencies):
    from schemas.contracts import EXTRA
    from core.store import SourceRow

    request_id = create_request(sample(28))
    batch = fetch_source(request_id, "household")
    keys = keyring()
    with session() as s:  # one row of the answer came with a field the interface does not define
        row = s.scalars(select(SourceRow).where(SourceRow.batch_id == batch, SourceRow.row_no == 0)).one()
        data = json.loads(keys.decrypt(row.data_enc, aad=aad_source_row(batch, 0)))
        data[EXTRA] = ["xm_v2"]
        row.data_enc = keys.encrypt(json.dumps(data, ensure_ascii=False), aad=aad_source_row(batch, 0))
    summary = validate_batch(batch)
    with session() as s:
        b = s.get(FetchBatch, batch)
        rows = s.scalars(select(SourceRow).where(SourceRow.batch_id == batch)).all()
        reasons = {q.expectation for q in s.scalars(select(QuarantinedRow).where(QuarantinedRow.batch_id == batch))}
    assert (b.status, b.reason) == ("unavailable", "BATCH_REJECTED")
    assert summary["rows_failed"] == len(rows) and not any(r.valid for r in rows)
    assert {"unexpected_field", "batch_rejected"} <= reasons


# -- the gate at the moment of each agency call ----------------------------------------------------------------------
GATE_SOURCES = ["household", "tax", "social_insurance", "real_estate", "vehicles_vessels"]


def _consenting_adult(doc: dict) -> str:
    """The ID number of a member other than the first who signs for themselves."""
    return next(c["id_number"] for c in doc["authorization"]["consents"][1:] if c.get("evidence_sha256"))


def _revoke_member(request_id: str, id_number: str) -> None:
    with session() as s:
        auth_id = s.scalars(select(Authorization.id).where(Authorization.request_id == request_id)).one()
        revoke(s, auth_id, person_ref=keyring().pseudonym(id_number))


def _watch_queries(agencies, on_first=None) -> list[tuple[str, list[str], bool]]:
    """Every query the agencies receive, as (source, ID numbers, after the first query's injection); ``on_first``
    runs while the first query is in flight (before it is answered)."""
    import threading

    seen, lock, done = [], threading.Lock(), threading.Event()

    def observer(source):
        def on_query(ids, _page):
            with lock:
                first = not seen
                seen.append((source, list(ids), done.is_set()))
            if first and on_first is not None:
                on_first()
                done.set()
        return on_query

    for key, agency in agencies.agencies.items():
        agency.on_query = observer(key)
    return seen


def _gate_doc(agencies):
    k = _household_with_several_members()
    return sample(k, sources=GATE_SOURCES)


def test_a_revocation_between_the_decisions_and_the_calls_stops_every_later_call_naming_the_member(agencies):
    """Decisions for every source are made first; the member withdraws while the first call is in flight. No later
    call names them (the gate is asked again, the refusals logged after the revocation), and the record says which
    sources are incomplete for that member."""
    from hub.stages.pipeline import fetch_many, finish, validate_batches

    doc = _gate_doc(agencies)
    x = _consenting_adult(doc)
    request_id = create_request(doc)
    seen = _watch_queries(agencies, on_first=lambda: _revoke_member(request_id, x))
    run_id = "inline:gate-between"
    validate_batches(fetch_many([request_id], workers=1), run_id=run_id)
    finish(request_id, run_id, utcnow())

    (first_source, first_ids, _), *later = seen
    assert x in first_ids and len(later) == len(GATE_SOURCES) - 1
    assert all(after and x not in ids for _, ids, after in later), "a call named the member after the revocation"
    ref = keyring().pseudonym(x)
    with session() as s:
        batches = s.scalars(select(FetchBatch).where(FetchBatch.request_id == request_id)).all()
        assert {b.source for b in batches} == set(GATE_SOURCES)
        for b in batches:
            assert (b.status, b.reason) == ("incomplete", "CONSENT_WITHDRAWN"), b.source
            assert b.members[ref] == "refused"
        record = s.scalars(select(HouseholdRecord).where(HouseholdRecord.request_id == request_id)).one()
        assert set(record.completeness.values()) == {"incomplete"}
        quarantined = {q.source for q in s.scalars(select(QuarantinedRow).where(QuarantinedRow.person_ref == ref))
                       if q.expectation == "consent_withdrawn"}
    assert first_source == "household" and quarantined == {"household"}  # only the call in flight answered them
    revoked = ledger_entries("authorization.revoked", person_ref=ref)[-1]["seq"]
    asked_again = [e for e in ledger_entries("consent.refused", request_id=request_id, person_ref=ref)
                   if e.get("asked_again")]
    assert {e["source"] for e in asked_again} == set(GATE_SOURCES)
    assert all(e["reason"] == "REVOKED" and e["seq"] > revoked for e in asked_again)
    allowed = ledger_entries("consent.allowed", request_id=request_id, person_ref=ref)
    assert len(allowed) == len(GATE_SOURCES) and all(e["seq"] < revoked for e in allowed)


def test_a_revocation_during_a_call_keeps_that_members_answer_out_of_the_record(agencies):
    """The member withdraws while the agency is answering a call that names them: the call's answer is kept (its
    hash is in the ledger and it replays), but that member's rows are quarantined, the source is incomplete for them
    and the record does not use them."""
    doc = _gate_doc(agencies)
    x = _consenting_adult(doc)
    request_id = create_request(doc)
    seen = _watch_queries(agencies, on_first=lambda: _revoke_member(request_id, x))
    batch_id = fetch_source(request_id, "household")  # a row for every person it knows
    validate_batch(batch_id)
    ref = keyring().pseudonym(x)
    assert len(seen) == 1 and x in seen[0][1]
    with session() as s:
        batch = s.get(FetchBatch, batch_id)
        assert (batch.status, batch.reason) == ("incomplete", "CONSENT_WITHDRAWN")
        assert batch.members[ref] == "refused"
        rows = s.scalars(select(SourceRow).where(SourceRow.batch_id == batch_id, SourceRow.person_ref == ref)).all()
        reasons = {q.expectation for q in s.scalars(select(QuarantinedRow).where(QuarantinedRow.batch_id == batch_id,
                                                                                 QuarantinedRow.person_ref == ref))}
    assert rows and not any(r.valid for r in rows) and reasons == {"consent_withdrawn"}
    from hub.stages.pipeline import replay_batch

    assert len(replay_batch(batch_id)) == batch.returned  # the answer as received, every row of it
    (fetched,) = ledger_entries("fetch.completed", batch_id=batch_id)
    assert fetched["withdrawn"] == [ref] and fetched["status"] == "incomplete"
    revoked = ledger_entries("authorization.revoked", person_ref=ref)[-1]["seq"]
    refused = ledger_entries("consent.refused", request_id=request_id, person_ref=ref, source="household")
    assert refused and refused[-1]["reason"] == "REVOKED" and revoked < refused[-1]["seq"] < fetched["seq"]
