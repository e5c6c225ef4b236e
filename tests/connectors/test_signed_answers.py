"""Answers the hub can trust (connectors.signing, connectors.base): every source's answer, changed on the way by a
fault-injecting proxy (tests/support/proxy.py) as a faulty network, a faulty agency or a man in the middle would,
never ends complete; an honest answer does, and says which persons are unknown for every wire format."""

from __future__ import annotations

import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from connectors import signing
from connectors.base import Failure
from connectors.registry import connector
from connectors.signing import BadSignature, count_mismatches, sign_answer, verify_answer
from connectors.wire import BadAnswer, parse_answer
from core.settings import settings
from schemas.contracts import SPECS
from tests.support.connectors import FAST, allows_for
from tests.support.households import population
from tests.support.proxy import FaultProxy

SOURCES = list(SPECS)


def holders(source: str, n: int = 3) -> list[str]:
    """ID numbers of ``n`` persons who have rows in ``source`` (a row to cut), all in one call's chunk."""
    pop = population()
    found = [idn for idn in pop.by_id if pop.rows(source, idn)]
    assert len(found) >= n, source
    return found[:n]


def fetch(source: str, base: str, people: list[str]):
    allows, ids = allows_for(people, source)
    return connector(source, base, policy=FAST).fetch(allows, ids, auth_ref="req-1")


@pytest.mark.parametrize("source", SOURCES)
def test_an_honest_answer_is_complete_and_keeps_its_signature(agencies, source):
    with FaultProxy(source, agencies.base_url(source), "pass") as proxy:
        result = fetch(source, proxy.base_url, holders(source))
    assert result.status == "complete" and result.rows, result.reason
    assert len(result.signatures) == len(result.raw) >= 1 and all(result.signatures)


BROKEN = {  # what the proxy does -> the failure the hub names
    "cut_row": Failure.BAD_SIGNATURE, "empty": Failure.BAD_SIGNATURE, "html": Failure.BAD_SIGNATURE,
    "digit": Failure.BAD_SIGNATURE, "unsigned": Failure.BAD_SIGNATURE, "miscount": Failure.COUNT_MISMATCH,
    "signed_html": Failure.BAD_RESPONSE, "signed_empty": Failure.BAD_RESPONSE,
}


@pytest.mark.parametrize("mode", list(BROKEN))
@pytest.mark.parametrize("source", SOURCES)
def test_a_changed_answer_is_never_complete(agencies, source, mode):
    people = holders(source)
    with FaultProxy(source, agencies.base_url(source), mode) as proxy:
        result = fetch(source, proxy.base_url, people)
    assert result.status != "complete"
    assert result.reason == BROKEN[mode].value
    assert not result.rows or mode == "miscount"  # a miscount drops only the persons concerned
    assert proxy.served == result.calls  # not retried: a changed answer does not become true when asked again
    if mode == "miscount":
        assert result.miscounted and result.miscounted <= set(people)
        assert all(r["id_number"] not in result.miscounted for r in result.rows)
        assert result.unanswered >= result.miscounted


@pytest.mark.parametrize("source", SOURCES)
def test_an_old_answer_or_another_requests_answer_is_refused(agencies, source):
    first, other = holders(source, 2)
    with FaultProxy(source, agencies.base_url(source), "replay") as proxy:
        assert fetch(source, proxy.base_url, [first]).status == "complete"  # the answer the proxy keeps
        replayed = fetch(source, proxy.base_url, [first])  # the same question again: the old answer comes back
        another = fetch(source, proxy.base_url, [other])  # another question: the first answer comes back
    for result in (replayed, another):
        assert result.status == "unavailable" and result.reason == Failure.BAD_SIGNATURE.value
        assert not result.rows


@pytest.mark.parametrize("source", SOURCES)
def test_unknown_persons_are_named_for_every_format(agencies, source):
    known = holders(source, 1)
    unknown = "11010519491231002X"  # a valid ID number nobody in the population has
    assert unknown not in population().by_id
    result = fetch(source, agencies.base_url(source), known + [unknown])
    assert result.not_found == {unknown} and not result.unanswered
    assert result.status == "incomplete" and result.reason == "MEMBERS_NOT_FOUND"


@pytest.mark.parametrize("source", [k for k, s in SPECS.items() if s.wire == "csv"])
@pytest.mark.parametrize("body", [b"", b"<html><body>error</body></html>", "姓名,地址\r\n张三,x\r\n".encode("gbk")])
def test_a_csv_answer_without_its_declared_header_is_no_answer(source, body):
    with pytest.raises(BadAnswer) as err:
        parse_answer(SPECS[source], body, {})
    assert err.value.kind == "envelope"


def test_a_csv_answer_with_one_renamed_column_is_still_read():
    spec = SPECS["provident_fund"]
    header = list(spec.fields.values())
    header[1] = header[1] + "_v2"
    body = (",".join(header) + "\r\n" + ",".join(["x"] * len(header)) + "\r\n").encode("gbk")
    assert len(parse_answer(spec, body, {}).rows) == 1  # a row problem for validation, not a lost answer


# -- the signature itself ----------------------------------------------------------------------------------

KEY = Ed25519PrivateKey.generate()
TRUSTED = {"k1": KEY.public_key()}


def _signed(body=b"{}", **kw) -> dict:
    args = dict(source="bank", nonce="n1", body=body, page=1, pages=1, rows={"A": 2}, not_found=["B"])
    args.update(kw)
    return sign_answer(KEY, "k1", **args)


def test_a_signed_answer_verifies_and_states_its_counts():
    m = verify_answer(_signed(), b"{}", source="bank", trusted=TRUSTED, nonce="n1")
    assert (m.rows, m.not_found, m.pages, m.kid) == ({"A": 2}, ["B"], 1, "k1")
    assert count_mismatches(m, [{"id": "A"}, {"id": "A"}], "id") == set()
    assert count_mismatches(m, [{"id": "A"}], "id") == {"A"}
    assert count_mismatches(m, [{"id": "A"}, {"id": "A"}, {"id": "C"}], "id") == {"C"}


BROKEN_SIGNATURES = {  # why -> (the answer's headers, made when the test runs; its body; what the check is given)
    "missing": (lambda: {}, b"{}", {}),
    "unknown key": (_signed, b"{}", {"trusted": {"k2": KEY.public_key()}}),
    "invalid": (lambda: {**_signed(), signing.SIGNATURE: _signed(body=b"[]")[signing.SIGNATURE]}, b"{}", {}),
    "another source": (_signed, b"{}", {"source": "tax"}),
    "another request": (_signed, b"{}", {"nonce": "n2"}),
    "too old": (lambda: _signed(now=time.time() - 3600), b"{}", {}),
    "body changed": (_signed, b"{ }", {}),
}


@pytest.mark.parametrize("why", list(BROKEN_SIGNATURES))
def test_each_broken_signature_is_named(why):
    headers, body, kw = BROKEN_SIGNATURES[why]
    args = dict(source="bank", trusted=TRUSTED, nonce="n1")
    args.update(kw)
    with pytest.raises(BadSignature) as err:
        verify_answer(headers(), body, **args)
    assert err.value.why == why and "n1" not in str(err.value)


def test_an_auditor_verifies_an_old_answer_without_its_request():
    old = _signed(now=time.time() - 86400 * 400)
    m = verify_answer(old, b"{}", source="bank", trusted=TRUSTED, nonce=None, max_age=None)
    assert m.rows == {"A": 2}


def test_rotation_keeps_both_keys_valid_until_the_old_one_is_retired(agencies):
    home = settings().home
    source = "internet_finance"
    old = set(signing.trusted_keys(home, source))
    people = holders(source)
    before = fetch(source, agencies.base_url(source), people)
    old_kid = before.signatures[0][signing.KEY_ID]
    new_kid = signing.rotate_answer_key(home, source)  # the session's home: the new key stays active and trusted
    assert set(signing.trusted_keys(home, source)) == old | {new_kid}  # both valid during the change-over
    after = fetch(source, agencies.base_url(source), people)  # the running agency signs with the new key
    assert after.status == "complete" and after.signatures[0][signing.KEY_ID] == new_kid
    with pytest.raises(ValueError):
        signing.retire_answer_key(home, source, new_kid)  # the active key cannot be retired
    signing.retire_answer_key(home, source, old_kid)
    assert old_kid not in signing.trusted_keys(home, source)
    assert old_kid in signing.trusted_keys(home, source, retired=True)  # stored answers still verify
    m = verify_answer(before.signatures[0], before.raw[0], source=source,
                      trusted=signing.trusted_keys(home, source, retired=True), nonce=None, max_age=None)
    assert m.kid == old_kid
    assert fetch(source, agencies.base_url(source), people).status == "complete"
