"""The government's unified identity service (统一身份认证) as the hub meets it: an OpenID Connect provider with
which the hub is registered as a client (a relying party), for residents signing in on their phones (/m/).

One definition for both sides of the registration: ``hub init`` writes the hub's client registration
(``identity_client.json`` under HUB_HOME: client id and secret) and the simulated provider (agencies.identity) reads
it, as a real provider would hold the registration it issued. In production the provider's issuer and the
registration come from the environment (HUB_OIDC_ISSUER, HUB_OIDC_CLIENT_ID, HUB_OIDC_CLIENT_SECRET) and nothing
else changes.

The relying party itself (discovery, the authorization code flow with PKCE, the ID token's checks) is
``RelyingParty`` below, on Authlib; it never checks a JWT by hand.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from schemas.codes import is_valid_id

CLIENT_ID = "verification-hub"
CALLBACK_PATH = "/m/auth/callback"  # where the provider sends residents back with a code
ID_NUMBER_CLAIM = "id_number"  # the claim of the ID token that carries the resident ID number (GB 11643)


@dataclass(frozen=True)
class Registration:
    """The hub's registration with the identity provider."""

    client_id: str
    client_secret: str = ""

    def __repr__(self) -> str:  # never the secret, in a log or a traceback
        return f"Registration(client_id={self.client_id!r})"


def registration_path(home: Path) -> Path:
    return home / "identity_client.json"


def create_registration(home: Path) -> bool:
    """Generate the hub's client registration when there is none; return True when the file was written."""
    path = registration_path(home)
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"client_id": CLIENT_ID, "client_secret": secrets.token_urlsafe(32)}, fh)
    os.replace(tmp, path)
    return True


def load_registration(home: Path) -> Registration:
    path = registration_path(home)
    if not path.exists():
        raise FileNotFoundError(f"no identity provider registration at {path}; run `hub init`")
    doc = json.loads(path.read_text())
    return Registration(client_id=doc["client_id"], client_secret=doc["client_secret"])


# -- the relying party ----------------------------------------------------------------------------------------------

DISCOVERY_TTL_S = 300  # how long the provider's metadata and keys are kept before they are asked again
LEEWAY_S = 60  # clock difference allowed on exp, iat and auth_time
MAX_AGE_S = 600  # a sign-in older than this (auth_time) is not taken: the resident signs in again


class IdentityError(Exception):
    """Why a sign-in was not accepted, as a code (never with a token, a claim's value or an ID number):
    ``unreachable`` (the provider did not answer or answered nonsense), ``wrong_issuer`` (a token or metadata of an
    issuer not configured), ``bad_token`` (signature, audience, nonce or shape), ``expired`` (the token or the
    sign-in is too old), ``denied`` (the provider refused the code or the resident cancelled), ``no_id_number``
    (the token carries no valid resident ID number)."""

    def __init__(self, code: str, detail: str = ""):
        self.code = code
        super().__init__(f"{code}: {detail}" if detail else code)


@dataclass(frozen=True)
class Identity:
    """A resident as an ID token vouched for them."""

    issuer: str
    subject: str
    id_number: str
    name: str
    auth_time: int
    token_sha256: str  # of the ID token: evidence that names the token without keeping it

    def __repr__(self) -> str:  # never the ID number or the name
        return f"Identity(issuer={self.issuer!r}, subject={self.subject!r})"


@dataclass(frozen=True)
class Login:
    """One sign-in in progress: the address to send the resident to, and what must come back with them."""

    url: str
    state: str
    nonce: str
    code_verifier: str


class RelyingParty:
    """The hub as an OpenID Connect client of ``issuer`` (discovery, authorization code with PKCE S256, the ID
    token checked by joserfc against the provider's published keys). Only an issuer configured here is trusted:
    metadata or a token naming another is refused."""

    def __init__(self, issuer: str, registration: Registration, *, timeout_s: float = 5.0):
        self.issuer = issuer.rstrip("/")
        self.registration = registration
        self.timeout_s = timeout_s
        self._metadata: tuple[float, dict] | None = None
        self._keys: tuple[float, object] | None = None

    def _get(self, url: str) -> dict:
        import requests

        try:
            resp = requests.get(url, timeout=self.timeout_s)
            resp.raise_for_status()
            doc = resp.json()
        except (requests.RequestException, ValueError):
            raise IdentityError("unreachable", "the identity provider did not answer as expected") from None
        if not isinstance(doc, dict):
            raise IdentityError("unreachable", "the identity provider answered something else than an object")
        return doc

    def metadata(self) -> dict:
        now = time.monotonic()
        if self._metadata is None or now - self._metadata[0] > DISCOVERY_TTL_S:
            doc = self._get(f"{self.issuer}/.well-known/openid-configuration")
            if doc.get("issuer") != self.issuer:
                raise IdentityError("wrong_issuer", "the discovery document names another issuer")
            for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                if not isinstance(doc.get(key), str):
                    raise IdentityError("unreachable", f"the discovery document has no {key}")
            self._metadata = (now, doc)
        return self._metadata[1]

    def _key_set(self, refresh: bool = False):
        from joserfc.jwk import KeySet

        now = time.monotonic()
        if refresh or self._keys is None or now - self._keys[0] > DISCOVERY_TTL_S:
            try:
                keys = KeySet.import_key_set(self._get(self.metadata()["jwks_uri"]))
            except (ValueError, KeyError, TypeError):
                raise IdentityError("unreachable", "the provider's key set cannot be read") from None
            self._keys = (now, keys)
        return self._keys[1]

    def _session(self, redirect_uri: str):
        from authlib.integrations.requests_client import OAuth2Session

        return OAuth2Session(self.registration.client_id, self.registration.client_secret, scope="openid profile",
                             redirect_uri=redirect_uri, code_challenge_method="S256",
                             token_endpoint_auth_method="client_secret_basic")

    def begin(self, redirect_uri: str) -> Login:
        """A new sign-in: fresh state, nonce and PKCE verifier, and the provider's authorization address."""
        from authlib.common.security import generate_token

        state, nonce, verifier = generate_token(32), generate_token(32), generate_token(64)
        with self._session(redirect_uri) as client:
            url, _ = client.create_authorization_url(self.metadata()["authorization_endpoint"], state=state,
                                                     nonce=nonce, code_verifier=verifier)
        return Login(url=url, state=state, nonce=nonce, code_verifier=verifier)

    def finish(self, *, code: str, redirect_uri: str, code_verifier: str, nonce: str) -> Identity:
        """Exchange the code (with the PKCE verifier) for tokens and return who the ID token says signed in."""
        from authlib.integrations.base_client import OAuthError
        import requests

        try:
            with self._session(redirect_uri) as client:
                token = client.fetch_token(self.metadata()["token_endpoint"], grant_type="authorization_code",
                                           code=code, code_verifier=code_verifier, timeout=self.timeout_s)
        except OAuthError:
            raise IdentityError("denied", "the provider refused the code") from None
        except (requests.RequestException, ValueError):
            raise IdentityError("unreachable", "the token endpoint did not answer as expected") from None
        id_token = token.get("id_token") if isinstance(token, dict) else None
        if not isinstance(id_token, str):
            raise IdentityError("bad_token", "no ID token in the provider's answer")
        return self.verify_id_token(id_token, nonce=nonce)

    def verify_id_token(self, id_token: str, *, nonce: str, now: float | None = None) -> Identity:
        """The ID token's signature (RS256 or ES256, a key of the provider's set), issuer, audience, nonce, expiry
        and sign-in age, checked by joserfc; then its resident ID number."""
        from joserfc import jwt
        from joserfc.errors import (ExpiredTokenError, InvalidClaimError, InvalidKeyIdError, JoseError,
                                    MissingClaimError, MissingKeyError)

        decoded = None
        for refresh in (False, True):  # an unknown key id: the provider may have rotated its key, ask once more
            try:
                decoded = jwt.decode(id_token, self._key_set(refresh), algorithms=["RS256", "ES256"])
                break
            except (InvalidKeyIdError, MissingKeyError):
                if refresh:
                    raise IdentityError("bad_token", "the ID token names no key of the provider's") from None
            except (JoseError, ValueError, TypeError):
                raise IdentityError("bad_token", "the ID token's signature does not hold") from None
        claims = decoded.claims
        if claims.get("iss") != self.issuer:
            raise IdentityError("wrong_issuer", "the ID token was issued by another issuer")
        registry = jwt.JWTClaimsRegistry(
            now=int(now) if now is not None else None, leeway=LEEWAY_S,
            aud={"essential": True, "value": self.registration.client_id}, sub={"essential": True},
            exp={"essential": True}, iat={"essential": True}, nonce={"essential": True, "value": nonce})
        try:
            registry.validate(claims)
        except ExpiredTokenError:
            raise IdentityError("expired", "the ID token has expired") from None
        except (MissingClaimError, InvalidClaimError, JoseError):
            raise IdentityError("bad_token", "the ID token's claims do not hold") from None
        issued = claims.get("auth_time", claims.get("iat"))
        clock = now if now is not None else time.time()
        if not isinstance(issued, int) or issued > clock + LEEWAY_S or clock - issued > MAX_AGE_S:
            raise IdentityError("expired", "the sign-in is too old")
        id_number = claims.get(ID_NUMBER_CLAIM)
        if not isinstance(id_number, str) or not is_valid_id(id_number):
            raise IdentityError("no_id_number", "the ID token carries no valid resident ID number")
        name = claims.get("name") if isinstance(claims.get("name"), str) else ""
        return Identity(issuer=self.issuer, subject=str(claims["sub"]), id_number=id_number.upper(), name=name,
                        auth_time=issued, token_sha256=hashlib.sha256(id_token.encode("ascii", "replace")).hexdigest())
