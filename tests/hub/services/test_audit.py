"""What an auditor asks of a person's timeline, "who read this person's data, and why": a household lookup and a
record read (seeded through the services, against the simulated agencies) appear with the account's name, the
department, the purpose and the case number, not client ids and request ids; the ledger's integrity is amber, with
the number of entries not under a signed checkpoint, until an auditor signs one."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from agencies.population import household_in_population
from core.crypto import keyring
from core.store import LedgerEvent, engine, session
from hub.services import audit
from hub.services.clients import create_client
from hub.services.lookup import SignedForm, household_members
from hub.services.reads import read_record
from hub.stages.intake import create_request
from hub.stages.pipeline import run_inline
from tests.support.households import sample
from tests.support.servers import serve_agencies

K = 11  # a household of the simulated population (seed 7 of 50)
DEPARTMENT = "MZ-210304"  # 立山区's civil-affairs bureau
CASE_REF = "LS-2026-0311"
FORM = SignedForm("application/pdf", b"%PDF-1.4\n% the applicant's signed form\n" + b"0" * 2048 + b"\n%%EOF\n")


@pytest.fixture(scope="module")
def module_agencies():
    yield from serve_agencies("none")


@pytest.fixture(scope="module")
def seeded(module_agencies):
    """The caseworker looks the household up (一证通办), files the request, the hub verifies it (run_inline against
    the simulated agencies) and the caseworker reads the record."""
    caseworker, _ = create_client("王丽 立山区民政局", "department", DEPARTMENT)
    hh = household_in_population(7, 50, K)
    head = next(m for m in hh.members if m.relation == "head")
    household_members(head.id_number, department=DEPARTMENT, client_id=caseworker.id, purpose="dibao",
                      case_ref=CASE_REF, signed_form=FORM)
    doc = {**sample(K, sources=["household", "tax"], department=DEPARTMENT), "case_ref": CASE_REF}
    request_id = create_request(doc, client_id=caseworker.id)
    result = run_inline(request_id)
    assert result.status == "published"
    read_record(result.household_ref, "dibao", None, caseworker)
    return {"head": head, "hh": hh, "caseworker": caseworker, "request_id": request_id,
            "household_ref": result.household_ref}


def _resolved(person_id_number: str) -> list[audit.Entry]:
    return audit.resolve(audit.timeline(keyring().pseudonym(person_id_number), limit=500))


def test_a_lookup_and_a_read_show_account_department_purpose_and_case(seeded):
    for person in (m for m in seeded["hh"].members if m.status == "normal"):  # every member's timeline
        rows = _resolved(person.id_number)
        lookup = next(e for e in rows if e.kind == "household.lookup")
        read = next(e for e in rows if e.kind == "record.read")
        for e in (lookup, read):
            assert (e.account, e.department, e.purpose, e.case_ref) == (
                "王丽 立山区民政局", DEPARTMENT, "dibao", CASE_REF), (e.kind, e)
            assert not e.automatic
        assert read.request_id == seeded["request_id"] and read.fields  # what the read returned
        assert lookup.sources == ("household",)
    rows = _resolved(seeded["head"].id_number)
    kinds = {e.kind for e in rows}
    assert {"entrustment.received", "authorization.granted", "consent.allowed", "fetch.completed",
            "validation.completed", "record.published", "record.read", "household.lookup"} <= kinds
    # the hub's own steps for the request: its department, purpose and case, no account
    fetch = next(e for e in rows if e.kind == "fetch.completed")
    assert (fetch.account, fetch.automatic, fetch.department, fetch.case_ref) == (None, True, DEPARTMENT, CASE_REF)
    received = next(e for e in rows if e.kind == "entrustment.received")
    assert received.account == "王丽 立山区民政局"  # the request's own account


def test_names_and_cases_are_resolved_in_one_query_per_table(seeded):
    rows = audit.timeline(keyring().pseudonym(seeded["head"].id_number), limit=500)
    assert len(rows) > 10 and len({e.payload.get("request_id") for e in rows}) >= 1
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(engine(), "before_cursor_execute", count)
    try:
        audit.resolve(rows)
    finally:
        event.remove(engine(), "before_cursor_execute", count)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 2, selects  # the requests, then the clients



def test_integrity_is_amber_with_the_count_until_a_checkpoint_is_signed(seeded):
    auditor, _ = create_client("审计 李明", "auditor")
    audit.sign_checkpoint(auditor.id)
    assert audit.integrity()["state"] == "green"
    read_record(seeded["household_ref"], "dibao", None, seeded["caseworker"])
    read_record(seeded["household_ref"], "dibao", None, seeded["caseworker"])
    check = audit.integrity()
    assert (check["state"], check["intact"], check["entries_after_checkpoint"]) == ("amber", True, 2)

    signed = audit.sign_checkpoint(auditor.id)
    check = audit.integrity()
    assert (check["state"], check["entries_after_checkpoint"]) == ("green", 0)
    assert check["checkpoint"]["number"] == signed["number"] and check["checkpoint"]["size"] == check["events"]
    with session() as s:  # the auditor's signing is itself an entry, under the checkpoint it asked for
        last = s.query(LedgerEvent).filter(LedgerEvent.kind == audit.CHECKPOINT_SIGNED).order_by(
            LedgerEvent.seq.desc()).first()
        assert last.payload == {"client_id": auditor.id} and last.seq <= signed["size"]
