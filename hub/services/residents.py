"""Residents on their phones (/m/, 掌上办 and 码上办): signing in through the government's identity provider, signing
or declining what a department asks them to authorize, following their household's verifications, their 幸福清单,
every access to their own data with its inclusion proof, withdrawing consent, and messages inside the hub.

A resident is who an ID token of the configured provider says (connectors.identity.RelyingParty): their pseudonym
(``person_ref``) is the key to everything here. A resident sees what concerns them: the requests that name them as a
member, the grants of those requests' households, the ledger entries of their own timeline. Anything else is
NotFound, the same as nothing: a request id or a link taken from someone else tells them nothing.

The ID number appears nowhere but in the encrypted store: pages show it masked (schemas.codes.mask_id), the ledger and the tables
here hold pseudonyms, links hold random tokens of which only the SHA-256 is looked up.

Signing (码上办): a request made with ``mobile_signing`` terms (hub.stages.intake) waits, status ``signing``, with
one invitation per member (SigningInvitation). An adult signs for themselves only; a minor's invitation is signed by
an adult member of the request who has signed their own first (the guardian); a minor cannot sign. The evidence of
a signature (issuer, subject, ID token's hash, moment, the exact text shown and its hash, the separate financial
text when signed) is hashed into the member's ``evidence_sha256``. Only when every member has answered is the
authorization stored (consent.authorizations.store_authorization), with the signers' consents: the gate never sees
a half-signed one. Then the request is ``received`` and its verification starts; with no signer it is ``refused``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import threading
from dataclasses import dataclass, field

from sqlalchemy import delete, func, select, update

from connectors import registry
from connectors.identity import CALLBACK_PATH, IdentityError, RelyingParty, Registration, load_registration
from consent import ledger
from consent.authorizations import UnknownAuthorization, adult_from, check_authorization, revoke, store_authorization
from consent.tree import check_proof, inclusion, latest_checkpoint, verifier_key
from core.crypto import canonical_json, keyring, sha256_hex
from core.settings import settings
from core.store import (AssistanceGrant, Authorization, AuthorizationMember, FetchBatch, HouseholdRecord, LedgerLeaf,
                        Notification,
                        Request,
                        RequestMember, ResidentLogin, ResidentMessage, ResidentSession, Revocation, SigningInvitation,
                        SigningTerms, aad_invitation, aad_member, aad_record, aad_resident_session, session, utcnow)
from hub.services.errors import Invalid, NotFound
from hub.services.requests import stage_of
from hub.stages.signing import token_digest
from schemas.codes import mask_id
from schemas.sources import FINANCIAL_SOURCES
from schemas.vocabulary import SOURCE_KEYS

LOGIN_S = 600  # a sign-in at the provider must come back within this
SIGNED_IN = "resident.signed_in"
SIGN_IN_REFUSED = "resident.sign_in_refused"
SIGNED, DECLINED, SIGN_REFUSED = "consent.signed", "consent.declined", "consent.sign_refused"
VIEWED = "resident.viewed"
PROOF_READ = "resident.proof_read"
WITHDRAWN_NOTE = "consent.withdrawn"  # the outbox notification a withdrawal makes (hub.stages.notify)


class SignInFailed(Exception):
    """A sign-in that was not accepted; ``code`` says why in a word the page turns into the resident's language."""

    def __init__(self, code: str):
        self.code = code
        super().__init__(code)


class SigningRefused(Exception):
    """A signing link that cannot be used by this resident now; ``code``: unknown, expired, used, not_you, minor,
    guardian_first, not_member. ``state`` is the invitation's when it was used already."""

    def __init__(self, code: str, state: str | None = None):
        self.code, self.state = code, state
        super().__init__(code)


def _token_ok(token: str | None) -> bool:
    return bool(token) and len(token) <= 128 and token.isascii()


# -- the identity provider -------------------------------------------------------------------------------------------

_parties: dict[tuple, RelyingParty] = {}
_parties_lock = threading.Lock()


def _issuer() -> str:
    configured = settings().oidc_issuer
    if configured:
        return configured
    import requests

    try:  # the agencies' index as the connectors read it (read once per process and address)
        return registry.identity_issuer(settings().agencies_url)
    except (requests.RequestException, ValueError, KeyError, TypeError):
        raise SignInFailed("unreachable") from None


def relying_party() -> RelyingParty:
    """The hub as a client of the configured identity provider (HUB_OIDC_ISSUER, else the agencies' index), with
    its registration (HUB_OIDC_CLIENT_ID/SECRET, else HUB_HOME's); one per process and configuration."""
    issuer = _issuer()
    client = settings().oidc_client
    registration = Registration(*client) if client else load_registration(settings().home)
    key = (issuer, registration.client_id, hashlib.sha256(registration.client_secret.encode()).hexdigest())
    with _parties_lock:
        if key not in _parties:
            _parties[key] = RelyingParty(issuer, registration)
        return _parties[key]


def safe_return(path: str | None) -> str:
    """A page of /m/ to come back to after signing in; anything else (another site, a scheme) is /m/."""
    if not path or not path.startswith("/m/") or path.startswith("//") or "\\" in path or len(path) > 256 \
            or not path.isascii() or any(c in path for c in "\r\n\t "):
        return "/m/"
    return path


def begin_login(return_to: str | None, base_url: str) -> str:
    """Start a sign-in: the provider's address to send the resident to (state, nonce and PKCE verifier kept)."""
    rp = relying_party()
    try:
        login = rp.begin(base_url.rstrip("/") + CALLBACK_PATH)
    except IdentityError as exc:
        raise SignInFailed(exc.code) from None
    now = utcnow()
    with session() as s:
        s.execute(delete(ResidentLogin).where(ResidentLogin.expires_at < now))
        s.add(ResidentLogin(state=login.state, nonce=login.nonce, code_verifier=login.code_verifier,
                            return_to=safe_return(return_to), created_at=now,
                            expires_at=now + dt.timedelta(seconds=LOGIN_S)))
    return login.url


@dataclass(frozen=True)
class Resident:
    """A signed-in resident: pseudonym, masked ID number, name, adulthood, and their session's digest."""

    person_ref: str
    masked_id: str
    name: str
    adult_from: dt.date
    issuer: str
    subject: str
    id_token_sha256: str
    session_sha256: str

    def id_number(self) -> str:
        """The resident's ID number, read from the store when needed (an application names the applicant)."""
        with session() as s:
            row = s.get(ResidentSession, self.session_sha256)
            return keyring().decrypt(row.id_number_enc, aad=aad_resident_session(self.session_sha256, "id_number_enc"))

    def csrf(self) -> str:
        """The token every form of this session carries (bound to the session: useless in another)."""
        return hashlib.sha256(f"csrf:{self.session_sha256}".encode()).hexdigest()[:32]

    def __repr__(self) -> str:
        return f"Resident(person_ref={self.person_ref!r})"


def finish_login(state: str | None, code: str | None, base_url: str, error: str | None = None,
                 iss: str | None = None) -> tuple[str, str]:
    """The provider sent the resident back: take the sign-in in progress (once), exchange the code, check the ID
    token; return (the new session's token, the page to return to). SignInFailed, logged, otherwise. ``iss``, when
    the provider names itself in the redirect (RFC 9207), must be the configured issuer: a code another provider
    issued is never sent to this one's token endpoint."""
    if not _token_ok(state):
        raise SignInFailed("unknown_login")
    with session() as s:
        login = s.get(ResidentLogin, state)
        if login is not None:
            s.delete(login)  # used once, whatever follows
        found = None if login is None else (login.nonce, login.code_verifier, login.return_to, login.expires_at)
    if found is None or found[3] < utcnow():
        _refused("unknown_login" if found is None else "expired")
    nonce, verifier, return_to, _ = found
    if error or not _token_ok(code):
        _refused("denied")
    rp = relying_party()
    if iss is not None and iss.rstrip("/") != rp.issuer:
        _refused("wrong_issuer")
    try:
        who = rp.finish(code=code, redirect_uri=base_url.rstrip("/") + CALLBACK_PATH,
                                     code_verifier=verifier, nonce=nonce)
    except IdentityError as exc:
        _refused(exc.code)
    keys = keyring()
    token = secrets.token_urlsafe(32)
    digest, now = token_digest(token), utcnow()
    with session() as s:
        s.execute(delete(ResidentSession).where(ResidentSession.expires_at < now))
        person_ref = keys.pseudonym(who.id_number)
        s.add(ResidentSession(token_sha256=digest, person_ref=person_ref, masked_id=mask_id(who.id_number),
                              id_number_enc=keys.encrypt(who.id_number,
                                                         aad=aad_resident_session(digest, "id_number_enc")),
                              name_enc=keys.encrypt(who.name, aad=aad_resident_session(digest)),
                              adult_from=adult_from(who.id_number), issuer=who.issuer, subject=who.subject,
                              id_token_sha256=who.token_sha256, created_at=now,
                              expires_at=now + dt.timedelta(seconds=settings().resident_session_s)))
        ledger.append(s, SIGNED_IN, {"person_ref": person_ref, "issuer": who.issuer})
    return token, return_to


def _refused(code: str):
    with session() as s:
        ledger.append(s, SIGN_IN_REFUSED, {"why": code})
    raise SignInFailed(code)


def resident(token: str | None) -> Resident | None:
    """The resident of a session token, while it lasts."""
    if not _token_ok(token):
        return None
    digest = token_digest(token)
    with session() as s:
        row = s.get(ResidentSession, digest)
        if row is None or row.expires_at < utcnow():
            return None
        name = keyring().decrypt(row.name_enc, aad=aad_resident_session(digest))
        return Resident(person_ref=row.person_ref, masked_id=row.masked_id, name=name, adult_from=row.adult_from,
                        issuer=row.issuer, subject=row.subject, id_token_sha256=row.id_token_sha256,
                        session_sha256=digest)


def sign_out(token: str | None) -> None:
    if _token_ok(token):
        with session() as s:
            s.execute(delete(ResidentSession).where(ResidentSession.token_sha256 == token_digest(token)))


# -- invitations to sign (码上办) --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class InvitationLink:
    """An invitation as the caseworker sees it: for whom (position, relation, name), its state and link."""

    member: int
    relation: str
    name: str
    state: str
    minor: bool
    expires_at: dt.datetime
    path: str  # /m/s/<token>


def invitation_links(request_id: str, department: str | None) -> list[InvitationLink]:
    """The request's invitations, for its department (NotFound for another, the same as none)."""
    keys = keyring()
    with session() as s:
        req = s.get(Request, request_id)
        if req is None or req.department != department:
            raise NotFound("no such request")
        members = s.scalars(select(RequestMember).where(RequestMember.request_id == request_id)
                            .order_by(RequestMember.id)).all()
        invs = {i.person_ref: i for i in s.scalars(select(SigningInvitation)
                                                  .where(SigningInvitation.request_id == request_id))}
        out = []
        for n, m in enumerate(members):
            inv = invs.get(m.person_ref)
            if inv is None:
                continue
            out.append(InvitationLink(
                member=n, relation=m.relation, state=inv.state, minor=inv.minor, expires_at=inv.expires_at,
                name=keys.decrypt(m.name_enc, aad=aad_member(request_id, "name_enc", m.person_ref)),
                path=f"/m/s/{keys.decrypt(inv.token_enc, aad=aad_invitation(inv.id))}"))
        return out


@dataclass(frozen=True)
class Asked:
    """What a member is asked to sign, as the page shows it and the evidence keeps it."""

    invitation_id: str
    request_id: str
    department: str
    purpose: str
    case_ref: str
    sources: list[str]
    financial_sources: list[str]
    valid_from: dt.datetime
    valid_until: dt.datetime
    data_life_days: int
    recheck_interval_days: int
    for_self: bool  # False: a guardian signs for a minor
    member_name: str  # the member the invitation is for (the resident, or the minor a guardian signs for)
    expires_at: dt.datetime
    state: str


def _invitation(s, token: str) -> SigningInvitation:
    if not _token_ok(token):
        raise SigningRefused("unknown")
    inv = s.scalars(select(SigningInvitation).where(SigningInvitation.token_sha256 == token_digest(token))).first()
    if inv is None:
        raise SigningRefused("unknown")
    return inv


def _may_sign(s, inv: SigningInvitation, who: Resident, now: dt.datetime) -> bool:
    """Whether ``who`` may answer ``inv`` (True: for themselves, False: as a guardian for a minor), else
    SigningRefused naming why."""
    if inv.person_ref == who.person_ref:
        if now.date() < who.adult_from:
            raise SigningRefused("minor")
        return True
    member = s.scalars(select(RequestMember.id).where(RequestMember.request_id == inv.request_id,
                                                      RequestMember.person_ref == who.person_ref)).first()
    if not inv.minor or member is None:
        raise SigningRefused("not_you")  # an adult cannot sign for another adult, nor a stranger for anyone
    if now.date() < who.adult_from:
        raise SigningRefused("minor")
    own = s.scalars(select(SigningInvitation.state).where(SigningInvitation.request_id == inv.request_id,
                                                          SigningInvitation.person_ref == who.person_ref)).first()
    if own != "signed":
        raise SigningRefused("guardian_first")
    return False


def _asked(s, inv: SigningInvitation, for_self: bool) -> Asked:
    req = s.get(Request, inv.request_id)
    terms = s.get(SigningTerms, inv.request_id).terms
    m = s.scalars(select(RequestMember).where(RequestMember.request_id == inv.request_id,
                                              RequestMember.person_ref == inv.person_ref)).one()
    return Asked(invitation_id=inv.id, request_id=req.id, department=req.department, purpose=req.purpose,
                 case_ref=req.case_ref, sources=list(terms["sources"]),
                 financial_sources=list(terms["financial_sources"]),
                 valid_from=dt.datetime.fromisoformat(terms["valid_from"]),
                 valid_until=dt.datetime.fromisoformat(terms["valid_until"]),
                 data_life_days=terms["data_life_days"], recheck_interval_days=terms["recheck_interval_days"],
                 for_self=for_self,
                 member_name=keyring().decrypt(m.name_enc, aad=aad_member(req.id, "name_enc", m.person_ref)),
                 expires_at=inv.expires_at, state=inv.state)


def _refuse_signing(inv: SigningInvitation | None, who: Resident, code: str) -> None:
    """A refused attempt at a signing link is a ledger entry (it touched consent); raise it."""
    with session() as s:
        ledger.append(s, SIGN_REFUSED, {"why": code, "person_ref": who.person_ref,
                                        **({"invitation_id": inv.id, "request_id": inv.request_id} if inv else {})})
    raise SigningRefused(code, inv.state if inv is not None else None)


def asked(token: str, who: Resident) -> Asked:
    """What the link asks of this resident (its state too: a link answered already shows what was answered);
    SigningRefused, logged, when they may not answer it."""
    now = utcnow()
    inv = None
    with session() as s:
        try:
            inv = _invitation(s, token)
            for_self = _may_sign(s, inv, who, now)
            if inv.state == "pending" and inv.expires_at < now:
                raise SigningRefused("expired")
            return _asked(s, inv, for_self)
        except SigningRefused as exc:
            code = exc.code
    _refuse_signing(inv, who, code)


def text_of(a: Asked, lang: str, names) -> tuple[str, str | None]:
    """The texts a member signs, in ``lang``: the general consent, and the separate financial one (None when no
    financial source is asked). ``names``: (source key) -> its name in ``lang``, (department code) -> name,
    (purpose) -> name. The evidence keeps their SHA-256; the page shows exactly these words."""
    src, dept, purpose = names
    zh = lang != "en"
    day = (lambda d: d.astimezone(dt.timezone(dt.timedelta(hours=8))).strftime("%Y-%m-%d"))
    who = "本人" if a.for_self else "作为监护人，为未成年家庭成员"
    if zh:
        general = (f"{who}授权{dept(a.department)}（业务编号 {a.case_ref}）委托社会救助家庭经济状况核对中心，"
                   f"为“{purpose(a.purpose)}”核对家庭经济状况，向以下单位查询{'本人' if a.for_self else '其'}的信息："
                   f"{'、'.join(src(k) for k in a.sources)}。授权有效期 {day(a.valid_from)} 至 {day(a.valid_until)}，"
                   f"期间每 {a.recheck_interval_days} 天可复核一次；获取的原始数据保存 {a.data_life_days} 天后销毁。"
                   f"可随时在“掌上办”撤回授权，撤回后不再查询。")
        financial = None if not a.financial_sources else (
            f"{who}另行单独同意查询以下金融信息（敏感个人信息）：{'、'.join(src(k) for k in a.financial_sources)}。"
            f"不同意不影响其他数据的查询。")
    else:
        general = (f"{'I' if a.for_self else 'As guardian of a minor member, I'} authorize the verification centre, "
                   f"entrusted by {dept(a.department)} (case {a.case_ref}), to verify the household's economic "
                   f"situation for {purpose(a.purpose)} and to ask these agencies about "
                   f"{'me' if a.for_self else 'the minor'}: {', '.join(src(k) for k in a.sources)}. Valid from "
                   f"{day(a.valid_from)} to {day(a.valid_until)}, re-checked at most every "
                   f"{a.recheck_interval_days} days; raw data is destroyed {a.data_life_days} days after it is "
                   f"fetched. Consent can be withdrawn at any time on this site; nothing is asked after that.")
        financial = None if not a.financial_sources else (
            f"{'I' if a.for_self else 'As guardian, I'} separately consent to these financial sources "
            f"(sensitive personal information): {', '.join(src(k) for k in a.financial_sources)}. Declining them "
            f"does not stop the others.")
    return general, financial


def answer(token: str, who: Resident, *, sign: bool, financial: bool, lang: str, texts: tuple[str, str | None],
           text_sha256: str) -> str | None:
    """Sign (or decline) the invitation behind ``token`` as ``who``. ``texts`` are the words shown (text_of),
    ``text_sha256`` the hash the page carried: if the words changed between the page and the answer, nothing is
    signed. Returns the request id when this answer was the last one (its verification is then to be started).
    An invitation is answered once: a second answer (another tab, a replayed form) is SigningRefused ``used``."""
    now = utcnow()
    general, fin_text = texts
    inv, code = None, None
    with session() as s:
        try:
            inv = _invitation(s, token)
            for_self = _may_sign(s, inv, who, now)
            if inv.state != "pending":
                raise SigningRefused("used")
            if inv.expires_at < now:
                raise SigningRefused("expired")
        except SigningRefused as exc:
            code = exc.code
    if code:
        _refuse_signing(inv, who, code)
    if not secrets.compare_digest(text_sha256 or "", sha256_hex(general.encode("utf-8"))):
        raise Invalid("the text signed is not the text shown; reload the page")
    financial = bool(sign and financial and fin_text)
    evidence = None if not sign else {
        "invitation_id": inv.id, "request_id": inv.request_id, "basis": "own" if for_self else "guardian",
        "signer_ref": who.person_ref, "issuer": who.issuer, "subject": who.subject,
        "id_token_sha256": who.id_token_sha256, "signed_at": now.isoformat(), "lang": lang,
        "text": general, "text_sha256": sha256_hex(general.encode("utf-8")),
        "financial_text": fin_text if financial else None,
        "financial_text_sha256": sha256_hex(fin_text.encode("utf-8")) if financial else None}
    digest = sha256_hex(canonical_json(evidence)) if evidence else None
    with session() as s:
        # the request's answers one at a time (its terms' row locked): two members answering last at once would
        # each see the other's answer still pending and neither would release the request
        s.execute(select(SigningTerms.request_id).where(SigningTerms.request_id == inv.request_id).with_for_update())
        took = s.execute(update(SigningInvitation).where(SigningInvitation.id == inv.id,
                                                         SigningInvitation.state == "pending").values(
            state="signed" if sign else "declined", answered_at=now, signer_ref=who.person_ref,
            financial=financial if sign else None, evidence=evidence, evidence_sha256=digest)).rowcount
        if took:
            ledger.append(s, SIGNED if sign else DECLINED, {
                "invitation_id": inv.id, "request_id": inv.request_id, "person_ref": inv.person_ref,
                "signer_ref": who.person_ref, "basis": "own" if for_self else "guardian",
                **({"evidence_sha256": digest, "financial": financial} if sign else {})}, at=now)
            return _complete(s, inv.request_id, now)
    _refuse_signing(inv, who, "used")  # answered by another tab or device in between


def _complete(s, request_id: str, now: dt.datetime) -> str | None:
    """When every member of the request has answered: the authorization of those who signed, stored in this
    transaction, and the request released to verification (or refused: nobody signed). Returns the request id when
    its verification is to be started."""
    invs = s.scalars(select(SigningInvitation).where(SigningInvitation.request_id == request_id)).all()
    if any(i.state == "pending" for i in invs):
        return None
    req = s.get(Request, request_id)
    terms_row = s.get(SigningTerms, request_id)
    if terms_row.completed_at is not None:
        return None
    terms = terms_row.terms
    keys = keyring()
    ids = {}
    for m in s.scalars(select(RequestMember).where(RequestMember.request_id == request_id)):
        ids[m.person_ref] = keys.decrypt(m.id_number_enc, aad=aad_member(request_id, "id_number_enc", m.person_ref))
    consents = []
    for i in invs:
        if i.state != "signed":
            continue
        # every source asked is in scope, as on a paper form; the financial ones count only with their separate
        # consent (the gate refuses them otherwise: FINANCIAL_CONSENT_MISSING, which the record names)
        financial = list(terms["financial_sources"]) if i.financial else []
        entry = {"id_number": ids[i.person_ref], "sources": terms["sources"] + terms["financial_sources"]}
        if i.signer_ref == i.person_ref:
            entry["evidence_sha256"] = i.evidence_sha256
        else:
            entry["guardian_id_number"] = ids[i.signer_ref]
        if financial:
            entry["financial_consent"] = {"sources": financial, "evidence_sha256": i.evidence_sha256}
        consents.append(entry)
    terms_row.completed_at = now
    doc = {k: terms[k] for k in ("valid_from", "valid_until", "recheck_interval_days", "data_life_days")}
    doc["consents"] = consents
    problems = check_authorization(doc, list(ids.values()), SOURCE_KEYS) if consents else ["no consent"]
    if not problems:
        auth = store_authorization(s, request_id=request_id, department=req.department, purpose=req.purpose,
                                   case_ref=req.case_ref, doc=doc, keys=keys)
        terms_row.authorization_id = auth.id
        req.status = "received"
        kind, start = "sign.complete", request_id
    else:  # nobody signed, or what was signed does not make an authorization (a guardian's cover alone)
        req.status = "refused"
        ledger.append(s, "publish.refused", {"request_id": request_id, "reason": "NOT_SIGNED",
                                             "problems": problems}, at=now)
        kind, start = "sign.declined", None
    for ref in ids:
        s.add(ResidentMessage(person_ref=ref, kind=kind, request_id=request_id,
                              params={"department": req.department, "purpose": req.purpose}, created_at=now))
    return start


# -- what a resident follows ---------------------------------------------------------------------------------------

def _my_request_ids(s, who: Resident) -> list[str]:
    return list(s.scalars(select(RequestMember.request_id).join(Request, Request.id == RequestMember.request_id)
                          .where(RequestMember.person_ref == who.person_ref, Request.kind == "application")))


@dataclass(frozen=True)
class Progress:
    """One of the resident's requests as they follow it."""

    request_id: str
    department: str
    purpose: str
    created_at: dt.datetime
    stage: str  # signing | waiting | asking | checking | publishing | published | refused | failed
    signatures: dict[str, int]  # signed, declined, pending
    my_invitation: str | None  # the resident's own invitation's state
    sources: list[tuple[str, str, str | None]]  # (source, status, reason) of the latest verification
    screening: dict | None  # the published record's answer for the request's programme, with reasons
    record_version: int | None
    record_at: dt.datetime | None
    rechecked_at: dt.datetime | None
    minors_to_sign: list[str] = field(default_factory=list)  # invitation paths of minors this adult may sign
    my_link: str | None = None  # the resident's own invitation's path while it waits for them


def my_requests(who: Resident) -> list[Progress]:
    with session() as s:
        return [_progress(s, rid, who, detail=False) for rid in
                sorted(_my_request_ids(s, who), key=lambda r: s.get(Request, r).created_at, reverse=True)]


def my_request(request_id: str, who: Resident) -> Progress:
    """One request of the resident's, with its published result (a ``resident.viewed`` entry); NotFound for any
    other, the same as none."""
    with session() as s:
        if request_id not in _my_request_ids(s, who):
            raise NotFound("no such request")
        out = _progress(s, request_id, who, detail=True)
        if out.record_version is not None:
            ledger.append(s, VIEWED, {"person_ref": who.person_ref, "request_id": request_id,
                                      "what": "result", "version": out.record_version})
        return out


def _progress(s, request_id: str, who: Resident, *, detail: bool) -> Progress:
    req = s.get(Request, request_id)
    invs = s.scalars(select(SigningInvitation).where(SigningInvitation.request_id == request_id)).all()
    counts = {"signed": 0, "declined": 0, "pending": 0}
    for i in invs:
        counts[i.state] = counts.get(i.state, 0) + 1
    mine = next((i.state for i in invs if i.person_ref == who.person_ref), None)
    family = [request_id] + list(s.scalars(select(Request.id).where(Request.parent_id == request_id)))
    latest_req = s.scalars(select(Request).where(Request.id.in_(family))
                           .order_by(Request.created_at.desc())).first()
    batches = s.scalars(select(FetchBatch).where(FetchBatch.request_id == latest_req.id)
                        .order_by(FetchBatch.fetched_at, FetchBatch.id)).all()
    latest = {b.source: (b.source, b.status, b.reason) for b in batches}
    record = s.scalars(select(HouseholdRecord).where(HouseholdRecord.request_id.in_(family))
                       .order_by(HouseholdRecord.version.desc())).first()
    screening = None
    if record is not None and detail:
        content = json.loads(keyring().decrypt(record.content_enc,
                                               aad=aad_record(record.household_ref, record.version)))
        screening = (content.get("assessment") or {}).get("screening", {}).get(req.purpose)
    # the stage as the caseworker's page says it (hub.services.requests); a published application stays published
    # whatever its re-checks do (the latest is said beside it, and its record when it publishes one)
    stage = "published" if req.status == "published" else stage_of(req, {b.source: b for b in batches})
    keys = keyring()
    minors = []
    if mine == "signed" and utcnow().date() >= who.adult_from:
        minors = [f"/m/s/{keys.decrypt(i.token_enc, aad=aad_invitation(i.id))}"
                  for i in invs if i.minor and i.state == "pending" and i.person_ref != who.person_ref]
    own = next((i for i in invs if i.person_ref == who.person_ref and i.state == "pending" and not i.minor), None)
    return Progress(request_id=req.id, department=req.department, purpose=req.purpose, created_at=req.created_at,
                    stage=stage, signatures=counts, my_invitation=mine,
                    sources=sorted(latest.values(), key=lambda x: _order(req.sources, x[0])),
                    screening=screening, record_version=record.version if record else None,
                    record_at=record.recorded_at if record else None,
                    rechecked_at=latest_req.created_at if latest_req.id != request_id else None,
                    minors_to_sign=minors,
                    my_link=f"/m/s/{keys.decrypt(own.token_enc, aad=aad_invitation(own.id))}" if own else None)


def _order(sources: list[str], key: str) -> tuple[int, str]:
    """A source's place in the request's own order (then by name, for one it did not ask)."""
    return (sources.index(key), key) if key in sources else (len(sources), key)


def my_assistance(who: Resident) -> list[AssistanceGrant]:
    """Every grant any department reported for the households of the resident's requests (幸福清单), newest first;
    a ``resident.viewed`` entry."""
    with session() as s:
        rids = _my_request_ids(s, who)
        households = sorted({h for h in s.scalars(select(Request.household_ref).where(Request.id.in_(rids))) if h})
        grants = s.scalars(select(AssistanceGrant).where(AssistanceGrant.household_ref.in_(households))
                           .order_by(AssistanceGrant.granted_from.desc(), AssistanceGrant.id)).all() if households else []
        s.expunge_all()
        ledger.append(s, VIEWED, {"person_ref": who.person_ref, "what": "assistance", "grants": len(grants)})
        return list(grants)


# -- my data: every access, with its proof ---------------------------------------------------------------------------

def my_data(who: Resident, *, before: int | None = None, limit: int = 50):
    """Every ledger entry about the resident's data (hub.services.audit.timeline: consents, fetches, publications,
    department reads, lookups), resolved (who, which department, purpose), newest first, each marked when auditors
    see it as an unusual read. The resident's own looks at /m/ are left out (they are the resident's)."""
    from hub.services import audit

    events: list = []
    while len(events) < limit:  # the timeline a page at a time, until this page is full or the timeline ends
        batch = audit.timeline(who.person_ref, before=before, limit=limit * 4)
        events += [e for e in batch if _about(e, who.person_ref)]
        if len(batch) < limit * 4:
            break
        before = batch[-1].seq
    events = events[:limit]
    entries = audit.resolve(events)
    unusual = {}
    if entries:
        since = min(e.at for e in entries) - dt.timedelta(hours=1)
        unusual = {u.seq: u.kind for u in audit.unusual_reads(since)}
    return entries, unusual


def _about(entry, person_ref: str) -> bool:
    """Whether a timeline entry belongs on the resident's page: not their own looks at /m/, and not an entry about
    another member of the household (a consent decision or a signature naming someone else)."""
    if entry.kind.startswith("resident."):
        return False
    named = entry.payload.get("person_ref")
    return named is None or named == person_ref


def covered(seqs: list[int]) -> set[int]:
    """The entries among ``seqs`` that the latest signed checkpoint covers (their proofs can be given now)."""
    if not seqs:
        return set()
    with session() as s:
        cp = latest_checkpoint(s)
        if cp is None:
            return set()
        return set(s.scalars(select(LedgerLeaf.seq).where(LedgerLeaf.seq.in_(seqs), LedgerLeaf.leaf_index < cp.size)))


def my_proof(who: Resident, seq: int) -> dict:
    """The inclusion proof of one entry of the resident's timeline against the latest signed checkpoint, checked
    here before it is given (signature of the checkpoint, leaf of the entry, path to the root); NotFound for an
    entry not theirs; NotCheckpointed when no checkpoint covers it yet."""
    from hub.services import audit

    if not [e for e in audit.timeline(who.person_ref, seq=seq) if _about(e, who.person_ref)]:
        raise NotFound("no such entry")
    with session() as s:
        proof = inclusion(s, seq)  # NotCheckpointed when no signed checkpoint covers it yet
    proof["verifier_key"] = verifier_key(keyring().public_key)
    check_proof(proof)  # what is given was checked: a proof that would not hold is an error here, not the reader's
    with session() as s:
        ledger.append(s, PROOF_READ, {"person_ref": who.person_ref, "seq": seq})
    return proof


# -- withdrawing consent (撤回) ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Consent:
    """One authorization the resident is a member of, as they can withdraw it."""

    authorization_id: str
    request_id: str
    department: str
    purpose: str
    valid_until: dt.datetime
    sources: list[str]  # the resident's own consented sources (financial ones included when consented)
    withdrawn: str | None  # "full" | "member" when no longer in force for the resident
    withdrawn_sources: list[str]
    may_withdraw_all: bool  # an adult who signed it for themselves may withdraw the household's application


def my_consents(who: Resident) -> list[Consent]:
    now = utcnow()
    with session() as s:
        rows = s.execute(select(Authorization, AuthorizationMember)
                         .join(AuthorizationMember, AuthorizationMember.authorization_id == Authorization.id)
                         .where(AuthorizationMember.person_ref == who.person_ref)
                         .order_by(Authorization.created_at.desc())).all()
        out = []
        for auth, m in rows:
            revs = s.scalars(select(Revocation).where(Revocation.authorization_id == auth.id)).all()
            full = any(r.person_ref is None for r in revs)
            member = any(r.person_ref == who.person_ref and r.source is None for r in revs)
            sources = list(m.sources) if m.financial_evidence_sha256 else \
                [k for k in m.sources if k not in FINANCIAL_SOURCES]
            out.append(Consent(
                authorization_id=auth.id, request_id=auth.request_id, department=auth.department,
                purpose=auth.purpose, valid_until=auth.valid_until, sources=sources,
                withdrawn="full" if full else "member" if member else ("expired" if auth.valid_until <= now else None),
                withdrawn_sources=sorted({r.source for r in revs if r.person_ref == who.person_ref and r.source}),
                may_withdraw_all=m.evidence_sha256 is not None and now.date() >= who.adult_from))
        return out


def withdraw(who: Resident, authorization_id: str, scope: str, source: str | None = None) -> dict:
    """Withdraw consent: ``household`` (the whole application; an adult who signed it themselves), ``self`` (the
    resident's own consent), or ``source`` (the resident's consent to one source). One revocation (ledger entry
    ``authorization.revoked``), messages to every member; the department sees it on the request at once and
    nothing is fetched after it. NotFound for an authorization the resident is not a member of."""
    mine = {c.authorization_id: c for c in my_consents(who)}
    c = mine.get(authorization_id)
    if c is None:
        raise NotFound("no such authorization")
    if scope not in ("household", "self", "source"):
        raise Invalid("scope: household, self or source")
    if scope == "household" and not c.may_withdraw_all:
        raise Invalid("scope: only an adult member who signed may withdraw the household's application")
    if scope == "source" and source not in c.sources:
        raise Invalid("source: one of the sources you consented to")
    with session() as s:
        try:
            out = revoke(s, authorization_id, person_ref=None if scope == "household" else who.person_ref,
                         source=source if scope == "source" else None)
        except UnknownAuthorization:
            raise NotFound("no such authorization") from None
        refs = s.scalars(select(AuthorizationMember.person_ref)
                         .where(AuthorizationMember.authorization_id == authorization_id)).all()
        for ref in refs if scope == "household" else [who.person_ref]:
            s.add(ResidentMessage(person_ref=ref, kind="consent.withdrawn", request_id=c.request_id,
                                  params={"scope": scope, "source": source, "department": c.department,
                                          "purpose": c.purpose}))
        # the department that held the consent is told through its subscriptions (hub.stages.notify), even though
        # its case may no longer be open: it names the request and what was withdrawn, never who or a value
        household = s.get(Request, c.request_id).household_ref
        version = s.scalar(select(func.max(HouseholdRecord.version))
                           .where(HouseholdRecord.household_ref == household)) if household else None
        s.add(Notification(household_ref=household or "", record_id=None, version=version or 0,
                           kind=WITHDRAWN_NOTE, idempotency_key=f"{WITHDRAWN_NOTE}:{out['revocation_id']}",
                           payload={"changed": [f"consent.{scope}" + (f".{source}" if source else "")],
                                    "departments": [c.department], "request_id": c.request_id}))
    return out


# -- messages ---------------------------------------------------------------------------------------------------------

def my_messages(who: Resident, limit: int = 100) -> list[ResidentMessage]:
    """The resident's messages, newest first; those not read before are marked read now (and still shown so)."""
    with session() as s:
        rows = s.scalars(select(ResidentMessage).where(ResidentMessage.person_ref == who.person_ref)
                         .order_by(ResidentMessage.id.desc()).limit(limit)).all()
        s.expunge_all()
        s.execute(update(ResidentMessage).where(ResidentMessage.person_ref == who.person_ref,
                                                ResidentMessage.read_at.is_(None)).values(read_at=utcnow()))
        return list(rows)


def unread(who: Resident) -> int:
    with session() as s:
        return s.scalar(select(func.count()).select_from(ResidentMessage).where(
            ResidentMessage.person_ref == who.person_ref, ResidentMessage.read_at.is_(None))) or 0

