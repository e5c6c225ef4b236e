"""The simulated government identity provider (统一身份认证): an OpenID Connect provider on 127.0.0.1.

It signs residents of the generated population in for the hub's resident pages (/m/), with the authorization code
flow and PKCE (S256) only. The hub is its one registered client (connectors.identity.Registration); its redirect
URI is registered as a loopback one (RFC 8252 §7.3): scheme http, host 127.0.0.1 or localhost, any port, and the
path CALLBACK_PATH exactly, with no query or fragment.

Endpoints (issuer ``http://127.0.0.1:<port>``):
  GET  /.well-known/openid-configuration   the discovery document
  GET  /jwks                               the public signing key (RSA 2048, made in memory at start, random kid)
  GET  /authorize                          the login page: the test resident picks a generated person and types the
                                           code of a simulated text message shown on the page (``lang=en``: English)
  POST /authorize                          the login: 303 back to the client with a code (and state, iss)
  POST /token                              the code for an ID token (RS256), with client authentication

Login attempts live 5 minutes and end at a sign-in or at the sixth wrong code; codes live 60 s and serve once.
Nothing personal (ID numbers, names, codes) is ever logged; the request log is off.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import re
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

from joserfc import jwt
from joserfc.jwk import RSAKey

from connectors.identity import CALLBACK_PATH, ID_NUMBER_CLAIM, Registration
from schemas.codes import mask_id

if TYPE_CHECKING:
    from agencies.population import Person
    from agencies.server import Population

LOGIN_TTL_S = 300  # a login attempt (the page, its code) expires after this
CODE_TTL_S = 60  # an authorization code expires after this
TOKEN_TTL_S = 300  # ID and access tokens
MAX_WRONG_CODES = 5  # wrong text-message codes an attempt survives; the next wrong one ends it
LISTED_HOUSEHOLDS = 20  # the login page lists the members of this many households
MAX_FORM = 16 << 10  # bytes of a form body
MAX_PARAM = 512  # characters of state and nonce
CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")  # BASE64URL(SHA-256(verifier)), unpadded (RFC 7636 §4.2)
VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")  # RFC 7636 §4.1
LOOPBACK_HOSTS = ("127.0.0.1", "localhost")
CSP = ("default-src 'self'; style-src 'self' 'unsafe-inline'; script-src 'none'; "
       "form-action 'self' http://127.0.0.1:* http://localhost:*; frame-ancestors 'none'")
CLAIMS = ["iss", "sub", "aud", "iat", "exp", "auth_time", "nonce", "name", ID_NUMBER_CLAIM, "birthdate", "amr"]

TEXT = {  # key: (zh-CN, en)
    "title": ("统一身份认证（模拟）", "Unified identity service (simulated)"),
    "simulator": ("本页面是供测试使用的模拟器，不是真实的政府身份认证服务。请勿输入真实的个人信息。",
                  "This page is a simulator for testing, not the real government identity service. "
                  "Do not enter real personal data."),
    "asks": ("应用“{client}”请求确认您的身份。", "The service “{client}” asks to confirm who you are."),
    "person": ("选择测试居民", "Choose a test resident"),
    "household": ("第 {n} 户", "Household {n}"),
    "other": ("或输入其他生成居民的身份证号", "Or enter the ID number of another generated resident"),
    "sms": ("模拟短信验证码：{code}", "Simulated text message code: {code}"),
    "otp": ("短信验证码", "Text message code"),
    "submit": ("登录", "Sign in"),
    "switch": ("English", "中文"),
    "wrong_code": ("验证码不正确，请重新输入。", "The code is not correct; please type it again."),
    "too_many": ("验证码错误次数过多，本次登录已结束。", "Too many wrong codes: this sign-in has ended."),
    "unknown_person": ("生成的人口中没有这个身份证号。", "No generated resident has this ID number."),
    "no_person": ("请选择一位测试居民。", "Please choose a test resident."),
    "expired": ("本次登录不存在或已过期，请返回应用重新登录。",
                "This sign-in is unknown or has expired; go back to the service and start again."),
    "back": ("返回应用", "Back to the service"),
    "refused": ("无法处理该登录请求", "This sign-in request cannot be handled"),
    "not_sent": ("未向应用返回任何信息。", "Nothing was sent back to the service."),
}


class Refused(ValueError):
    """An authorization request refused: ``redirect_uri`` is set when the error may go back to the client
    (RFC 6749 §4.1.2.1), else the error is shown to the user."""

    def __init__(self, error: str, description: str, redirect_uri: str | None = None):
        super().__init__(description)
        self.error, self.description, self.redirect_uri = error, description, redirect_uri


@dataclass
class _Attempt:
    """A login attempt: the authorization request, its text-message code, wrong tries, expiry (monotonic)."""

    request: dict
    otp: str
    expires: float
    wrong: int = 0


@dataclass(frozen=True)
class _Grant:
    """What an authorization code stands for."""

    client_id: str
    redirect_uri: str
    code_challenge: str
    nonce: str
    id_number: str
    auth_time: int
    expires: float


def loopback_redirect(uri: str) -> bool:
    """True for a loopback redirect URI as registered (RFC 8252 §7.3): http, 127.0.0.1 or localhost, any port,
    the path CALLBACK_PATH exactly, nothing else."""
    try:
        parts = urllib.parse.urlsplit(uri)
        parts.port  # noqa: B018 (raises on a port that is not a number)
    except ValueError:
        return False
    return (parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS and parts.path == CALLBACK_PATH
            and not parts.query and "#" not in uri and "@" not in parts.netloc)


def s256(verifier: str) -> str:
    """The PKCE S256 challenge of a verifier (RFC 7636 §4.2)."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode("ascii")


class IdentityProvider:
    """The provider on its own loopback port; ``start``/``stop`` as the agencies."""

    login_ttl_s, code_ttl_s = LOGIN_TTL_S, CODE_TTL_S  # per instance for tests

    def __init__(self, population: Population, registration: Registration, *, host: str = "127.0.0.1",
                 port: int = 0):
        self.population, self.registration = population, registration
        self.key = RSAKey.generate_key(2048, parameters={"kid": secrets.token_urlsafe(12), "use": "sig",
                                                         "alg": "RS256"})
        self._sub_key = secrets.token_bytes(32)  # subjects are pseudonyms of ID numbers under this key
        self._lock = threading.Lock()
        self._attempts: dict[str, _Attempt] = {}
        self._codes: dict[str, _Grant] = {}
        self._used: dict[str, float] = {}  # codes already exchanged, until they would have expired
        self.httpd = ThreadingHTTPServer((host, port), _handler(self))
        self.httpd.daemon_threads = True
        host, port = self.httpd.server_address[:2]
        self.issuer = f"http://{host}:{port}"
        self._thread: threading.Thread | None = None

    # -- life --------------------------------------------------------------------------------------------------

    @property
    def discovery_url(self) -> str:
        return self.issuer + "/.well-known/openid-configuration"

    def start(self) -> "IdentityProvider":
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:  # shutdown() waits for a serve_forever() that never ran
            self.httpd.shutdown()
            self._thread = None
        self.httpd.server_close()

    # -- documents ---------------------------------------------------------------------------------------------

    def discovery(self) -> dict:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": self.issuer + "/authorize",
            "token_endpoint": self.issuer + "/token",
            "jwks_uri": self.issuer + "/jwks",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "scopes_supported": ["openid", "profile"],
            "claims_supported": CLAIMS,
            "authorization_response_iss_parameter_supported": True,  # RFC 9207
        }

    def jwks(self) -> dict:
        return {"keys": [self.key.as_dict(private=False)]}

    # -- people ------------------------------------------------------------------------------------------------

    def person(self, id_number: str) -> Person | None:
        hit = self.population.by_id.get(id_number)
        return None if hit is None else self.population.households[hit[0]].members[hit[1]]

    def listed(self) -> list[tuple[int, list[tuple[str, Person]]]]:
        """The households the login page lists: (number from 1, [(choice value, person)])."""
        return [(k + 1, [(f"{k}-{j}", p) for j, p in enumerate(hh.members)])
                for k, hh in enumerate(self.population.households[:LISTED_HOUSEHOLDS])]

    def subject(self, id_number: str) -> str:
        """The person's stable ``sub``: a keyed pseudonym of the ID number, never the number itself."""
        return hmac.new(self._sub_key, id_number.encode("ascii"), hashlib.sha256).hexdigest()

    # -- authorization -----------------------------------------------------------------------------------------

    def check_request(self, params: dict[str, str], repeated: frozenset[str] = frozenset()) -> dict:
        """The authorization request, checked; raises Refused. Errors before the redirect URI is known good are
        never sent to it."""
        if repeated & {"client_id", "redirect_uri"}:
            raise Refused("invalid_request", "client_id and redirect_uri must be given once")
        if not hmac.compare_digest(params.get("client_id", "").encode(), self.registration.client_id.encode()):
            raise Refused("unauthorized_client", "unknown client_id")
        redirect_uri = params.get("redirect_uri", "")
        if not loopback_redirect(redirect_uri):
            raise Refused("invalid_request", f"redirect_uri must be http://127.0.0.1:<port>{CALLBACK_PATH}")

        def refuse(error: str, description: str):
            raise Refused(error, description, redirect_uri)

        if repeated:
            refuse("invalid_request", "parameters must not be repeated")
        if params.get("response_type") != "code":
            refuse("unsupported_response_type", "response_type must be code")
        scope = params.get("scope", "").split()
        if "openid" not in scope:
            refuse("invalid_scope", "scope must include openid")
        if params.get("code_challenge_method") != "S256" or not CHALLENGE.fullmatch(params.get("code_challenge", "")):
            refuse("invalid_request", "PKCE is required: code_challenge with code_challenge_method S256")
        for name in ("state", "nonce"):
            if not 0 < len(params.get(name, "")) <= MAX_PARAM:
                refuse("invalid_request", f"{name} is required (at most {MAX_PARAM} characters)")
        return {"client_id": params["client_id"], "redirect_uri": redirect_uri, "scope": " ".join(scope),
                "state": params["state"], "nonce": params["nonce"], "code_challenge": params["code_challenge"]}

    def begin(self, request: dict) -> tuple[str, _Attempt]:
        """A new login attempt for a checked request: its opaque id and the attempt (with its one-time code)."""
        attempt = _Attempt(request, f"{secrets.randbelow(10 ** 6):06d}", time.monotonic() + self.login_ttl_s)
        login = secrets.token_urlsafe(24)
        with self._lock:
            self._purge()
            self._attempts[login] = attempt
        return login, attempt

    def attempt(self, login: str) -> _Attempt | None:
        with self._lock:
            self._purge()
            return self._attempts.get(login)

    def try_code(self, login: str, otp: str) -> str:
        """Check a typed code against the attempt's: "ok", "wrong" (the attempt stays), "ended" (too many wrong
        codes: the attempt is gone) or "unknown" (no such attempt, or expired)."""
        with self._lock:
            self._purge()
            attempt = self._attempts.get(login)
            if attempt is None:
                return "unknown"
            if hmac.compare_digest(otp.encode("utf-8"), attempt.otp.encode("utf-8")):
                return "ok"
            attempt.wrong += 1
            if attempt.wrong > MAX_WRONG_CODES:
                del self._attempts[login]
                return "ended"
            return "wrong"

    def finish(self, login: str, person: Person) -> str | None:
        """End a login attempt with a sign-in: the redirect to the client with a fresh code; None when the attempt
        is gone meanwhile."""
        with self._lock:
            attempt = self._attempts.pop(login, None)
        if attempt is None:
            return None
        code = self._issue(attempt.request, person.id_number)
        return self.redirect(attempt.request["redirect_uri"],
                             {"code": code, "state": attempt.request["state"], "iss": self.issuer})

    def _issue(self, request: dict, id_number: str) -> str:
        code = secrets.token_urlsafe(32)
        grant = _Grant(request["client_id"], request["redirect_uri"], request["code_challenge"], request["nonce"],
                       id_number, int(time.time()), time.monotonic() + self.code_ttl_s)
        with self._lock:
            self._purge()
            self._codes[code] = grant
        return code

    @staticmethod
    def redirect(redirect_uri: str, params: dict) -> str:
        return redirect_uri + "?" + urllib.parse.urlencode(params)

    def _purge(self) -> None:  # under the lock
        now = time.monotonic()
        for table in (self._attempts, self._codes):
            for k in [k for k, v in table.items() if v.expires <= now]:
                del table[k]
        for k in [k for k, until in self._used.items() if until <= now]:
            del self._used[k]

    # -- tokens ------------------------------------------------------------------------------------------------

    def token(self, form: dict[str, str], authorization: str | None) -> tuple[int, dict]:
        """The token endpoint: (status, JSON body)."""
        client_id, secret, problem = _client_credentials(form, authorization)
        if problem:
            return 400, _oauth_error("invalid_request", problem)
        if client_id is None:
            return 401, _oauth_error("invalid_client", "client authentication is required")
        if not (hmac.compare_digest(client_id.encode("utf-8"), self.registration.client_id.encode("utf-8"))
                and hmac.compare_digest(secret.encode("utf-8"), self.registration.client_secret.encode("utf-8"))):
            return 401, _oauth_error("invalid_client", "client authentication failed")
        if form.get("grant_type") != "authorization_code":
            return 400, _oauth_error("unsupported_grant_type", "grant_type must be authorization_code")
        for name in ("code", "redirect_uri", "code_verifier"):
            if not form.get(name):
                return 400, _oauth_error("invalid_request", f"{name} is required")
        if not VERIFIER.fullmatch(form["code_verifier"]):
            return 400, _oauth_error("invalid_request", "code_verifier must be 43-128 unreserved characters")
        code = form["code"]
        with self._lock:
            self._purge()
            grant = self._codes.pop(code, None)  # whatever follows, a code is spent by its first exchange
            replayed = code in self._used
            if grant is not None:
                self._used[code] = grant.expires
        if grant is None:
            return 400, _oauth_error("invalid_grant", "authorization code already used" if replayed
                                     else "authorization code unknown or expired")
        if grant.client_id != client_id:
            return 400, _oauth_error("invalid_grant", "authorization code issued to another client")
        if form["redirect_uri"] != grant.redirect_uri:
            return 400, _oauth_error("invalid_grant", "redirect_uri differs from the authorization request's")
        if not hmac.compare_digest(s256(form["code_verifier"]).encode("ascii"), grant.code_challenge.encode("ascii")):
            return 400, _oauth_error("invalid_grant", "code_verifier does not match the code_challenge")
        person = self.person(grant.id_number)
        claims = self.claims_for(person, client_id=client_id, nonce=grant.nonce, auth_time=grant.auth_time)
        return 200, {"access_token": secrets.token_urlsafe(32), "token_type": "Bearer", "expires_in": TOKEN_TTL_S,
                     "id_token": self.issue_id_token(claims), "scope": "openid profile"}

    def claims_for(self, person: Person, *, client_id: str, nonce: str, auth_time: int | None = None) -> dict:
        """The ID token's claims for a person, issued now."""
        now = int(time.time())
        return {"iss": self.issuer, "sub": self.subject(person.id_number), "aud": client_id, "iat": now,
                "exp": now + TOKEN_TTL_S, "auth_time": auth_time if auth_time is not None else now, "nonce": nonce,
                "name": person.name, ID_NUMBER_CLAIM: person.id_number, "birthdate": person.birth_date.isoformat(),
                "amr": ["otp"]}

    def issue_id_token(self, claims: dict) -> str:
        """Any claims signed with the provider's key (RS256, its kid): the ID tokens, and tests' odd ones."""
        return jwt.encode({"alg": "RS256", "typ": "JWT", "kid": self.key.kid}, claims, self.key)

    # -- test hooks --------------------------------------------------------------------------------------------

    def sign_in(self, person_id_number: str, *, client_id: str, redirect_uri: str, state: str, nonce: str,
                code_challenge: str) -> str:
        """A code as a successful login would issue it, without the page (for tests that drive the hub without a
        browser). Raises Refused for a request the provider would refuse, LookupError for an unknown person."""
        request = self.check_request({"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
                                      "scope": "openid profile", "state": state, "nonce": nonce,
                                      "code_challenge": code_challenge, "code_challenge_method": "S256"})
        if self.person(person_id_number) is None:
            raise LookupError("no generated resident has this ID number")
        return self._issue(request, person_id_number)


def _oauth_error(error: str, description: str) -> dict:
    return {"error": error, "error_description": description}


def _client_credentials(form: dict[str, str], authorization: str | None) -> tuple[str | None, str, str]:
    """(client_id, secret, problem) from HTTP Basic or the form (RFC 6749 §2.3.1); client_id None when the
    client did not authenticate, problem set for a malformed or doubled authentication."""
    posted = "client_secret" in form
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "basic":
            return None, "", ""
        if posted:
            return None, "", "use one client authentication method, not two"
        try:
            raw = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except ValueError:
            return None, "", "malformed Basic credentials"
        client_id, sep, secret = raw.partition(":")
        if not sep:
            return None, "", "malformed Basic credentials"
        client_id, secret = urllib.parse.unquote_plus(client_id), urllib.parse.unquote_plus(secret)
        if form.get("client_id", client_id) != client_id:
            return None, "", "client_id differs from the authenticated client"
        return client_id, secret, ""
    if posted and form.get("client_id"):
        return form["client_id"], form["client_secret"], ""
    return None, "", ""


def _single(query: str) -> tuple[dict[str, str], frozenset[str]]:
    """A query or form: the first value of each parameter, and the names given more than once."""
    try:
        pairs = urllib.parse.parse_qs(query, keep_blank_values=True, strict_parsing=False, errors="strict")
    except UnicodeDecodeError:
        return {}, frozenset()
    return {k: v[0] for k, v in pairs.items()}, frozenset(k for k, v in pairs.items() if len(v) > 1)


# -- pages -----------------------------------------------------------------------------------------------------

_STYLE = """
body{margin:0;background:#f2f4f7;color:#1b1f24;font:16px/1.5 system-ui,-apple-system,"PingFang SC",
"Microsoft YaHei",sans-serif}
main{max-width:30rem;margin:0 auto;padding:1rem}
header{display:flex;justify-content:space-between;align-items:baseline;gap:1rem}
header a{white-space:nowrap}
h1{font-size:1.25rem;margin:.25rem 0}
.sim{background:#fff4d6;border:1px solid #d9a92b;border-radius:.5rem;padding:.6rem .75rem}
.card{background:#fff;border-radius:.75rem;padding:1rem;margin-top:1rem;box-shadow:0 1px 3px rgba(0,0,0,.12)}
.msg{background:#fde8e8;border-left:4px solid #c62828;padding:.6rem .75rem;margin-top:1rem}
.sms{background:#eaf5ea;border-left:4px solid #2e7d32;padding:.6rem .75rem;margin-top:1rem;font-size:1.1rem}
label{display:block;font-weight:600;margin-top:1rem}
select,input{display:block;width:100%;box-sizing:border-box;font-size:1rem;padding:.6rem;margin-top:.3rem;
border:1px solid #8a94a3;border-radius:.4rem;background:#fff}
button{width:100%;margin-top:1.25rem;padding:.75rem;font-size:1.05rem;color:#fff;background:#b3121f;border:0;
border-radius:.4rem}
a{color:#0b57d0}
"""


def _t(lang: str, key: str, **kw) -> str:
    return TEXT[key][lang == "en"].format(**kw)


def _page(lang: str, body: str) -> bytes:
    title = _t(lang, "title")
    return (f'<!doctype html><html lang="{"en" if lang == "en" else "zh-CN"}"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body><main>{body}</main></body>"
            "</html>").encode("utf-8")


def _header(lang: str, switch_href: str | None) -> str:
    link = ""
    if switch_href:
        other = "zh-CN" if lang == "en" else "en"
        link = f'<a href="{html.escape(switch_href)}" lang="{other}" hreflang="{other}">{_t(lang, "switch")}</a>'
    return (f"<header><h1>{html.escape(_t(lang, 'title'))}</h1>{link}</header>"
            f'<p class="sim" role="note">{html.escape(_t(lang, "simulator"))}</p>')


def login_page(provider: IdentityProvider, lang: str, login: str, attempt: _Attempt, message: str = "",
               chosen: str = "") -> bytes:
    """The login page of an attempt: person, other ID number, the simulated text message and the code."""
    req = attempt.request
    switch = "/authorize?" + urllib.parse.urlencode({
        "response_type": "code", "client_id": req["client_id"], "redirect_uri": req["redirect_uri"],
        "scope": req["scope"], "state": req["state"], "nonce": req["nonce"], "code_challenge": req["code_challenge"],
        "code_challenge_method": "S256", "lang": "zh" if lang == "en" else "en"})
    groups = []
    for n, members in provider.listed():
        options = "".join(
            f'<option value="{v}"{" selected" if v == chosen else ""}>{html.escape(p.name)} {mask_id(p.id_number)}'
            "</option>" for v, p in members)
        groups.append(f'<optgroup label="{html.escape(_t(lang, "household", n=n))}">{options}</optgroup>')
    esc = html.escape
    msg = f'<p class="msg" role="alert">{esc(message)}</p>' if message else ""
    body = (
        _header(lang, switch) + msg +
        '<form class="card" method="post" action="/authorize">'
        f'<p>{esc(_t(lang, "asks", client=req["client_id"]))}</p>'
        f'<input type="hidden" name="login" value="{esc(login)}"><input type="hidden" name="lang" value="{esc(lang)}">'
        f'<label for="person">{esc(_t(lang, "person"))}</label><select id="person" name="person">{"".join(groups)}'
        "</select>"
        f'<label for="id_number">{esc(_t(lang, "other"))}</label>'
        '<input id="id_number" name="id_number" autocomplete="off" maxlength="18" spellcheck="false">'
        f'<p class="sms" role="status">{esc(_t(lang, "sms", code=attempt.otp))}</p>'
        f'<label for="otp">{esc(_t(lang, "otp"))}</label>'
        '<input id="otp" name="otp" inputmode="numeric" autocomplete="one-time-code" maxlength="6" required>'
        f'<button type="submit">{esc(_t(lang, "submit"))}</button></form>')
    return _page(lang, body)


def message_page(lang: str, heading: str, message: str, back: str | None = None) -> bytes:
    """A page that ends the flow here: what went wrong, and a way back to the client when there is one."""
    link = f'<p><a href="{html.escape(back)}">{html.escape(_t(lang, "back"))}</a></p>' if back else ""
    return _page(lang, _header(lang, None) + f'<div class="card"><h2>{html.escape(heading)}</h2>'
                 f'<p class="msg" role="alert">{html.escape(message)}</p>{link}</div>')


def _lang(value: str | None) -> str:
    return "en" if value == "en" else "zh"


def _handler(provider: IdentityProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, *args) -> None:  # request lines carry states, codes and ID numbers: nothing logged
            pass

        def _send(self, status: int, body: bytes, ctype: str, headers: dict | None = None):
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, doc: dict, headers: dict | None = None):
            self._send(status, json.dumps(doc, ensure_ascii=False).encode("utf-8"), "application/json; charset=utf-8",
                       headers)

        def _html(self, status: int, body: bytes):
            self._send(status, body, "text/html; charset=utf-8", {
                "Content-Security-Policy": CSP, "Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
                "X-Content-Type-Options": "nosniff"})

        def _see_other(self, location: str):
            self._send(303, b"", "text/plain; charset=utf-8",
                       {"Location": location, "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})

        def _form(self) -> tuple[dict[str, str], frozenset[str]] | None:
            length = self.headers.get("Content-Length") or "0"
            if not (length.isascii() and length.isdigit()) or int(length) > MAX_FORM:
                self.close_connection = True  # the body was not read
                return None
            return _single(self.rfile.read(int(length)).decode("utf-8", "replace"))

        def do_GET(self):
            parts = urllib.parse.urlsplit(self.path)
            if parts.path == "/.well-known/openid-configuration":
                return self._json(200, provider.discovery())
            if parts.path == "/jwks":
                return self._json(200, provider.jwks())
            if parts.path == "/authorize":
                return self._authorize(*_single(parts.query))
            if parts.path == "/token":
                return self._json(405, _oauth_error("invalid_request", "use POST"), {"Allow": "POST"})
            self._json(404, {"error": "not_found"})

        def do_POST(self):
            path = urllib.parse.urlsplit(self.path).path
            if path not in ("/authorize", "/token"):
                return self._json(404, {"error": "not_found"})
            got = self._form()
            if path == "/token":
                return self._token(got)
            if got is None:
                return self._html(400, message_page("zh", _t("zh", "refused"), "bad form"))
            self._login(got[0])

        def _authorize(self, params: dict[str, str], repeated: frozenset[str]):
            lang = _lang(params.get("lang"))
            try:
                request = provider.check_request({k: v for k, v in params.items() if k != "lang"},
                                                 repeated - {"lang"})
            except Refused as exc:
                if exc.redirect_uri is None:
                    return self._html(400, message_page(lang, _t(lang, "refused"),
                                                        f"{exc.error}: {exc.description}. {_t(lang, 'not_sent')}"))
                back = {"error": exc.error, "error_description": exc.description, "iss": provider.issuer}
                if params.get("state") and "state" not in repeated:
                    back["state"] = params["state"]
                return self._see_other(provider.redirect(exc.redirect_uri, back))
            login, attempt = provider.begin(request)
            self._html(200, login_page(provider, lang, login, attempt))

        def _login(self, form: dict[str, str]):
            lang, login = _lang(form.get("lang")), form.get("login", "")
            attempt = provider.attempt(login)
            if attempt is None:
                return self._html(400, message_page(lang, _t(lang, "refused"), _t(lang, "expired")))
            chosen = form.get("person", "")
            outcome = provider.try_code(login, form.get("otp", "").strip())
            if outcome == "unknown":
                return self._html(400, message_page(lang, _t(lang, "refused"), _t(lang, "expired")))
            if outcome == "ended":
                back = provider.redirect(attempt.request["redirect_uri"], {
                    "error": "access_denied", "error_description": "too many wrong codes",
                    "state": attempt.request["state"], "iss": provider.issuer})
                return self._html(401, message_page(lang, _t(lang, "refused"), _t(lang, "too_many"), back))
            if outcome == "wrong":
                return self._html(401, login_page(provider, lang, login, attempt, _t(lang, "wrong_code"), chosen))
            typed = form.get("id_number", "").strip().upper()
            person = None
            if typed:
                person = provider.person(typed)
            elif re.fullmatch(r"\d{1,4}-\d{1,3}", chosen):
                k, j = map(int, chosen.split("-"))
                if k < LISTED_HOUSEHOLDS and k < len(provider.population.households):
                    members = provider.population.households[k].members
                    person = members[j] if j < len(members) else None
            if person is None:
                message = _t(lang, "unknown_person" if typed else "no_person")
                return self._html(400, login_page(provider, lang, login, attempt, message, chosen))
            location = provider.finish(login, person)
            if location is None:
                return self._html(400, message_page(lang, _t(lang, "refused"), _t(lang, "expired")))
            self._see_other(location)

        def _token(self, got: tuple[dict[str, str], frozenset[str]] | None):
            headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if got is None or ctype != "application/x-www-form-urlencoded":
                return self._json(400, _oauth_error("invalid_request", "a form body (application/x-www-form-"
                                                    "urlencoded) of reasonable size is required"), headers)
            form, repeated = got
            if repeated:
                return self._json(400, _oauth_error("invalid_request", "parameters must not be repeated"), headers)
            status, doc = provider.token(form, self.headers.get("Authorization"))
            if status == 401:
                headers["WWW-Authenticate"] = 'Basic realm="identity"'
            self._json(status, doc, headers)

    return Handler
