"""The gate at the moment of each call (connectors.base.Source.fetch with ``still_allowed``): a person the gate no
longer allows is named in no later call, across chunks and pages, and what is kept replays to exactly the rows."""

from __future__ import annotations

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
