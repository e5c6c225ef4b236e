"""Residents signing, following and withdrawing (hub.services.residents) with a real identity provider (the simulated
one of `hub agencies serve`) and the real store: nothing half-signed reaches the gate; an adult signs for
themselves only, a guardian for a minor after their own signature, a minor never; a link answers once, expires, and
every refused attempt is in the ledger; the authorization made of the signatures carries each signer's evidence; a
resident sees their own requests and ledger entries only; withdrawing is a revocation the gate obeys at once."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update

from consent.authorizations import views
from consent.gate import Reason, check
from consent.tree import check_proof, checkpoint_now
from core.crypto import canonical_json, keyring, sha256_hex
from core.store import (Authorization, AuthorizationMember, LedgerEvent, Notification, Request, ResidentMessage,
                        SigningInvitation, session, utcnow)
from hub.services import residents
from hub.services.errors import Invalid, NotFound
from hub.stages.pipeline import AwaitingSignatures, run_inline
from tests.support.households import population
from tests.support.residents import resident, signing_request, tokens

MIXED = 0  # household 0 of seed 7: three adults and a minor (head, spouse, daughter 18+, daughter under 18)


def _names(lang="zh"):
    return (lambda k: k, lambda c: c, lambda p: p)


def _sign(token, who, *, sign=True, financial=True):
    a = residents.asked(token, who)
    texts = residents.text_of(a, "zh", _names())
    return residents.answer(token, who, sign=sign, financial=financial, lang="zh", texts=texts,
                            text_sha256=sha256_hex(texts[0].encode("utf-8")))


def _members(doc):
    today = dt.date.today()
    from consent.authorizations import adult_from

    return [(m["id_number"], adult_from(m["id_number"]) <= today) for m in doc["members"]]


def _refusals(request_id=None):
    with session() as s:
        rows = s.scalars(select(LedgerEvent).where(LedgerEvent.kind == residents.SIGN_REFUSED)).all()
        return [e.payload for e in rows if request_id is None or e.payload.get("request_id") == request_id]


@pytest.fixture
def mixed(agencies):
    request_id, doc = signing_request(MIXED)
    members = _members(doc)
    assert sum(a for _, a in members) >= 2 and not all(a for _, a in members), "household 0 changed: pick another"
    return agencies, request_id, doc, members, tokens(request_id)


def test_nothing_reaches_the_gate_until_every_member_has_answered(mixed):
    server, rid, doc, members, links = mixed
    adults = [(i, idn) for i, (idn, adult) in enumerate(members) if adult]
    minor = next(i for i, (_, adult) in enumerate(members) if not adult)
    head = resident(server, adults[0][1])
    assert _sign(links[adults[0][0]], head) is None
    assert _sign(links[minor], head) is None  # the head, having signed, signs for the minor as guardian
    for i, idn in adults[1:-1]:
        assert _sign(links[i], resident(server, idn)) is None
    with session() as s:
        assert views(s, rid) == [] and s.get(Request, rid).status == "signing"
        assert s.scalars(select(Authorization).where(Authorization.request_id == rid)).first() is None
    with pytest.raises(AwaitingSignatures):  # a driver given it asks nothing
        run_inline(rid)
    with session() as s:
        assert s.get(Request, rid).status == "signing"
    last = resident(server, adults[-1][1])
    assert _sign(links[adults[-1][0]], last, financial=False) == rid  # the last answer releases it
    keys = keyring()
    with session() as s:
        assert s.get(Request, rid).status == "received"
        (view,) = views(s, rid)
        invs = {i.person_ref: i for i in s.scalars(select(SigningInvitation).where(SigningInvitation.request_id == rid))}
        stored = {m.person_ref: m for m in s.scalars(select(AuthorizationMember)
                                                     .where(AuthorizationMember.authorization_id == view.id))}
    assert set(stored) == {keys.pseudonym(idn) for idn, _ in members}
    for ref, m in stored.items():
        inv = invs[ref]
        assert inv.evidence_sha256 == sha256_hex(canonical_json(inv.evidence))
        if inv.minor:
            assert m.evidence_sha256 is None and m.guardian_ref == keys.pseudonym(adults[0][1])
            assert inv.evidence["basis"] == "guardian"
        else:
            assert m.evidence_sha256 == inv.evidence_sha256 and inv.evidence["basis"] == "own"
            assert inv.evidence["issuer"] == server.identity.issuer and inv.evidence["subject"]
            assert inv.evidence["text_sha256"] == sha256_hex(inv.evidence["text"].encode("utf-8"))
    now = utcnow()
    last_ref = keys.pseudonym(adults[-1][1])
    assert check(view, last_ref, "bank", "dibao", "MZ-210302", now) == Reason.FINANCIAL_CONSENT_MISSING
    assert check(view, last_ref, "tax", "dibao", "MZ-210302", now) == Reason.ALLOWED
    assert check(view, keys.pseudonym(adults[0][1]), "bank", "dibao", "MZ-210302", now) == Reason.ALLOWED
    assert run_inline(rid).status == "published"


def test_who_may_answer_a_link(mixed):
    server, rid, doc, members, links = mixed
    adults = [(i, idn) for i, (idn, adult) in enumerate(members) if adult]
    minor_i, minor_id = next((i, idn) for i, (idn, adult) in enumerate(members) if not adult)
    head, spouse = resident(server, adults[0][1]), resident(server, adults[1][1])
    with pytest.raises(residents.SigningRefused) as other:
        residents.asked(links[adults[0][0]], spouse)  # an adult for another adult
    assert other.value.code == "not_you"
    with pytest.raises(residents.SigningRefused) as early:
        residents.asked(links[minor_i], head)  # a guardian who has not signed for themselves yet
    assert early.value.code == "guardian_first"
    child = resident(server, minor_id)
    with pytest.raises(residents.SigningRefused) as young:
        residents.asked(links[minor_i], child)
    assert young.value.code == "minor"
    stranger_id = next(m.id_number for h in population().households[1:] for m in h.members
                       if m.id_number not in {idn for idn, _ in members})
    with pytest.raises(residents.SigningRefused) as stranger:
        residents.asked(links[adults[0][0]], resident(server, stranger_id))
    assert stranger.value.code == "not_you"
    with pytest.raises(residents.SigningRefused) as unknown:
        residents.asked("A" * 22, head)
    assert unknown.value.code == "unknown"
    _sign(links[adults[0][0]], head)
    with pytest.raises(residents.SigningRefused) as twice:
        _sign(links[adults[0][0]], head)  # a replayed answer
    assert twice.value.code == "used"
    assert residents.asked(links[adults[0][0]], head).state == "signed"  # the page says what was answered
    with session() as s:
        s.execute(update(SigningInvitation).where(SigningInvitation.person_ref == keyring().pseudonym(adults[1][1]))
                  .values(expires_at=utcnow() - dt.timedelta(seconds=1)))
    with pytest.raises(residents.SigningRefused) as late:
        _sign(links[adults[1][0]], spouse)
    assert late.value.code == "expired"
    codes = [p["why"] for p in _refusals(rid)]
    assert {"not_you", "guardian_first", "minor", "used", "expired"} <= set(codes)
    assert all(adults[0][1] not in str(p) for p in _refusals())  # pseudonyms only
    with session() as s:
        assert views(s, rid) == []


def test_the_words_signed_are_the_words_shown(mixed):
    server, rid, doc, members, links = mixed
    idn = next(idn for idn, adult in members if adult)
    who = resident(server, idn)
    a = residents.asked(links[0], who)
    texts = residents.text_of(a, "zh", _names())
    with pytest.raises(Invalid):
        residents.answer(links[0], who, sign=True, financial=False, lang="zh", texts=texts,
                         text_sha256=sha256_hex(b"other words"))
    with session() as s:
        assert s.scalars(select(SigningInvitation.state).where(SigningInvitation.request_id == rid)).all() == \
            ["pending"] * len(members)


def test_nobody_signing_refuses_the_request(agencies):
    rid, doc = signing_request(5)
    links = tokens(rid)
    for (idn, adult), link in zip(_members(doc), links):
        if adult:
            _sign(link, resident(agencies, idn), sign=False)
    with session() as s:
        minors = s.scalars(select(SigningInvitation).where(SigningInvitation.request_id == rid,
                                                           SigningInvitation.minor.is_(True))).all()
    if minors:  # no guardian signed: the minors' links stay unanswerable, the request waits for nobody
        pytest.skip("household 5 has minors")
    with session() as s:
        assert s.get(Request, rid).status == "refused" and views(s, rid) == []
        kinds = [m.kind for m in s.scalars(select(ResidentMessage).where(ResidentMessage.request_id == rid))]
    assert "sign.declined" in kinds


def _complete(server, k):
    rid, doc = signing_request(k)
    links = tokens(rid)
    people = _members(doc)
    adults = [(i, idn) for i, (idn, adult) in enumerate(people) if adult]
    guardian = resident(server, adults[0][1])
    _sign(links[adults[0][0]], guardian)
    for i, idn in adults[1:]:
        _sign(links[i], resident(server, idn))
    for i, (idn, adult) in enumerate(people):
        if not adult:
            _sign(links[i], guardian)
    assert run_inline(rid).status == "published"
    return rid, doc, guardian


def test_a_resident_follows_their_own_requests_only(agencies):
    rid, doc, head = _complete(agencies, MIXED)
    other_rid, other_doc, other_head = _complete(agencies, 2)
    mine = {p.request_id: p for p in residents.my_requests(head)}  # the session's store: earlier tests' too
    assert rid in mine and other_rid not in mine and mine[rid].stage == "published"
    assert other_rid in {p.request_id for p in residents.my_requests(other_head)}
    detail = residents.my_request(rid, head)
    assert detail.screening and detail.screening["answer"] and detail.screening["reasons"]
    assert detail.signatures["signed"] == len(doc["members"])
    with pytest.raises(NotFound):
        residents.my_request(other_rid, head)
    with pytest.raises(NotFound):
        residents.my_request("0" * 32, head)
    entries, other_entries = _all_data(head), _all_data(other_head)
    seqs = {e.seq for e in entries}
    assert seqs and not seqs & {e.seq for e in other_entries}
    kinds = {e.kind for e in entries}
    assert {"fetch.completed", "record.published", "authorization.granted", residents.SIGNED} <= kinds
    assert not any(k.startswith("resident.") for k in kinds)
    assert all(e.payload.get("person_ref") in (None, head.person_ref) for e in entries)  # no other member's
    checkpoint_now(keyring().signing_key)
    seq = max(seqs)
    proof = residents.my_proof(head, seq)
    check_proof(proof)
    assert proof["seq"] == seq
    forged = dict(proof, entry=proof["entry"].replace('"kind"', '"kind" ', 1))
    with pytest.raises(ValueError):
        check_proof(forged)
    with pytest.raises(ValueError):
        check_proof(dict(proof, leaf_index=proof["leaf_index"] + 1))
    with pytest.raises(NotFound):
        residents.my_proof(head, min(e.seq for e in other_entries))


def _all_data(who) -> list:
    """Every page of the resident's entries."""
    out, before = [], None
    while True:
        page, _ = residents.my_data(who, before=before, limit=50)
        out += page
        if len(page) < 50:
            return out
        before = page[-1].seq


def test_withdrawing_is_a_revocation_the_gate_obeys_and_the_department_hears_of(agencies):
    rid, doc, head = _complete(agencies, MIXED)
    (consent,) = [c for c in residents.my_consents(head) if c.request_id == rid]
    assert consent.withdrawn is None and consent.may_withdraw_all and "bank" in consent.sources
    residents.withdraw(head, consent.authorization_id, "source", "bank")
    with pytest.raises(Invalid):
        residents.withdraw(head, consent.authorization_id, "source", "no_such_source")
    with session() as s:
        (view,) = views(s, rid)
    me = head.person_ref
    now = utcnow() + dt.timedelta(seconds=1)
    assert check(view, me, "bank", "dibao", "MZ-210302", now) == Reason.REVOKED
    assert check(view, me, "tax", "dibao", "MZ-210302", now) == Reason.ALLOWED
    residents.withdraw(head, consent.authorization_id, "household")
    with session() as s:
        (view,) = views(s, rid)
        notes = s.scalars(select(Notification).where(Notification.kind == residents.WITHDRAWN_NOTE)).all()
        msgs = s.scalars(select(ResidentMessage).where(ResidentMessage.kind == "consent.withdrawn",
                                                       ResidentMessage.request_id == rid)).all()
    assert check(view, me, "tax", "dibao", "MZ-210302", now) == Reason.REVOKED
    mine = [n for n in notes if n.payload["request_id"] == rid]
    assert [n.payload["changed"] for n in mine] == [["consent.source.bank"], ["consent.household"]]
    assert all(n.payload["departments"] == ["MZ-210302"] for n in mine)
    assert len({m.person_ref for m in msgs}) == len(doc["members"])  # everyone hears of the household's withdrawal
    assert [c.withdrawn for c in residents.my_consents(head) if c.request_id == rid] == ["full"]
    stranger = resident(agencies, population().households[30].members[0].id_number)
    with pytest.raises(NotFound):
        residents.withdraw(stranger, consent.authorization_id, "self")


def test_the_last_two_members_answering_at_once_release_the_request_once(agencies, database):
    """On each backend: the request's answers are taken one at a time (its terms' row locked), so two members
    answering last together release it exactly once, with one authorization naming both."""
    import threading

    for _ in range(3):  # a race: a few rounds
        rid, doc = signing_request(3)  # four adults
        links = tokens(rid)
        people = [resident(agencies, m["id_number"]) for m in doc["members"]]
        for link, who in list(zip(links, people))[:-2]:
            _sign(link, who)
        prepared = [(link, who, residents.text_of(residents.asked(link, who), "zh", _names()))
                    for link, who in list(zip(links, people))[-2:]]
        barrier, released, errors = threading.Barrier(2), [], []

        def answer(link, who, texts):
            barrier.wait()
            try:
                released.append(residents.answer(link, who, sign=True, financial=False, lang="zh", texts=texts,
                                                 text_sha256=sha256_hex(texts[0].encode("utf-8"))))
            except Exception as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=answer, args=p) for p in prepared]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == [] and released.count(rid) == 1 and released.count(None) == 1
        with session() as s:
            assert s.get(Request, rid).status == "received"
            assert len(s.scalars(select(Authorization).where(Authorization.request_id == rid)).all()) == 1
