"""The preview of the gate's refusals under a draft authorization (consent.preview): what the caseworker's forms
step shows before submit. It must say what the gate will say: a draft stored as an authorization and asked of the
gate member by member and source by source gives the same refusals."""

from __future__ import annotations

import datetime as dt

from consent.authorizations import views
from consent.gate import Reason, decide
from consent.preview import refusals
from core.crypto import keyring
from core.store import session
from hub.stages.intake import create_request
from schemas.codes import id_check_char

NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.timezone.utc)
SOURCES = ["household", "tax", "bank", "securities"]
FINANCIAL = {"bank", "securities"}
H = "a" * 64  # a form's SHA-256


def idn(born: str, seq: str) -> str:
    first = "210302" + born + seq
    return first + id_check_char(first)


ADULT, SPOUSE, CHILD = idn("19800101", "123"), idn("19820202", "224"), idn("20150303", "335")


def doc(*consents, start=NOW) -> dict:
    return {"valid_from": start.isoformat(), "valid_until": (start + dt.timedelta(days=30)).isoformat(),
            "consents": list(consents)}


def fin(sources=FINANCIAL, h="b" * 64) -> dict:
    return {"sources": sorted(sources), "evidence_sha256": h}


def test_a_complete_draft_refuses_nothing():
    d = doc({"id_number": ADULT, "sources": SOURCES, "evidence_sha256": H, "financial_consent": fin()},
            {"id_number": CHILD, "sources": SOURCES, "guardian_id_number": ADULT, "financial_consent": fin()})
    assert refusals(d, [ADULT, CHILD], SOURCES) == {ADULT: {}, CHILD: {}}


def test_each_missing_form_is_refused_with_the_gates_reason():
    d = doc({"id_number": ADULT, "sources": SOURCES, "evidence_sha256": H},  # no financial consent
            {"id_number": SPOUSE, "sources": SOURCES},  # an adult who did not sign
            {"id_number": CHILD, "sources": SOURCES, "guardian_id_number": SPOUSE, "financial_consent": fin()})
    out = refusals(d, [ADULT, SPOUSE, CHILD, idn("19700101", "446")], SOURCES)
    assert out[ADULT] == {s: Reason.FINANCIAL_CONSENT_MISSING for s in FINANCIAL}
    assert out[SPOUSE] == {"household": Reason.ADULT_WITHOUT_OWN_CONSENT, "tax": Reason.ADULT_WITHOUT_OWN_CONSENT,
                           "bank": Reason.FINANCIAL_CONSENT_MISSING, "securities": Reason.FINANCIAL_CONSENT_MISSING}
    # the guardian did not sign: the minor is refused everything, whatever the financial consent says
    assert out[CHILD] == {s: Reason.MINOR_WITHOUT_GUARDIAN for s in SOURCES}
    assert set(out[idn("19700101", "446")].values()) == {Reason.MEMBER_NOT_NAMED}


def test_a_minor_turning_18_during_the_draft_is_judged_on_its_first_day():
    teen = idn("20080601", "557")  # 18 on 2026-06-01
    consents = ({"id_number": ADULT, "sources": SOURCES, "evidence_sha256": H, "financial_consent": fin()},
                {"id_number": teen, "sources": SOURCES, "guardian_id_number": ADULT, "financial_consent": fin()})
    assert set(refusals(doc(*consents), [teen], SOURCES)[teen].values()) == {Reason.ADULT_WITHOUT_OWN_CONSENT}
    assert refusals(doc(*consents, start=NOW - dt.timedelta(days=1)), [teen], SOURCES)[teen] == {}


def test_the_preview_says_what_the_gate_says_of_the_stored_authorization():
    start = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    consents = [{"id_number": ADULT, "sources": SOURCES, "evidence_sha256": H, "financial_consent": fin()},
                {"id_number": SPOUSE, "sources": SOURCES, "evidence_sha256": "c" * 64},
                {"id_number": CHILD, "sources": SOURCES, "guardian_id_number": SPOUSE,
                 "financial_consent": fin({"bank"})}]
    draft = doc(*consents, start=start)
    request_id = create_request({
        "department": "MZ-210399", "purpose": "dibao", "case_ref": "PREVIEW-1", "sources": SOURCES,
        "members": [{"id_number": i, "name": n, "relation": r}
                    for i, n, r in ((ADULT, "甲", "head"), (SPOUSE, "乙", "spouse"), (CHILD, "丙", "son"))],
        "authorization": draft})
    with session() as s:
        auths = views(s, request_id)
    keys, at = keyring(), start + dt.timedelta(minutes=1)
    preview = refusals(draft, [ADULT, SPOUSE, CHILD], SOURCES, at)
    for person in (ADULT, SPOUSE, CHILD):
        gate = {}
        for source in SOURCES:
            d = decide(keys.pseudonym(person), source, "dibao", "MZ-210399", at, auths)
            if not d.allowed:
                gate[source] = d.reason
        assert preview[person] == gate, person
    assert preview[SPOUSE] and preview[CHILD] == {"securities": Reason.FINANCIAL_CONSENT_MISSING}


def test_a_draft_naming_something_that_is_not_an_id_number_is_refused_not_a_crash():
    doc = {"valid_from": NOW.isoformat(), "valid_until": (NOW + dt.timedelta(days=1)).isoformat(),
           "consents": [{"id_number": "not-an-id", "sources": SOURCES, "evidence_sha256": H},
                        {"id_number": ADULT, "sources": SOURCES, "evidence_sha256": H,
                         "financial_consent": {"sources": sorted(FINANCIAL), "evidence_sha256": H}}]}
    found = refusals(doc, ["not-an-id", ADULT], SOURCES, NOW)
    assert found["NOT-AN-ID"] == {s: Reason.MEMBER_NOT_NAMED for s in SOURCES}
    assert found[ADULT] == {}
