"""Household registration's second operation, 户成员查询: one ID number in, the whole household out."""

from __future__ import annotations

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agencies.population import household_in_population
from agencies.server import AgencyServer
from connectors.auth import Credential, credentials_path, load_credentials, request_headers
from schemas.contracts import SPECS, to_wire
from connectors.wire import build_request
from core.settings import settings
from core.crypto import keyring
from schemas.codes import id_check_char

SEED, N = 7, 50
SPEC = SPECS["household"]


def _post(server: AgencyServer, ids: list[str], *, credential: Credential | None = None, signing_key=None,
          auth_ref: str = "lookup-1", headers: dict | None = None, path: str | None = None) -> requests.Response:
    url = server.base_url("household") + (path or SPEC.members_path)
    body = build_request(SPEC, ids)
    h = headers if headers is not None else request_headers(
        method="POST", path=requests.utils.urlparse(url).path, body=body, auth_ref=auth_ref,
        credential=credential or load_credentials(credentials_path(settings().home))["household"],
        signing_key=signing_key or keyring().signing_key)
    return requests.post(url, data=body, headers=h, timeout=10)


def _expected(hh) -> list[dict]:
    return [to_wire(SPEC, {"id_number": p.id_number, "name": p.name, "sex": p.sex,
                           "birth_date": p.birth_date.isoformat(), "household_no": hh.household_no,
                           "relation": p.relation, "status": p.status, "address_code": p.address_code})
            for p in hh.members]


def test_the_path_is_declared_and_listed_in_the_index(agencies):
    assert SPEC.members_path and SPEC.members_path != SPEC.path
    index = {s["key"]: s for s in requests.get(agencies.url, timeout=5).json()["sources"]}
    assert index["household"]["members_path"] == SPEC.members_path
    assert "members_path" not in index["tax"]


@pytest.mark.parametrize("k", [0, 13])
def test_any_member_gets_every_member_of_their_household_as_wire_rows(agencies, k):
    hh = household_in_population(SEED, N, k)
    for p in hh.members:
        resp = _post(agencies, [p.id_number])
        assert resp.status_code == 200
        doc = resp.json()
        assert doc["code"] == "0000" and doc["notFound"] == []
        assert doc["data"] == _expected(hh)
        assert set(doc["data"][0]) == set(SPEC.fields.values())
    stats = agencies.stats()["household"]
    assert stats["member_queries"] == stats["served"] == len(hh.members)


def test_an_unknown_person_is_the_agencies_not_found_answer(agencies):
    stranger = "21038119500101123" + id_check_char("21038119500101123")
    doc = _post(agencies, [stranger]).json()
    assert doc["code"] == "0000" and doc["data"] == [] and doc["notFound"] == [stranger]


def test_exactly_one_id_number_per_query(agencies):
    people = [p.id_number for p in household_in_population(SEED, N, 0).members]
    for ids in ([], people[:2] + [household_in_population(SEED, N, 1).members[0].id_number]):
        resp = _post(agencies, ids)
        assert resp.status_code == 400 and "exactly one" in resp.json()["msg"]
    assert agencies.stats()["household"]["served"] == 0


def test_unsigned_or_wrongly_signed_queries_are_refused(agencies):
    ids = [household_in_population(SEED, N, 0).members[0].id_number]
    good = load_credentials(credentials_path(settings().home))["household"]
    cases = {
        "no headers": dict(headers={}),
        "wrong secret": dict(credential=Credential(good.scheme, "wrong")),
        "hub key forged": dict(signing_key=Ed25519PrivateKey.generate()),
        "no reference": dict(auth_ref=""),
    }
    for name, kw in cases.items():
        resp = _post(agencies, ids, **kw)
        assert resp.status_code in (401, 403), name
        assert ids[0] not in resp.text
    # a signature over one person's query replayed with another person in the body
    url = agencies.base_url("household") + SPEC.members_path
    signed = request_headers(method="POST", path=requests.utils.urlparse(url).path, body=build_request(SPEC, ids),
                             auth_ref="lookup-1", credential=good, signing_key=keyring().signing_key)
    other = [household_in_population(SEED, N, 1).members[0].id_number]
    assert requests.post(url, data=build_request(SPEC, other), headers=signed, timeout=5).status_code == 403
    stats = agencies.stats()["household"]
    assert stats["refused"] == len(cases) + 1 and stats["served"] == 0 and stats["member_queries"] == 0


def test_other_agencies_have_no_such_operation(agencies):
    url = agencies.base_url("tax") + SPEC.members_path
    assert requests.post(url, data=b"{}", timeout=5).status_code == 404


def test_faults_of_the_household_agency_apply_to_it():
    server = AgencyServer.from_hub_home(households=N, seed=SEED, faults="dirty",
                                        fault_rates={"row": 0.0, "response": 0.0, "check_digit": 1.0}).start()
    try:
        hh = household_in_population(SEED, N, 0)
        rows = _post(server, [hh.members[0].id_number]).json()["data"]
        assert len(rows) == len(hh.members)
        assert not {r[SPEC.id_field] for r in rows} & {p.id_number for p in hh.members}  # every check character wrong
    finally:
        server.stop()
    down = AgencyServer.from_hub_home(households=N, seed=SEED, faults="down:household").start()
    try:
        with pytest.raises(requests.ConnectionError):
            _post(down, [hh.members[0].id_number])
    finally:
        down.stop()
