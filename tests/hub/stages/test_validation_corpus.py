"""A corpus of bad input: every fault the simulated agencies can inject, one kind at a time and on every row, through
the real fetch and validate stages. Each bad row is quarantined with the right reason; each unreadable or
missing answer leaves its source unavailable with the right reason; nothing crashes."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from agencies.server import DIRTY_ANSWER_KINDS, DIRTY_ROW_KINDS, USCC_FIELDS, DATE_FIELDS, AgencyServer, Population
from connectors import registry
from connectors.base import Policy
from schemas.contracts import SPECS
from hub.stages.intake import create_request
from hub.stages.pipeline import fetch_source, validate_batch
from core.store import FetchBatch, QuarantinedRow, RawResponse, SourceRow, session
from tests.support.households import sample

POP = Population(7, 50)
FAST = Policy(connect_timeout=0.5, read_timeout=0.6, retries=1, backoff_base=0.01, backoff_cap=0.02,
              max_retry_after=0.05, deadline=5.0, breaker_threshold=50)
OFF = {"row": 0.0, "response": 0.0}


def _household_with(source: str) -> int:
    return next(h.index for h in POP.households if any(POP.rows(source, m.id_number) for m in h.members))


def _clean_wire_rows(source: str) -> list[dict]:
    from schemas.contracts import to_wire

    k = _household_with(source)
    return [to_wire(SPECS[source], r) for m in POP.households[k].members for r in (POP.rows(source, m.id_number) or [])]


def _applies(kind: str, source: str) -> bool:
    """Whether the simulator can inject ``kind`` into ``source``'s rows."""
    spec, rows = SPECS[source], _clean_wire_rows(source)
    has = lambda fields: any(spec.fields.get(f) in r and r[spec.fields[f]] for r in rows for f in fields)  # noqa: E731
    numeric = any(isinstance(v, (int, float)) and not isinstance(v, bool) for r in rows for v in r.values())
    return {"credit_code": has(USCC_FIELDS), "unknown_code": bool(spec.codes), "negative": numeric,
            "future_date": has(DATE_FIELDS), "omitted": source == "household"}.get(kind, True)


# the check(s) a row with this fault must fail
ROW_CHECKS = {
    "check_digit": {"id_check_digit"},
    "credit_code": {"uscc_check_digit"},
    "unknown_code": {"known_code", "known_division", "known_sex_code", "known_relation_code", "known_status_code"},
    "malformed": {"number", "required_field"},
    "negative": {"non_negative", "positive", "fraction"},
    "future_date": {"not_future"},
    "duplicate": {"unique_row", "unique_person"},
}


@pytest.fixture
def serve(monkeypatch):
    servers = []
    real = registry.connector
    monkeypatch.setattr(registry, "connector", lambda key, base, secret=None, policy=None: real(key, base, secret, FAST))
    monkeypatch.setenv("HUB_AGENCIES_HANG_S", "2")

    def start(faults: str, **rates) -> AgencyServer:
        server = AgencyServer.from_hub_home(households=50, seed=7, faults=faults, fault_rates=rates).start()
        servers.append(server)
        monkeypatch.setenv("HUB_AGENCIES_URL", server.url)
        return server

    yield start
    for s in servers:
        s.stop()


def _run(source: str) -> FetchBatch:
    request_id = create_request(sample(_household_with(source), sources=[source]))
    batch_id = fetch_source(request_id, source)
    validate_batch(batch_id, run_id="corpus")
    with session() as s:
        batch = s.get(FetchBatch, batch_id)
        s.expunge(batch)
        return batch


def _quarantine(batch_id: str) -> tuple[list[SourceRow], dict[int, set[str]]]:
    with session() as s:
        rows = s.scalars(select(SourceRow).where(SourceRow.batch_id == batch_id)).all()
        checks: dict[int, set[str]] = {}
        for q in s.scalars(select(QuarantinedRow).where(QuarantinedRow.batch_id == batch_id)):
            checks.setdefault(q.row_no, set()).add(q.expectation)
            assert " / " in q.reason and q.validation_run_id  # Chinese / English, linked to its validation run
        s.expunge_all()
        return rows, checks


@pytest.mark.parametrize("kind", sorted(ROW_CHECKS))
def test_every_row_fault_is_quarantined_with_its_reason_in_every_source_it_can_reach(serve, kind):
    serve("dirty", **OFF, **{kind: 1.0})
    reached = [s for s in SPECS if _applies(kind, s)]
    assert reached
    for source in reached:
        batch = _run(source)
        rows, checks = _quarantine(batch.id)
        assert rows, source
        assert not any(r.valid for r in rows), source  # every row was made bad: none may be used
        for r in rows:
            assert checks.get(r.row_no, set()) & ROW_CHECKS[kind], (source, kind, checks.get(r.row_no))
        assert batch.status != "complete" and batch.reason in ("ROWS_QUARANTINED", "BATCH_REJECTED"), source


def test_a_renamed_field_rejects_the_whole_batch_of_every_source(serve):
    serve("dirty", **OFF, renamed=1.0)
    for source in SPECS:
        batch = _run(source)
        rows, checks = _quarantine(batch.id)
        assert (batch.status, batch.reason) == ("unavailable", "BATCH_REJECTED"), source
        assert rows and all({"unexpected_field", "batch_rejected"} <= checks[r.row_no] for r in rows), source


def test_a_body_in_the_wrong_encoding_leaves_the_source_unavailable_and_keeps_the_raw_answer(serve):
    from agencies.wire import encode_answer

    serve("dirty", **OFF, encoding=1.0)
    for source in SPECS:
        spec, rows = SPECS[source], _clean_wire_rows(source)
        wrong = "utf-8" if spec.wire == "csv" else "gbk"
        if encode_answer(spec, rows, [], page=1, pages=1, total=1)[0] == \
                encode_answer(spec, rows, [], page=1, pages=1, total=1, encoding=wrong)[0]:
            continue  # an answer of ASCII only reads the same in either encoding: no fault to catch
        batch = _run(source)
        assert (batch.status, batch.reason) == ("unavailable", "BAD_RESPONSE"), source
        assert set(batch.members.values()) == {"unanswered"}, source
        with session() as s:  # what came is kept (encrypted), for staff to examine and replay
            assert s.scalars(select(RawResponse).where(RawResponse.batch_id == batch.id)).first() is not None


def test_a_member_household_registration_leaves_out_unexplained_is_reported(serve):
    serve("dirty", **OFF, omitted=1.0)
    k = next(h.index for h in POP.households if sum(m.status == "normal" for m in h.members) >= 2)
    request_id = create_request(sample(k))
    batch_id = fetch_source(request_id, "household")
    summary = validate_batch(batch_id, run_id="corpus")
    with session() as s:
        batch = s.get(FetchBatch, batch_id)
        assert (batch.status, batch.reason) == ("incomplete", "MEMBERS_NOT_ANSWERED")
        assert list(batch.members.values()).count("silent") == 1 == summary["members_unexplained"]


@pytest.mark.parametrize("faults,rates,reasons", [
    ("truncated", {"truncated": 1.0}, {"UNREACHABLE"}),
    ("flaky", {"flaky": 1.0}, {"SERVER_ERROR", "RATE_LIMITED", "DEADLINE"}),
    ("slow", {"hang": 1.0}, {"TIMEOUT", "DEADLINE"}),
    ("down:tax", {}, {"UNREACHABLE"}),
])
def test_an_agency_that_does_not_answer_leaves_its_source_unavailable_with_the_reason(serve, faults, rates, reasons):
    serve(faults, **rates)
    batch = _run("tax")
    assert batch.status == "unavailable" and batch.reason in reasons
    assert set(batch.members.values()) == {"unanswered"}  # every member: no answer, and the batch says so
    with session() as s:
        assert not s.scalars(select(SourceRow).where(SourceRow.batch_id == batch.id)).all()


def test_the_corpus_covers_every_fault_the_simulators_can_inject():
    from agencies.server import SIMPLE_PROFILES

    covered_rows = set(ROW_CHECKS)
    covered_answers = {"renamed", "encoding", "omitted"}
    assert covered_rows == set(DIRTY_ROW_KINDS) and covered_answers == set(DIRTY_ANSWER_KINDS)
    # each tested above, plus down:; the batch exchange's in tests/hub/stages/test_batch_exchange.py
    assert set(SIMPLE_PROFILES) == {"none", "flaky", "slow", "truncated", "dirty", "rejecting", "shuffled"}


def test_stored_validation_results_hold_no_value_from_the_data(serve):
    from core.store import ValidationRun
    from hub.services.validation import run_docs
    from schemas.docs import unpack

    serve("dirty", **OFF, check_digit=1.0, negative=1.0)
    batch = _run("bank")
    with session() as s:
        rows = s.scalars(select(SourceRow).where(SourceRow.batch_id == batch.id)).all()
        docs = [unpack(run_docs(r.id)[1]) for r in s.scalars(select(ValidationRun)
                                                             .where(ValidationRun.batch_id == batch.id))]
    from core.crypto import keyring
    from core.store import aad_source_row

    values = [json.loads(keyring().decrypt(r.data_enc, aad=aad_source_row(batch.id, r.row_no))) for r in rows]
    text = json.dumps(docs, ensure_ascii=False)
    assert docs and any(not d["success"] for d in docs)
    for v in values:
        assert v["id_number"] not in text and v["account"] not in text
