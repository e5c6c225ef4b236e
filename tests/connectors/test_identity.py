"""The hub as a relying party of the identity provider (connectors.identity.RelyingParty) against the simulated
provider over HTTP: the code flow with PKCE, and every ID token it must refuse (forged, expired, another issuer,
another audience, another nonce, no ID number), a code used twice, a provider that lies about its issuer."""

from __future__ import annotations

import base64
import json
import time
import urllib.parse

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from agencies.identity import IdentityProvider
from connectors.identity import (ID_NUMBER_CLAIM, IdentityError, Registration, RelyingParty, create_registration,
                                 load_registration, registration_path)
from tests.support.households import population

CALLBACK = "http://127.0.0.1:8000/m/auth/callback"


@pytest.fixture(scope="module")
def registration():
    return Registration("verification-hub", "s3cret-of-the-test")


@pytest.fixture(scope="module")
def provider(registration):
    p = IdentityProvider(population(), registration).start()
    yield p
    p.stop()


@pytest.fixture
def rp(provider, registration):
    return RelyingParty(provider.issuer, registration)


def _person():
    return population().households[0].members[0]


def _code(provider, rp, person=None):
    login = rp.begin(CALLBACK)
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(login.url).query))
    assert q["code_challenge_method"] == "S256" and q["state"] == login.state and q["nonce"] == login.nonce
    assert login.code_verifier not in login.url  # only its challenge travels
    code = provider.sign_in((person or _person()).id_number, client_id=q["client_id"], redirect_uri=q["redirect_uri"],
                            state=q["state"], nonce=q["nonce"], code_challenge=q["code_challenge"])
    return login, code


def test_the_code_flow_gives_the_resident_the_token_vouches_for(provider, rp):
    login, code = _code(provider, rp)
    who = rp.finish(code=code, redirect_uri=CALLBACK, code_verifier=login.code_verifier, nonce=login.nonce)
    assert who.id_number == _person().id_number and who.issuer == provider.issuer
    assert who.subject and who.subject != who.id_number and len(who.token_sha256) == 64
    assert who.id_number not in repr(who)


def test_a_code_is_taken_once_and_only_with_its_verifier(provider, rp):
    login, code = _code(provider, rp)
    with pytest.raises(IdentityError) as wrong:
        rp.finish(code=code, redirect_uri=CALLBACK, code_verifier="x" * 64, nonce=login.nonce)
    assert wrong.value.code == "denied"
    login, code = _code(provider, rp)
    rp.finish(code=code, redirect_uri=CALLBACK, code_verifier=login.code_verifier, nonce=login.nonce)
    with pytest.raises(IdentityError) as again:
        rp.finish(code=code, redirect_uri=CALLBACK, code_verifier=login.code_verifier, nonce=login.nonce)
    assert again.value.code == "denied"


def _claims(provider, registration, **over):
    now = int(time.time())
    claims = {"iss": provider.issuer, "sub": "s-1", "aud": registration.client_id, "iat": now, "exp": now + 300,
              "auth_time": now, "nonce": "n-1", "name": "测试", ID_NUMBER_CLAIM: _person().id_number}
    claims.update(over)
    return {k: v for k, v in claims.items() if v is not None}


@pytest.mark.parametrize("over, code", [
    ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 4000, "auth_time": int(time.time()) - 4000},
     "expired"),
    ({"auth_time": int(time.time()) - 3600}, "expired"),  # a token fresh, a sign-in an hour old
    ({"iss": "http://127.0.0.1:9"}, "wrong_issuer"),
    ({"aud": "another-client"}, "bad_token"),
    ({"nonce": "another-nonce"}, "bad_token"),
    ({"nonce": None}, "bad_token"),
    ({ID_NUMBER_CLAIM: None}, "no_id_number"),
    ({ID_NUMBER_CLAIM: "110105194912310021"}, "no_id_number"),  # a wrong check character
])
def test_an_id_token_that_does_not_hold_is_refused(provider, rp, registration, over, code):
    token = provider.issue_id_token(_claims(provider, registration, **over))
    with pytest.raises(IdentityError) as refused:
        rp.verify_id_token(token, nonce="n-1")
    assert refused.value.code == code
    assert _person().id_number not in str(refused.value)


def test_the_same_claims_signed_by_the_provider_are_taken(provider, rp, registration):
    who = rp.verify_id_token(provider.issue_id_token(_claims(provider, registration)), nonce="n-1")
    assert who.id_number == _person().id_number


def test_a_token_signed_with_another_key_is_forged(provider, rp, registration):
    key = RSAKey.generate_key(2048, parameters={"kid": provider.jwks()["keys"][0]["kid"]})
    forged = jwt.encode({"alg": "RS256", "kid": key.kid}, _claims(provider, registration), key)
    with pytest.raises(IdentityError) as refused:
        rp.verify_id_token(forged, nonce="n-1")
    assert refused.value.code == "bad_token"
    def part(doc) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()

    unsigned = f'{part({"alg": "none", "typ": "JWT"})}.{part(_claims(provider, registration))}.'
    with pytest.raises(IdentityError) as none:
        rp.verify_id_token(unsigned, nonce="n-1")
    assert none.value.code == "bad_token"


def test_a_token_of_another_provider_is_not_taken(registration):
    other = IdentityProvider(population(), registration).start()
    mine = IdentityProvider(population(), registration).start()
    try:
        rp = RelyingParty(mine.issuer, registration)
        token = other.issue_id_token(_claims(other, registration))
        with pytest.raises(IdentityError) as refused:
            rp.verify_id_token(token, nonce="n-1")
        assert refused.value.code in ("wrong_issuer", "bad_token")
    finally:
        other.stop()
        mine.stop()


def test_a_provider_whose_discovery_names_another_issuer_is_refused(provider, registration):
    rp = RelyingParty(provider.issuer.replace("127.0.0.1", "localhost"), registration)
    with pytest.raises(IdentityError) as refused:
        rp.begin(CALLBACK)
    assert refused.value.code == "wrong_issuer"
    with pytest.raises(IdentityError) as gone:
        RelyingParty("http://127.0.0.1:9", registration).begin(CALLBACK)
    assert gone.value.code == "unreachable"


def test_the_registration_is_made_once_and_never_shown(tmp_path):
    assert create_registration(tmp_path) is True
    first = load_registration(tmp_path)
    assert create_registration(tmp_path) is False and load_registration(tmp_path) == first
    assert registration_path(tmp_path).stat().st_mode & 0o777 == 0o600
    assert first.client_secret not in repr(first) and len(first.client_secret) >= 32
