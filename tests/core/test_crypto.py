"""Persons' pseudonyms as departments see them: one key per department, so two departments cannot link their
people; stable for one department; the hub's own pseudonyms stay inside the hub (auditors, the ledger)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from hub.web.app import create_app
from hub.services.clients import create_client
from core.crypto import keyring
from hub.stages.pipeline import run_inline
from hub.rules.policy import scope_persons
from tests.support.households import sample

K = 44  # a household no other module reads through the API


def _ids(record: dict) -> tuple[set[str], set[str]]:
    content = record["content"]
    members = {m["person_ref"] for m in content["members"]}
    facts = {f["person_ref"] for rows in content["facts"].values() for f in rows}
    return members, facts


def test_two_departments_read_the_same_people_under_pseudonyms_that_do_not_link(agencies):
    api = TestClient(create_app())
    tokens = {code: create_client(f"caseworker {code}", "department", code)[1] for code in ("MZ-210305", "MZ-210306")}
    reads = {}
    for code, token in tokens.items():
        auth = {"Authorization": f"Bearer {token}"}
        created = api.post("/v1/requests", json=sample(K, department=code, sources=["household", "tax", "bank"]),
                           headers=auth).json()
        hh = run_inline(created["id"]).household_ref
        reads[code] = [api.get(f"/v1/households/{hh}/record", params={"purpose": "dibao"}, headers=auth).json()
                       for _ in range(2)]
    a, b = (reads[c] for c in tokens)
    assert _ids(a[0]) == _ids(a[1]) and _ids(b[0]) == _ids(b[1])  # stable for one department
    a_members, a_facts = _ids(a[0])
    b_members, b_facts = _ids(b[0])
    assert len(a_members) == len(b_members) >= 2 and a_members.isdisjoint(b_members)  # not linkable
    assert a_facts <= a_members and b_facts <= b_members  # consistent within one department's view
    hub_refs = {keyring().pseudonym(m["id_number"]) for m in sample(K)["members"]}
    assert hub_refs.isdisjoint(a_members | b_members)  # the hub's own pseudonyms do not leave it
    names = lambda r: sorted(m["name"] for m in r["content"]["members"])  # noqa: E731
    assert names(a[0]) == names(b[0])


def test_every_person_reference_in_a_view_is_rekeyed():
    view = {"members": [{"person_ref": "p_1", "name": "x"}], "discrepancies": [{"person_ref": "p_2", "kind": "k"}],
            "assessment": {"screening": {"tekun": {"reasons": [{"code": "C", "values": {"persons": ["p_1", "p_3"]}}]}}},
            "household_ref": "hh_1"}
    out = scope_persons(view, lambda ref: ref.upper())
    assert out == {"members": [{"person_ref": "P_1", "name": "x"}], "discrepancies": [{"person_ref": "P_2", "kind": "k"}],
                   "assessment": {"screening": {"tekun": {"reasons": [{"code": "C", "values": {"persons": ["P_1", "P_3"]}}]}}},
                   "household_ref": "hh_1"}
