"""The gate at the moment of each call (connectors.base.Source.fetch with ``still_allowed``): a person the gate no
longer allows is named in no later call, across chunks and pages, and what is kept replays to exactly the rows."""

from __future__ import annotations

import json

import requests

from agencies.population import households
from schemas.contracts import SPECS, from_wire
from connectors.registry import base_url, connector
from connectors.wire import parse_answer
from tests.support.connectors import FAST, allows_for

PEOPLE = [p.id_number for h in households(7, 50) for p in h.members]


class Recording(requests.Session):
    """Keeps the body of every call, to see whom each call named."""

    def __init__(self):
        super().__init__()
        self.bodies: list[bytes] = []

    def post(self, url, data=None, **kwargs):
        self.bodies.append(data)
        return super().post(url, data=data, **kwargs)


def _withdrawing(person_ref: str, after_calls: int, http: Recording):
    """A ``still_allowed`` that drops ``person_ref`` once ``after_calls`` calls were made."""
    asked: list[int] = []

    def still_allowed(allows):
        asked.append(len(allows))
        if len(http.bodies) >= after_calls:
            return [a for a in allows if a.person_ref != person_ref]
        return allows

    return still_allowed, asked


def _fetch(agencies, key, people, withdraw_index, after_calls):
    allows, ids = allows_for(people, key)
    c = connector(key, base_url(key, agencies.url), policy=FAST)
    c.http = Recording()
    ref = allows[withdraw_index].person_ref
    still_allowed, asked = _withdrawing(ref, after_calls, c.http)
    return c, ids[ref], c.fetch(allows, ids, auth_ref="req-1", still_allowed=still_allowed), asked


def _replayed(key, raws) -> list[dict]:
    return [from_wire(SPECS[key], r) for raw in raws for r in parse_answer(SPECS[key], raw, {}).rows]


def test_a_person_withdrawn_between_chunks_is_named_in_no_later_call(agencies):
    key = "real_estate"  # chunks of 20
    c, gone, result, asked = _fetch(agencies, key, PEOPLE[:50], withdraw_index=45, after_calls=1)
    assert len(c.http.bodies) == 3 and len(asked) == 3  # the gate was asked before every call
    assert gone.encode() not in b"".join(c.http.bodies)  # its chunk came after the withdrawal
    assert result.withdrawn == {gone} and result.requested == 49
    assert all(r.get("id_number") != gone for r in result.rows)
    assert result.status == "complete" and gone not in result.unanswered | result.not_found
    assert _replayed(key, result.raw) == result.rows


def test_a_person_withdrawn_between_pages_restarts_the_chunk_without_them(agencies):
    key = "social_insurance"  # pages of 200 rows: a chunk of 100 persons has several
    people = PEOPLE[:100]
    allows, ids = allows_for(people, key)
    plain = connector(key, base_url(key, agencies.url), policy=FAST)
    plain.http = Recording()
    whole = plain.fetch(allows, ids, auth_ref="req-0")
    assert len(plain.http.bodies) >= 3, "the test needs an answer of several pages"
    holder = next(i for i, idn in enumerate(people) if any(r.get("id_number") == idn for r in whole.rows))

    c, gone, result, asked = _fetch(agencies, key, people, withdraw_index=holder, after_calls=2)
    first, second, *rest = c.http.bodies
    assert gone.encode() in first and gone.encode() in second  # pages 1 and 2 were asked while consent held
    assert rest and all(gone.encode() not in b for b in rest)
    assert result.withdrawn == {gone}
    assert all(r.get("id_number") != gone for r in result.rows)  # the dropped pages' rows went with them
    expected = [r for r in whole.rows if r.get("id_number") != gone]
    assert sorted(map(repr, result.rows)) == sorted(map(repr, expected))  # nothing twice, nothing lost
    assert len(result.raw) == len(c.http.bodies) - 2 and _replayed(key, result.raw) == result.rows


def test_everyone_withdrawn_before_the_first_call_means_no_call(agencies):
    key = "tax"
    allows, ids = allows_for(PEOPLE[:3], key)
    c = connector(key, base_url(key, agencies.url), policy=FAST)
    c.http = Recording()
    result = c.fetch(allows, ids, auth_ref="req-1", still_allowed=lambda _allows: [])
    assert c.http.bodies == [] and result.rows == [] and result.raw == []
    assert result.withdrawn == set(ids.values()) and result.requested == 0


# -- batch exchanges (Source.exchange) ----------------------------------------------------------------------------

def _persons(key: str, people: list[str], refs: list[str]):
    from connectors.base import Person

    allows, ids = allows_for(people, key)
    return [Person(a, ids[a.person_ref], ref) for a, ref in zip(allows, refs)]


def test_an_exchange_names_every_person_with_their_reference_and_splits_the_answer_per_household(agencies):
    key = "social_insurance"  # pages of 200 rows: the exchange has several
    people = PEOPLE[:100]
    refs = [f"auth{i // 4}:{i}" for i in range(len(people))]  # households of four
    c = connector(key, base_url(key, agencies.url), policy=FAST)
    c.http = Recording()
    ex = c.exchange(_persons(key, people, refs))
    assert len(c.http.bodies) == len(ex.raw) >= 2 and ex.failure is None and ex.used == len(ex.raw)
    sent = json.loads(c.http.bodies[0])
    assert sent[SPECS[key].ids_field] == people and sent[SPECS[key].refs_field] == refs
    plain = c.fetch(*allows_for(people, key), auth_ref="req-0")
    assert sorted(map(repr, (row for _, row in ex.rows))) == sorted(map(repr, plain.rows))  # the same answers
    persons = _persons(key, people, refs)
    for start in range(0, len(people), 4):  # each household's share: its own persons' rows only
        share = ex.result_for(persons[start: start + 4])
        mine = set(people[start: start + 4])
        assert share.status in ("complete", "incomplete") and {r["id_number"] for r in share.rows} <= mine
        assert share.rows == [r for r in plain.rows if r["id_number"] in mine]


def test_a_rejected_reference_is_one_persons_and_a_reference_changed_after_signing_is_refused(agencies):
    key = "tax"
    people = PEOPLE[:6]
    refs = ["a1:0", "a1:1", "not a reference", "a2:3", "a2:4", "a2:5"]  # the agency cannot read the third
    c = connector(key, base_url(key, agencies.url), policy=FAST)
    persons = _persons(key, people, refs)
    ex = c.exchange(persons)
    assert ex.outcome[people[2]] == "rejected" and ex.failure is None
    assert all(ex.outcome[p] in ("answered", "not_found") for i, p in enumerate(people) if i != 2)
    first, second = ex.result_for(persons[:3]), ex.result_for(persons[3:])
    assert (first.reason, people[2] in first.unanswered) == ("REFERENCE_REJECTED", True)
    assert second.status == "complete" and second.rows  # the other household is untouched

    class Tampering(requests.Session):  # a reference in the body changed after the hub signed the call
        def post(self, url, data=None, **kwargs):
            return super().post(url, data=data.replace(b"a2:3", b"a9:3"), **kwargs)

    c.http = Tampering()
    refused = c.exchange(persons)
    assert refused.failure == "REFUSED" and set(refused.outcome.values()) == {"unanswered"}


def test_the_hubs_signature_covers_every_reference_of_a_batch():
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from connectors.auth import Credential, batch_ref, check_request, request_headers

    key, credential = Ed25519PrivateKey.generate(), Credential("api_key", "s3cret")
    refs = ["a1:0", "a1:1"]
    body = json.dumps({"ids": ["x", "y"], "sqbhList": refs}).encode()
    headers = request_headers(method="POST", path="/q", body=body, auth_ref=batch_ref(refs), credential=credential,
                              signing_key=key)

    def check(refs_read, hdrs=headers, b=body):
        return check_request(hdrs, method="POST", path="/q", body=b, credential=credential,
                             hub_key=key.public_key(), refs=refs_read)

    assert check(refs) is None
    assert check(["a1:0", "a9:1"]) == "authorization references not signed by the hub"
    assert check(None) == "authorization references missing"  # a batch's reference, but the body names none
    single = request_headers(method="POST", path="/q", body=body, auth_ref="req-1", credential=credential,
                             signing_key=key)
    assert check(refs, single) == "a batch needs the batch reference"
    assert batch_ref(refs) != batch_ref(list(reversed(refs)))  # the order is signed too
