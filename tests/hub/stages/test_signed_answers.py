"""Through the whole pipeline: a household that hides an asset never screens dibao "yes" when the answer holding
the asset was changed on the way, and the raw answers kept can be verified again later, by the agency's public key
alone (``hub audit answer``)."""

from __future__ import annotations

import hashlib
import json

import pytest
from sqlalchemy import select, update

from core.crypto import keyring
from core.store import FetchBatch, RawResponse, aad_raw_response, session
from hub.cli import main
from hub.stages.intake import create_request
from hub.stages.pipeline import check_answers, replay_batch, run_inline
from hub.stages.records import load_record
from tests.support.households import ALL_SOURCES, household_of, sample
from tests.support.proxy import FaultProxy

# what a household hides -> the agency whose answer holds it (the test population, 50 households of seed 7, has
# no household hiding deposits; the bank's answers are covered for every fault in tests/connectors)
HIDDEN = {"hides_car": "vehicles_vessels", "hides_flat": "real_estate", "hides_company": "market_entity"}


def _run(k: int, source: str, base_url: str):
    request_id = create_request(sample(k, sources=list(ALL_SOURCES)))
    return run_inline(request_id, base_urls={source: base_url})


@pytest.mark.parametrize("mode", ["cut_row", "empty", "html", "digit"])
@pytest.mark.parametrize("archetype", list(HIDDEN))
def test_a_hidden_asset_household_never_screens_yes_when_its_asset_answer_was_changed(agencies, archetype, mode):
    source = HIDDEN[archetype]
    with FaultProxy(source, agencies.base_url(source), mode) as proxy:
        result = _run(household_of(archetype), source, proxy.base_url)
    assert proxy.served >= 1 and result.status == "published"
    record, content = load_record(result.household_ref)
    assert record.completeness[source] == "unavailable"
    assert content["sources"][source]["reason"] == "BAD_SIGNATURE"
    assert content["assessment"]["screening"]["dibao"]["answer"] != "yes"


def test_the_same_households_screen_no_when_their_answers_are_whole(agencies):
    for archetype, source in HIDDEN.items():
        with FaultProxy(source, agencies.base_url(source), "pass") as proxy:
            result = _run(household_of(archetype), source, proxy.base_url)
        record, content = load_record(result.household_ref)
        assert record.completeness[source] == "complete", archetype
        assert content["assessment"]["screening"]["dibao"]["answer"] == "no", archetype


def _batch(request_id: str, source: str) -> str:
    with session() as s:
        return s.scalars(select(FetchBatch.id).where(FetchBatch.request_id == request_id,
                                                     FetchBatch.source == source)).one()


def test_an_auditor_verifies_a_batch_again_and_sees_a_tampered_answer(agencies, capsys):
    result = run_inline(create_request(sample(household_of("hides_car"), sources=list(ALL_SOURCES))))
    batch_id = _batch(result.request_id, "vehicles_vessels")
    source, checks = check_answers(batch_id)
    assert source == "vehicles_vessels" and checks and all(c.problem is None and c.kid for c in checks)
    assert sum(c.rows for c in checks) == len(replay_batch(batch_id)) >= 1
    assert main(["audit", "answer", batch_id]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["verified"] is True and shown["answers"][0]["signed_at"]

    # someone with the store's keys but not the agency's rewrites an answer and its hash: the signature tells
    keys = keyring()
    with session() as s:
        raw = s.scalars(select(RawResponse).where(RawResponse.batch_id == batch_id, RawResponse.seq == 0)).one()
        body = keys.decrypt_bytes(raw.body_enc, aad=aad_raw_response(batch_id, 0))
        forged = body[:-6] + b"\r\n"  # the last row's tail cut off
        s.execute(update(RawResponse).where(RawResponse.id == raw.id).values(
            body_enc=keys.encrypt_bytes(forged, aad=aad_raw_response(batch_id, 0)),
            sha256=hashlib.sha256(forged).hexdigest()))
    assert check_answers(batch_id)[1][0].problem == "signature body changed"
    with pytest.raises(ValueError, match="signature body changed"):
        replay_batch(batch_id)
    assert main(["audit", "answer", batch_id]) == 1
    assert json.loads(capsys.readouterr().out)["verified"] is False
    assert main(["audit", "answer", "0" * 32]) == 2
