"""一证通办: a household's members from one ID number, the case number and the applicant's signed form itself, against
the simulated agencies over HTTP: the form checked and kept encrypted, every lookup (refused, over the department's
hourly limit, or asked) in the ledger and in the persons' timelines, the limit held in the store."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from agencies.population import household_in_population
from agencies.server import AgencyServer
from hub.services import audit
from hub.services import lookup
from hub.services.clients import create_client
from core.crypto import DecryptionFailed, keyring
from hub.services.lookup import (BadLookup, LookupUnavailable, Member, NotRegistered, RateLimited, SignedForm,
                        household_members)
from core.store import LedgerEvent, aad_signed_form, session, utcnow
from core.store import SignedForm as SignedFormRow
from schemas.codes import id_check_char
from tests.support.servers import rate_limits_off
from tests.support.connectors import FAST

SEED, N = 7, 50  # as the `agencies` fixture
DEPARTMENT = "MZ-210399"  # this module's own: the hourly limit counts per department across the session's store
STRANGER = "21038119500101123" + id_check_char("21038119500101123")  # valid, in no generated household
DOWN = "http://127.0.0.1:9/"  # nothing listens


def pdf(tag: str = "the applicant", size: int = 2048) -> bytes:
    """A PDF of ``size`` bytes: its header, a body, its end-of-file marker."""
    head, tail = b"%PDF-1.4\n% a scan of the form signed by " + tag.encode() + b"\n", b"\n%%EOF\n"
    return head + b"0" * (size - len(head) - len(tail)) + tail


PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 2048
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 2048
FORM = SignedForm("application/pdf", pdf())
ARGS = dict(department=DEPARTMENT, client_id="client-1", purpose="dibao", case_ref="MZ-2026-0001", signed_form=FORM)


def _entries() -> list[LedgerEvent]:
    with session() as s:
        return list(s.scalars(select(LedgerEvent).where(LedgerEvent.kind == lookup.LEDGER_KIND)
                              .order_by(LedgerEvent.seq)))


def _count() -> int:
    with session() as s:
        return s.scalar(select(func.count()).select_from(LedgerEvent).where(LedgerEvent.kind == lookup.LEDGER_KIND))


def _forms() -> int:
    with session() as s:
        return s.scalar(select(func.count()).select_from(SignedFormRow))


def _no_personal_data(payload: dict, people) -> None:
    text = json.dumps(payload, ensure_ascii=False)
    for p in people:
        assert p.id_number not in text and p.id_number.lower() not in text and p.name not in text


def _body(id_number: str, form: bytes | None = None, media_type: str = "application/pdf", **extra) -> dict:
    body = {"id_number": id_number, "purpose": "dibao", "case_ref": "MZ-2026-0042", **extra}
    if form is not None:
        body["signed_form"] = {"media_type": media_type, "content_base64": base64.b64encode(form).decode()}
    return body


@pytest.fixture
def fast(monkeypatch):
    monkeypatch.setattr(lookup, "POLICY", FAST)


@pytest.fixture(scope="module")
def _no_api_rate_limit():
    yield from rate_limits_off("HUB_AIRFLOW_URL")


@pytest.fixture
def api(_no_api_rate_limit):
    from hub.web.app import create_app

    return TestClient(create_app())


def _department(code: str | None = None) -> tuple[str, dict]:
    """A department of its own (the hourly limit is per department) and its bearer header."""
    code = code or f"MZ-T{uuid.uuid4().hex[:8].upper()}"
    return code, {"Authorization": f"Bearer {create_client(f'caseworker {code}', 'department', code)[1]}"}


# -- the lookup itself ------------------------------------------------------------------------------------------
def test_a_known_applicant_gets_exactly_the_members_of_their_household(agencies):
    hh = household_in_population(SEED, N, 13)  # head, spouse (moved out), daughter
    applicant = next(p for p in hh.members if p.relation == "daughter")
    members = household_members(applicant.id_number, **ARGS)
    assert all(isinstance(m, Member) for m in members)
    expected = {p.id_number: p for p in hh.members}
    assert sorted(m.id_number for m in members) == sorted(expected)
    for m in members:
        p = expected[m.id_number]
        assert (m.name, m.sex, m.birth_date, m.relation, m.status) == \
            (p.name, p.sex, p.birth_date, p.relation, p.status)
    # normal status first, the others kept with their status
    assert [m.relation for m in members] == ["head", "daughter", "spouse"]
    assert [m.status for m in members] == ["normal", "normal", "moved_out"]
    assert applicant.id_number not in repr(members) and applicant.name not in repr(members)

    entry = _entries()[-1]
    keys = keyring()
    assert entry.payload["outcome"] == "found" and entry.payload["failure"] is None
    assert entry.payload["applicant_ref"] == keys.pseudonym(applicant.id_number)
    assert entry.payload["member_refs"] == [keys.pseudonym(m.id_number) for m in members]
    assert {k: entry.payload[k] for k in ("department", "client_id", "purpose", "case_ref")} == \
        {k: ARGS[k] for k in ("department", "client_id", "purpose", "case_ref")}
    _no_personal_data(entry.payload, hh.members)
    stats = agencies.stats()["household"]
    assert stats["member_queries"] == stats["served"] == 1


def test_the_signed_form_is_kept_encrypted_and_its_hash_and_the_case_are_in_the_ledger(agencies):
    hh = household_in_population(SEED, N, 0)
    document = pdf("the head of household 0", 3000)
    household_members(hh.members[0].id_number, **{**ARGS, "signed_form": SignedForm("application/pdf", document),
                                                  "case_ref": "MZ-2026-0777"})
    entry = _entries()[-1]
    assert entry.payload["evidence_sha256"] == hashlib.sha256(document).hexdigest()
    assert entry.payload["case_ref"] == "MZ-2026-0777" and entry.payload["outcome"] == "found"
    stored = lookup.stored_form(entry.payload["signed_form_id"])
    assert stored.content == document and stored.media_type == "application/pdf"
    with session() as s:
        row = s.get(SignedFormRow, entry.payload["signed_form_id"])
        s.expunge(row)
    assert (row.sha256, row.size, row.department, row.case_ref, row.lookup_id) == \
        (entry.payload["evidence_sha256"], 3000, DEPARTMENT, "MZ-2026-0777", entry.payload["lookup_id"])
    assert b"signed by the head" not in row.content_enc.encode() and base64.b64encode(document)[:40].decode() \
        not in row.content_enc
    with pytest.raises(DecryptionFailed):  # bound to its row
        keyring().decrypt(row.content_enc, aad=aad_signed_form("0" * 32))


def test_relations_and_statuses_follow_household_registration(agencies):
    hh = household_in_population(SEED, N, 3)  # a deceased parent among them
    members = household_members(hh.members[0].id_number, **ARGS)
    assert sorted(m.relation for m in members) == sorted(p.relation for p in hh.members)
    assert [m.status for m in members][-1] == "deceased"
    assert sum(m.relation == "head" for m in members) == 1


def test_an_unknown_person_is_not_registered_and_logged_as_not_found(agencies):
    before = _count()
    with pytest.raises(NotRegistered) as exc:
        household_members(STRANGER, **ARGS)
    assert STRANGER not in str(exc.value)
    entries = _entries()
    assert len(entries) == before + 1
    assert entries[-1].payload["outcome"] == "not_found" and entries[-1].payload["member_refs"] == []
    assert STRANGER not in json.dumps(entries[-1].payload)


# -- refused: nothing asked, a ledger entry naming the field, never a value -------------------------------------
def test_a_wrong_check_character_is_refused_before_any_call(agencies):
    good = household_in_population(SEED, N, 0).members[0].id_number
    bad = good[:17] + ("0" if good[17] != "0" else "1")
    before, forms = _count(), _forms()
    with pytest.raises(BadLookup, match="id_number") as exc:
        household_members(bad, **ARGS)
    assert bad not in str(exc.value) and bad[:17] not in str(exc.value)
    assert agencies.stats()["household"]["requests"] == 0 and _forms() == forms
    entries = _entries()
    assert len(entries) == before + 1
    refused = entries[-1].payload
    assert (refused["outcome"], refused["why"], refused["applicant_ref"]) == ("refused", "id_number", None)
    assert bad not in json.dumps(refused) and bad[:17] not in json.dumps(refused)


@pytest.mark.parametrize("form,why", [
    (None, "signed_form"),  # a bare hash, or nothing
    (SignedForm("application/pdf", b""), "signed_form"),
    (SignedForm("application/pdf", PNG), "signed_form"),  # a PNG said to be a PDF
    (SignedForm("image/png", JPEG), "signed_form"),
    (SignedForm("image/jpeg", pdf()), "signed_form"),
    (SignedForm("application/pdf", pdf()[:-8] + b"\n" * 8), "signed_form"),  # cut short: no %%EOF
    (SignedForm("application/pdf", pdf(size=1023)), "signed_form"),  # too small
    (SignedForm("application/pdf", pdf(size=5 * 1024 * 1024 + 1)), "signed_form"),  # too large
    (SignedForm("text/plain", b"x" * 2048), "signed_form.media_type"),
    (lookup.form_from_base64("application/pdf", "not base64!"), "signed_form.content_base64"),
])
def test_a_missing_form_or_one_that_is_not_what_it_says_is_refused(agencies, form, why):
    applicant = household_in_population(SEED, N, 0).members[0].id_number
    before, forms = _count(), _forms()
    with pytest.raises(BadLookup) as exc:
        household_members(applicant, **{**ARGS, "signed_form": form, "evidence_sha256": "ab" * 32})
    assert exc.value.field == why and str(exc.value).startswith(why + ":") and applicant not in str(exc.value)
    assert agencies.stats()["household"]["requests"] == 0 and _forms() == forms
    entries = _entries()
    assert len(entries) == before + 1
    refused = entries[-1].payload
    assert (refused["outcome"], refused["why"], refused["evidence_sha256"]) == ("refused", why, None)
    assert refused["applicant_ref"] == keyring().pseudonym(applicant) and applicant not in json.dumps(refused)


@pytest.mark.parametrize("media_type,document", [("application/pdf", pdf()), ("image/png", PNG),
                                                 ("image/jpeg", JPEG)])
def test_pdf_png_and_jpeg_forms_are_accepted(agencies, media_type, document):
    hh = household_in_population(SEED, N, 1)
    members = household_members(hh.members[0].id_number, **{**ARGS, "signed_form": SignedForm(media_type, document)})
    assert len(members) == len(hh.members)
    assert lookup.stored_form(_entries()[-1].payload["signed_form_id"]) == SignedForm(media_type, document)


@pytest.mark.parametrize("evidence", ["", "abc", "ab" * 32, hashlib.sha256(b"another form").hexdigest(), ["a list"]])
def test_a_hash_that_is_not_the_forms_is_refused(agencies, evidence):
    applicant = household_in_population(SEED, N, 0).members[0].id_number
    with pytest.raises(BadLookup, match="evidence_sha256") as exc:
        household_members(applicant, **{**ARGS, "evidence_sha256": evidence})
    assert applicant not in str(exc.value) and exc.value.field == "evidence_sha256"
    assert agencies.stats()["household"]["requests"] == 0
    refused = _entries()[-1].payload
    assert refused["why"] == "evidence_sha256" and refused["evidence_sha256"] == FORM.sha256  # the form's own
    # the form's own hash, in any case, is welcome
    household_members(applicant, **{**ARGS, "evidence_sha256": FORM.sha256.upper()})
    assert _entries()[-1].payload["outcome"] == "found"


@pytest.mark.parametrize("field,value", [("purpose", "shopping"), ("purpose", ["dibao"]), ("case_ref", ""),
                                         ("case_ref", "x" * 65), ("case_ref", "a\x00b"),
                                         ("case_ref", "MZ-" + "11010519491231002X")])
def test_other_bad_input_is_refused_and_logged(agencies, field, value):
    before = _count()
    with pytest.raises(BadLookup, match=field):
        household_members(household_in_population(SEED, N, 0).members[0].id_number, **{**ARGS, field: value})
    refused = _entries()[-1].payload
    assert _count() == before + 1 and refused["why"] == field and refused[field] is None
    assert "11010519491231002X" not in json.dumps(refused)


@pytest.mark.parametrize("field,value", [("department", "mz 1"), ("department", "11010519491231002X"),
                                         ("client_id", "")])
def test_a_malformed_caller_is_refused_and_not_logged(agencies, field, value):
    before = _count()
    with pytest.raises(BadLookup, match=field):
        household_members(household_in_population(SEED, N, 0).members[0].id_number, **{**ARGS, field: value})
    assert _count() == before


# -- unavailable ---------------------------------------------------------------------------------------------
def test_a_down_household_agency_is_unavailable_and_logged(fast, monkeypatch, caplog):
    server = AgencyServer.from_hub_home(households=N, seed=SEED, faults="down:household").start()
    monkeypatch.setenv("HUB_AGENCIES_URL", server.url)
    hh = household_in_population(SEED, N, 0)
    before = _count()
    try:
        with pytest.raises(LookupUnavailable) as exc:
            household_members(hh.members[0].id_number, **ARGS)
    finally:
        server.stop()
    assert exc.value.source == "household" and exc.value.failure in ("UNREACHABLE", "CIRCUIT_OPEN")
    assert str(exc.value) == f"household: {exc.value.failure}"
    entries = _entries()
    assert len(entries) == before + 1
    assert entries[-1].payload["outcome"] == "unavailable" and entries[-1].payload["failure"] == exc.value.failure
    _no_personal_data(entries[-1].payload, hh.members)
    assert all(p.id_number not in caplog.text and p.name not in caplog.text for p in hh.members)


def test_an_unusable_answer_is_unavailable_not_a_wrong_household(fast, monkeypatch):
    server = AgencyServer.from_hub_home(households=N, seed=SEED, faults="dirty",
                                        fault_rates={"row": 0.0, "response": 0.0, "check_digit": 1.0}).start()
    monkeypatch.setenv("HUB_AGENCIES_URL", server.url)
    hh = household_in_population(SEED, N, 5)
    try:
        with pytest.raises(LookupUnavailable, match="BAD_RESPONSE"):
            household_members(hh.members[0].id_number, **ARGS)
    finally:
        server.stop()
    entry = _entries()[-1]
    assert (entry.payload["outcome"], entry.payload["failure"]) == ("unavailable", "BAD_RESPONSE")
    _no_personal_data(entry.payload, hh.members)


# -- the persons' timelines ------------------------------------------------------------------------------------
def test_the_applicants_and_every_members_timeline_show_the_lookup(database, agencies):
    hh = household_in_population(SEED, N, 13)
    applicant = next(p for p in hh.members if p.relation == "daughter")
    household_members(applicant.id_number, **ARGS)
    found = _entries()[-1]
    keys = keyring()
    for person in hh.members:  # the applicant, and each member (the moved-out spouse too)
        rows = audit.timeline(keys.pseudonym(person.id_number))
        assert found.seq in [e.seq for e in rows], person.relation
    with pytest.raises(BadLookup):  # a refused lookup names the applicant too
        household_members(applicant.id_number, **{**ARGS, "signed_form": None})
    refused = _entries()[-1]
    assert refused.seq in [e.seq for e in audit.timeline(keys.pseudonym(applicant.id_number))]
    assert found.seq not in [e.seq for e in audit.timeline(keys.pseudonym(STRANGER))]
    head = next(p for p in hh.members if p.relation == "head")
    assert refused.seq not in [e.seq for e in audit.timeline(keys.pseudonym(head.id_number))]


# -- the department's hourly limit -----------------------------------------------------------------------------
def test_the_31st_lookup_within_an_hour_is_refused_with_429_logged_and_unusual(agencies, api, monkeypatch):
    monkeypatch.delenv("HUB_LOOKUP_PER_HOUR", raising=False)
    code, auth = _department()
    _, other = _department()
    since = utcnow().replace(microsecond=0)  # as the ledger records moments
    hh = household_in_population(SEED, N, 2)
    idn = hh.members[0].id_number
    for i in range(30):
        resp = api.post("/v1/household-lookup", json=_body(idn, pdf(f"lookup {i}")), headers=auth)
        assert resp.status_code == 200, (i, resp.text)
    forms, calls = _forms(), agencies.stats()["household"]["requests"]
    over = api.post("/v1/household-lookup", json=_body(idn, pdf("lookup 31")), headers=auth)
    assert over.status_code == 429
    assert 3500 < int(over.headers["retry-after"]) <= 3600  # when the first of the hour leaves the window
    error = over.json()["error"]
    assert error["code"] == "lookup_rate_limited" and error["field"] is None and "30" in error["message"]
    assert set(over.json()) == {"error"} and idn not in over.text  # the API's one error body
    assert _forms() == forms and agencies.stats()["household"]["requests"] == calls  # nothing kept, nothing asked
    entry = _entries()[-1].payload
    assert (entry["outcome"], entry["department"], entry["limit"], entry["signed_form_id"]) == \
        ("rate_limited", code, 30, None)
    assert entry["evidence_sha256"] == hashlib.sha256(pdf("lookup 31")).hexdigest()
    assert entry["applicant_ref"] == keyring().pseudonym(idn)
    _no_personal_data(entry, hh.members)
    # another department is not limited by this one's lookups
    assert api.post("/v1/household-lookup", json=_body(idn, pdf()), headers=other).status_code == 200
    # the auditors see it among unusual reads
    monkeypatch.setattr(audit, "OFFICE_HOURS", (0, 24))  # whatever the hour now
    unusual = [u for u in audit.unusual_reads(since) if u.department == code]
    assert [u.kind for u in unusual] == ["lookup_rate_limited"]
    assert "30 per hour" in unusual[0].detail
    auditor = {"Authorization": f"Bearer {create_client('auditor (lookups)', 'auditor')[1]}"}
    items = api.get("/v1/audit/unusual-reads", params={"since": since.isoformat()}, headers=auditor).json()["items"]
    assert {(u["kind"], u["department"]) for u in items} >= {("lookup_rate_limited", code)}


def test_the_limit_is_the_settings_and_holds_for_concurrent_lookups(database, monkeypatch):
    """Lookups of one department at once (as from several API workers): exactly the limit gets through."""
    monkeypatch.setenv("HUB_LOOKUP_PER_HOUR", "4")
    monkeypatch.setenv("HUB_AGENCIES_URL", DOWN)  # each lookup is kept and counted, then finds the agency down
    department = f"MZ-C{uuid.uuid4().hex[:8].upper()}"
    idn = household_in_population(SEED, N, 0).members[0].id_number
    outcomes: list[str] = []
    start = threading.Barrier(10)

    def one(i: int) -> None:
        start.wait()
        try:
            household_members(idn, **{**ARGS, "department": department, "client_id": f"worker-{i}"})
        except RateLimited:
            outcomes.append("rate_limited")
        except LookupUnavailable:
            outcomes.append("asked")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(outcomes) == ["asked"] * 4 + ["rate_limited"] * 6
    with session() as s:
        assert s.scalar(select(func.count()).select_from(SignedFormRow)
                        .where(SignedFormRow.department == department)) == 4
    monkeypatch.setenv("HUB_LOOKUP_PER_HOUR", "none")
    with pytest.raises(ValueError, match="HUB_LOOKUP_PER_HOUR"):
        household_members(idn, **{**ARGS, "department": department})


def test_lookups_refused_or_many_by_one_department_are_unusual_reads(monkeypatch):
    monkeypatch.setenv("HUB_AGENCIES_URL", DOWN)
    department = f"MZ-B{uuid.uuid4().hex[:8].upper()}"
    idn = household_in_population(SEED, N, 0).members[0].id_number
    since = utcnow().replace(microsecond=0)  # as the ledger records moments
    with pytest.raises(BadLookup):
        household_members(idn, **{**ARGS, "department": department, "signed_form": None, "evidence_sha256": "ab" * 32})
    for client_id in ("client-a", "client-a", "client-b", "client-b"):  # two each: neither client alone is bulk
        with pytest.raises(LookupUnavailable):
            household_members(idn, **{**ARGS, "department": department, "client_id": client_id})
    monkeypatch.setattr(audit, "BULK_PER_HOUR", 3)
    monkeypatch.setattr(audit, "OFFICE_HOURS", (0, 24))  # whatever the hour now
    mine = [u for u in audit.unusual_reads(since) if u.department == department]
    assert [u.kind for u in mine] == ["bulk", "lookup_refused"]  # newest first
    assert mine[0].detail == "4 household lookups by the department within an hour"
    assert "signed_form" in mine[-1].detail and idn not in json.dumps([u.detail for u in mine])


# -- over HTTP: the document in the body, errors in the API's error body ---------------------------------------
def test_the_api_takes_the_form_itself_and_refuses_a_bare_hash(agencies, api):
    _, auth = _department()
    hh = household_in_population(SEED, N, 4)
    idn = hh.members[0].id_number
    before = _count()
    bare = api.post("/v1/household-lookup", json={"id_number": idn, "purpose": "dibao", "case_ref": "MZ-1",
                                                  "evidence_sha256": "ab" * 32}, headers=auth)
    error = bare.json()["error"]
    assert bare.status_code == 422 and (error["code"], error["field"]) == ("invalid_lookup", "signed_form")
    assert error["details"] == [{"code": "invalid_lookup", "field": "signed_form", "message": error["message"]}]
    not_a_pdf = api.post("/v1/household-lookup", json=_body(idn, PNG), headers=auth)
    assert not_a_pdf.status_code == 422 and not_a_pdf.json()["error"]["field"] == "signed_form"
    assert "not a PDF" in not_a_pdf.json()["error"]["message"]
    garbled = api.post("/v1/household-lookup", json={**_body(idn, pdf()), "signed_form": {
        "media_type": "application/pdf", "content_base64": "%PDF-1.4 not base64"}}, headers=auth)
    assert garbled.status_code == 422 and garbled.json()["error"]["field"] == "signed_form.content_base64"
    other_hash = api.post("/v1/household-lookup", json=_body(idn, pdf(), evidence_sha256="ab" * 32), headers=auth)
    assert other_hash.status_code == 422 and other_hash.json()["error"]["field"] == "evidence_sha256"
    no_case = api.post("/v1/household-lookup", json={**_body(idn, pdf()), "case_ref": None}, headers=auth)
    assert no_case.status_code == 422 and no_case.json()["error"]["field"] == "case_ref"
    wrong_type = api.post("/v1/household-lookup", json=_body(idn, pdf(), media_type="text/plain"), headers=auth)
    assert wrong_type.status_code == 422  # the body's shape: media_type is one of three
    assert agencies.stats()["household"]["requests"] == 0
    assert [e.payload["why"] for e in _entries()[before:]] == ["signed_form", "signed_form",
                                                                 "signed_form.content_base64", "evidence_sha256",
                                                                 "case_ref"]

    ok = api.post("/v1/household-lookup", json=_body(idn, pdf("the API"), evidence_sha256=hashlib.sha256(
        pdf("the API")).hexdigest()), headers=auth)
    assert ok.status_code == 200, ok.text
    assert sorted(m["id_number"] for m in ok.json()["members"]) == sorted(p.id_number for p in hh.members)
    entry = _entries()[-1].payload
    assert entry["outcome"] == "found" and entry["case_ref"] == "MZ-2026-0042"
    assert lookup.stored_form(entry["signed_form_id"]).content == pdf("the API")
    unknown = api.post("/v1/household-lookup", json=_body(STRANGER, pdf()), headers=auth)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_registered"
    for resp in (bare, not_a_pdf, garbled, other_hash, no_case, wrong_type, unknown):
        for p in hh.members:
            assert p.id_number not in resp.text and p.name not in resp.text
        assert STRANGER not in resp.text
    for e in _entries()[before:]:
        _no_personal_data(e.payload, hh.members)
        assert STRANGER not in json.dumps(e.payload)


def test_a_form_up_to_its_limit_passes_the_apis_body_limit_and_no_more(agencies, api):
    """The API's bodies are limited (HUB_API_MAX_BODY_BYTES, 1 MiB); a lookup's may carry a 5 MiB form in base64."""
    _, auth = _department()
    idn = household_in_population(SEED, N, 4).members[0].id_number
    biggest = pdf("a large scan", lookup.FORM_MAX_BYTES)
    ok = api.post("/v1/household-lookup", json=_body(idn, biggest), headers=auth)
    assert ok.status_code == 200, ok.text[:200]
    assert lookup.stored_form(_entries()[-1].payload["signed_form_id"]).content == biggest
    too_big = api.post("/v1/household-lookup", content=b"{" + b" " * (lookup.MAX_BODY_BYTES + 1) + b"}",
                       headers={**auth, "Content-Type": "application/json"})
    assert too_big.status_code == 413
    assert api.post("/v1/requests", content=b"{" + b" " * (2 * 1024 * 1024) + b"}",
                    headers={**auth, "Content-Type": "application/json"}).status_code == 413  # other routes: 1 MiB


def test_the_openapi_description_requires_the_form_and_lists_the_codes(api):
    spec = api.get("/openapi.json").json()
    body = spec["components"]["schemas"]["LookupIn"]
    assert {"id_number", "purpose", "case_ref", "signed_form"} <= set(body["required"])
    assert "evidence_sha256" not in body["required"]
    answers = spec["paths"]["/v1/household-lookup"]["post"]["responses"]
    assert "lookup_rate_limited" in answers["429"]["description"] and "Retry-After" in answers["429"]["headers"]
    assert "invalid_lookup" in answers["422"]["description"]
