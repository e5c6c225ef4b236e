"""One conformance suite, the same tests over all eleven connectors, against the simulated agencies."""

from __future__ import annotations

import pytest

from agencies.population import households
from connectors.auth import Credential
from connectors.base import Failure
from schemas.contracts import EXTRA, SPECS
from connectors.registry import SOURCES, base_url, connector
from core.crypto import keyring
from tests.support.connectors import FAST, allows_for

PEOPLE = [p.id_number for h in households(7, 50) for p in h.members]


def _normal(rows: list[dict]) -> list[str]:
    """Rows as comparable text: floats to whole yuan (capital travels in 万元 with four decimals)."""
    import json

    def norm(v):
        return round(v) if isinstance(v, float) else v

    return sorted(json.dumps({k: norm(v) for k, v in r.items()}, sort_keys=True, ensure_ascii=False) for r in rows)


@pytest.mark.parametrize("key", list(SOURCES))
def test_every_connector_reads_exactly_what_its_agency_holds(agencies, key):
    spec = SPECS[key]
    people = PEOPLE[: max(spec.max_batch + 7, 60)]
    allows, ids = allows_for(people, key)
    result = connector(key, base_url(key, agencies.url), policy=FAST).fetch(allows, ids, auth_ref="req-1")
    assert result.status == "complete" and result.missing == 0 and result.reason is None
    truth = [r for i in people for r in agencies.population.rows(key, i)]
    assert _normal(result.rows) == _normal(truth)
    assert not any(EXTRA in r for r in result.rows)
    stats = agencies.stats()[key]
    assert stats["refused"] == 0 and stats["requests"] == stats["served"] == result.calls == len(result.raw)
    batches = -(-len(people) // spec.max_batch)
    assert result.calls >= batches and (spec.page_size or result.calls == batches)
    assert len(result.response_sha256) == 64


@pytest.mark.parametrize("key", list(SOURCES))
def test_no_request_without_the_gates_allow_for_this_source(agencies, key):
    other = "tax" if key != "tax" else "bank"
    allows, ids = allows_for(PEOPLE[:3], other)
    c = connector(key, base_url(key, agencies.url), policy=FAST)
    with pytest.raises(TypeError):
        c.fetch(allows, ids, auth_ref="req-1")
    with pytest.raises(TypeError):
        c.fetch([object()], ids, auth_ref="req-1")
    empty = c.fetch([], {}, auth_ref="req-1")
    assert empty.status == "complete" and empty.calls == 0
    assert agencies.stats()[key]["requests"] == 0


@pytest.mark.parametrize("key", list(SOURCES))
def test_a_refused_credential_is_not_retried(agencies, key):
    allows, ids = allows_for(PEOPLE[:3], key)
    spec = SPECS[key]
    cls = SOURCES[key]
    wrong = cls(base_url(key, agencies.url), credential=Credential(spec.auth, "wrong"),
                signing_key=keyring().signing_key, policy=FAST)
    result = wrong.fetch(allows, ids, auth_ref="req-1")
    assert (result.status, result.reason) == ("unavailable", Failure.REFUSED.value)
    assert agencies.stats()[key]["requests"] == 1 and result.calls == 1


@pytest.mark.parametrize("key", [k for k, s in SPECS.items() if s.wire != "csv"])
def test_a_person_the_agency_does_not_know_makes_the_result_incomplete(agencies, key):
    stranger = "11010519491231002X"  # valid, registered in Beijing: not in the Anshan population
    allows, ids = allows_for(PEOPLE[:3] + [stranger], key)
    result = connector(key, base_url(key, agencies.url), policy=FAST).fetch(allows, ids, auth_ref="req-1")
    assert (result.status, result.reason, result.missing) == ("incomplete", "MEMBERS_NOT_FOUND", 1)
