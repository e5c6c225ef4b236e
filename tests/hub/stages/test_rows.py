"""One pass over a re-check batch (hub.stages.rows): inside it each source row is decrypted and parsed at most once
across validation, the checks across sources and publication, rows the fetch had in hand not at all; outside it
every stage reads the store as before, and both ways publish the same records."""

from __future__ import annotations

from collections import Counter

import pytest

from core.crypto import Keyring
from hub.stages.intake import create_request
from hub.stages.pipeline import cross_check_many, fetch_many, finish, validate_batches
from hub.stages.records import record_of_request
from hub.stages.rows import one_pass, row_of
from core.store import utcnow
from tests.support.households import ALL_SOURCES, sample


@pytest.fixture
def decrypted(monkeypatch):
    """Source rows decrypted, by (batch id, row number)."""
    counts: Counter = Counter()
    real = Keyring.decrypt

    def counting(self, token, *, aad):
        if aad.startswith("source_rows.data_enc:"):
            counts[aad] += 1
        return real(self, token, aad=aad)

    monkeypatch.setattr(Keyring, "decrypt", counting)
    return counts


def _stages(request_ids: list[str], pending: list[str], run_id: str) -> list[dict]:
    validate_batches(pending, run_id=run_id)
    cross_check_many(request_ids, run_id=run_id)
    return [record_of_request(finish(r, run_id, utcnow()).request_id)[1] for r in request_ids]


def _content(record: dict) -> dict:
    """What a record says of the household (not its provenance: runs, times, hashes)."""
    out = {k: v for k, v in record.items() if k not in ("request_id", "recorded_at", "version", "as_of", "sources")}
    return {**out, "sources": {k: (v["status"], v["reason"]) for k, v in record["sources"].items()}}


def test_inside_a_pass_no_row_is_decrypted_twice_and_the_records_are_the_same(agencies, decrypted):
    plain = [create_request(sample(k, sources=list(ALL_SOURCES))) for k in (3, 4)]
    passed = [create_request(sample(k, sources=list(ALL_SOURCES))) for k in (3, 4)]
    records = _stages(plain, fetch_many(plain, exchange=True), "plain")
    assert decrypted and max(decrypted.values()) >= 3  # outside a pass: every stage decrypts the rows again
    decrypted.clear()
    with one_pass():
        fetched_here = _stages(passed, fetch_many(passed, exchange=True), "one-pass")
    assert not decrypted  # the fetch's rows went through every stage without one decryption
    assert [_content(r) for r in fetched_here] == [_content(r) for r in records]

    again = [create_request(sample(k, sources=list(ALL_SOURCES))) for k in (3, 4)]
    pending = fetch_many(again, exchange=True)  # fetched by an earlier run, outside this pass
    with one_pass():
        resumed = _stages(again, pending, "resumed")
    assert decrypted and max(decrypted.values()) == 1  # read from the store once, then handed on
    assert [_content(r) for r in resumed] == [_content(r) for r in records]


def test_a_row_handed_out_is_a_copy_and_nothing_is_kept_after_the_pass(agencies, decrypted):
    request_id = create_request(sample(3, sources=["household"]))
    batch_id = fetch_many([request_id])[0]
    from sqlalchemy import select

    from core.crypto import keyring
    from core.store import SourceRow, session

    with session() as s:
        stored = s.scalars(select(SourceRow).where(SourceRow.batch_id == batch_id)).first()
    with one_pass():
        first = row_of(batch_id, stored.row_no, stored.data_enc, keyring())
        first["name"] = "changed"
        assert row_of(batch_id, stored.row_no, stored.data_enc, keyring())["name"] != "changed"
        assert sum(decrypted.values()) == 1
    row_of(batch_id, stored.row_no, stored.data_enc, keyring())
    assert sum(decrypted.values()) == 2  # the pass is over: read from the store again

