"""Simulated agencies: real HTTP services on 127.0.0.1, one process hosting them all.

The index port answers ``GET /`` (each source's key, name, base URL, format and batch limit) and
``GET /_stats`` (per agency: requests, served, refused, injected faults, rows), which tests read to
prove what reached an agency. Each agency listens on its own port, so ``down:<key>`` really refuses
connections.

Every request must carry the agency's credential (API key or HMAC signature) and the authorization
reference signed by the hub (connectors.auth); otherwise 403. Every answer is signed with the agency's own Ed25519
key (connectors.signing): a manifest naming the request's nonce, the time, the page, the body's SHA-256, the rows
per ID number and the ID numbers not found (the CSV agencies' not-found list). Faults apply to the answer as sent
and are signed with it (a wrong encoding is the agency's own mistake), except a body cut short, which is cut after.

A batch exchange (批量核对) asks about persons of many households in one call, each person's ID number with the
reference of their own authorization (connectors.auth: the hub's signature covers every reference). The agency
checks each reference on its own (a reference it cannot accept is listed as ``rejected`` in the signed manifest; the
others are answered), and every row it answers carries its person's reference, so the hub can give each household
its own rows back.

With the hub's client registration (``registration``, which `hub init` writes), the same process also runs the
simulated government identity provider (agencies.identity, an OpenID Connect provider) on a port of its own, listed
in the index under ``identity`` (its issuer and discovery document).

Household registration also answers a second operation at its ``members_path`` (户成员查询): one ID number in,
every member of that person's household out, as rows of its usual answer (or the person in ``notFound``). The
same checks, faults and counters apply to it.

Fault profiles (``--faults``, comma-separated):
  none        no faults (default)
  flaky       latency 5-50 ms; about a fifth of calls answer 500/502/503 or 429 with Retry-After
  slow        latency 0.3-2 s; about one call in twenty hangs (no answer for HUB_AGENCIES_HANG_S, default 30 s)
  latency:MS  every call answers after MS milliseconds, nothing else goes wrong (benchmarks of a request's overhead)
  truncated   about a fifth of bodies are cut short (the connection closes before Content-Length bytes)
  dirty       bad rows (wrong ID check characters, wrong credit-code check characters, unknown codes,
              malformed values, negative amounts, dates in the future, duplicated rows) and now and then a
              renamed field, a body in the wrong encoding, or a household member silently left out; each kind
              has its own rate (DIRTY_ROW_KINDS, DIRTY_ANSWER_KINDS), which tests can set one by one
  rejecting   batch exchanges: about half of the persons' authorization references are rejected (the same
              reference always), the others answered
  shuffled    batch exchanges: about half of the answers carry persons' rows under other households' references
  down:<key>  that agency refuses connections
"""

from __future__ import annotations

import collections
import gc
import hashlib
import json
import random
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from agencies import population as pop
from agencies.identity import IdentityProvider
from agencies.wire import BadRequestBody, encode_answer, parse_request
from connectors.auth import Credential, check_request, credentials_path, load_credentials
from connectors.identity import Registration, load_registration, registration_path
from connectors.signing import NONCE, AnswerKeys, answer_keys_path, b64e, row_counts, sign_answer
from core.crypto import keyring
from core.settings import settings
from schemas.contracts import SPECS, AgencySpec, to_wire

SIMPLE_PROFILES = ("none", "flaky", "slow", "truncated", "dirty", "rejecting", "shuffled")


class UnknownFaultProfile(ValueError):
    pass


DEFAULT_RATES = {
    "flaky": 0.2,  # share of calls answered 5xx or 429
    "hang": 0.05,  # share of calls that hang under `slow`
    "truncated": 0.2,  # share of bodies cut short
    "row": 0.04,  # per row and kind of row fault under `dirty` (unless the kind has its own rate)
    "response": 0.1,  # per answer and kind of answer fault under `dirty` (unless the kind has its own rate)
    "rejected": 0.5,  # share of references a `rejecting` agency rejects in batch exchanges
    "shuffled": 0.5,  # share of batch answers a `shuffled` agency gives with references swapped across households
}
# the kinds of bad input `dirty` injects; a rate named after a kind overrides "row" or "response" for it
DIRTY_ROW_KINDS = ("check_digit", "credit_code", "unknown_code", "malformed", "negative", "future_date", "duplicate")
DIRTY_ANSWER_KINDS = ("renamed", "encoding", "omitted")
MAX_BODY = 1 << 20
REFERENCE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_:.")  # bytes of a request body (the largest batch of ID numbers is a few kilobytes)
USCC_FIELDS = ("uscc", "withholder_uscc", "employer_uscc")  # canonical fields holding a unified social credit code
DATE_FIELDS = ("period", "acquired", "established", "registered", "effective", "as_of")  # dated facts, not birth


@dataclass(frozen=True)
class Faults:
    flaky: bool = False
    slow: bool = False
    truncated: bool = False
    dirty: bool = False
    rejecting: bool = False
    shuffled: bool = False
    down: frozenset[str] = frozenset()
    latency_ms: int = 0  # `latency:<ms>`: every call answers after this long (and nothing else goes wrong)
    rates: dict = field(default_factory=lambda: dict(DEFAULT_RATES), compare=False, hash=False)

    @property
    def names(self) -> list[str]:
        out = [n for n in ("flaky", "slow", "truncated", "dirty", "rejecting", "shuffled") if getattr(self, n)]
        out += [f"latency:{self.latency_ms}"] if self.latency_ms else []
        return out + [f"down:{k}" for k in sorted(self.down)] or ["none"]


def parse_faults(spec: str, rates: dict | None = None) -> Faults:
    flags, down, latency_ms = set(), set(), 0
    for part in (p.strip() for p in (spec or "none").split(",")):
        if not part or part == "none":
            continue
        if part.startswith("latency:"):
            ms = part[8:]
            if not (ms.isascii() and ms.isdigit()) or not 0 < int(ms) <= 60_000:
                raise UnknownFaultProfile(f"{part}: latency needs milliseconds between 1 and 60000")
            latency_ms = int(ms)
        elif part.startswith("down:"):
            key = part[5:]
            if key not in SPECS:
                raise UnknownFaultProfile(f"down:{key}: unknown source; known: {', '.join(SPECS)}")
            down.add(key)
        elif part in SIMPLE_PROFILES:
            flags.add(part)
        else:
            raise UnknownFaultProfile(f"unknown fault profile {part!r}; known: {', '.join(SIMPLE_PROFILES)}, down:<key>, "
                                      "latency:<ms>")
    unknown = sorted(set(rates or {}) - {*DEFAULT_RATES, *DIRTY_ROW_KINDS, *DIRTY_ANSWER_KINDS})
    if unknown:
        raise UnknownFaultProfile(f"unknown fault rate {', '.join(unknown)}")
    return Faults(**{f: True for f in flags}, down=frozenset(down), latency_ms=latency_ms, rates={**DEFAULT_RATES, **(rates or {})})


class Counters:
    FIELDS = ("requests", "served", "refused", "bad_request", "errors", "throttled", "hung", "truncated", "rows",
              "member_queries", "batch_queries")

    def __init__(self):
        self._lock = threading.Lock()
        self._c = collections.Counter()

    def add(self, **deltas: int) -> None:
        with self._lock:
            self._c.update(deltas)

    def as_dict(self) -> dict:
        with self._lock:
            return {k: self._c.get(k, 0) for k in self.FIELDS}


class Population:
    """A generated population, indexed by ID number; facts generated on demand per household."""

    def __init__(self, seed: int, n: int):
        self.seed, self.n = seed, n
        self.households = list(pop.households(seed, n))
        self.by_id: dict[str, tuple[int, int]] = {
            p.id_number: (hh.index, j) for hh in self.households for j, p in enumerate(hh.members)
        }
        self._facts = lru_cache(maxsize=4096)(self._make_facts)

    def _make_facts(self, k: int):
        return pop.facts(self.seed, self.households[k])

    def rows(self, source: str, id_number: str) -> list[dict] | None:
        """Canonical rows of one person for one source; None when the agency does not know the person."""
        hit = self.by_id.get(id_number)
        if hit is None:
            return None
        k, j = hit
        hh = self.households[k]
        if source == "household":
            return [_registration(hh, hh.members[j])]
        return [{"id_number": id_number, **r} for r in self._facts(k).by_source.get(source, {}).get(id_number, [])]

    def household_members(self, id_number: str) -> list[dict] | None:
        """Household registration's rows of every member of the person's household; None when unknown."""
        hit = self.by_id.get(id_number)
        if hit is None:
            return None
        hh = self.households[hit[0]]
        return [_registration(hh, p) for p in hh.members]


def _registration(hh: pop.Household, p: pop.Person) -> dict:
    """One person's canonical household-registration row."""
    return {"id_number": p.id_number, "name": p.name, "sex": p.sex, "birth_date": p.birth_date.isoformat(),
            "household_no": hh.household_no, "relation": p.relation, "status": p.status,
            "address_code": p.address_code}


class Agency:
    """One simulated agency: its declaration, faults, counters, and the answer to one query."""

    def __init__(self, spec: AgencySpec, population: Population, faults: Faults, credential: Credential,
                 hub_key: Ed25519PublicKey, seed: int, answer_keys: AnswerKeys):
        self.spec, self.population, self.faults = spec, population, faults
        self.credential, self.hub_key, self.answer_keys = credential, hub_key, answer_keys
        self.counters = Counters()
        self._rng = random.Random(f"faults:{seed}:{spec.key}")
        self._rng_lock = threading.Lock()
        self.hang_s = settings().agencies_hang_s
        # a test's observer: called with the ID numbers and page of every query, in the handler's thread, before
        # the query is answered (a test injects what happens while a call is in flight)
        self.on_query: Callable[[list[str], int], None] | None = None

    def roll(self) -> float:
        with self._rng_lock:
            return self._rng.random()

    def latency(self) -> float:
        if self.faults.latency_ms:
            return self.faults.latency_ms / 1000
        if self.faults.slow:
            return 0.3 + 1.7 * self.roll()
        if self.faults.flaky:
            return 0.005 + 0.045 * self.roll()
        return 0.0

    def rate(self, kind: str) -> float:
        rates = self.faults.rates
        return rates.get(kind, rates["row"] if kind in DIRTY_ROW_KINDS else rates["response"])

    def _dirty_row(self, row: dict) -> list[dict]:
        """The row after the row faults its rolls pick (two rows when duplicated)."""
        spec = self.spec
        numeric = [w for w, v in row.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
        uscc = [spec.fields[f] for f in USCC_FIELDS if spec.fields.get(f) in row and row[spec.fields[f]]]
        dates = [spec.fields[f] for f in DATE_FIELDS if spec.fields.get(f) in row and row[spec.fields[f]]]
        coded = [spec.fields[c] for c in spec.codes]
        row = dict(row)
        if self.roll() < self.rate("check_digit"):
            code = row[spec.id_field]
            row[spec.id_field] = code[:17] + ("0" if code[17:] != "0" else "1")
        if uscc and self.roll() < self.rate("credit_code"):
            code = row[uscc[0]]
            row[uscc[0]] = code[:17] + ("0" if code[17:] != "0" else "1")
        if coded and self.roll() < self.rate("unknown_code"):
            row[coded[0]] = "ZZ"
            if spec.key == "household":
                row["dzbm"] = "999999"
        if self.roll() < self.rate("malformed"):  # a number that is not one, or a required value missing
            target = numeric[0] if numeric else list(row)[1]
            row[target] = "N/A" if numeric else None
        elif numeric and self.roll() < self.rate("negative"):
            row[numeric[-1]] = -abs(row[numeric[-1]]) - 1
        if dates and self.roll() < self.rate("future_date"):
            value = str(row[dates[0]])
            row[dates[0]] = str(time.gmtime().tm_year + 2) + value[4:]
        return [row, dict(row)] if self.roll() < self.rate("duplicate") else [row]

    def _dirty(self, rows: list[dict], not_found: list[str]) -> list[dict]:
        spec = self.spec
        out = [bad for row in rows for bad in self._dirty_row(row)]
        if spec.key == "household" and out and self.roll() < self.rate("omitted"):
            # a member neither answered nor declared unknown (only detectable where every person has a row)
            out = out[1:]
        if out and self.roll() < self.rate("renamed"):  # a renamed field, as after an unannounced upgrade
            old = list(spec.fields.values())[1]
            out = [{(k + "_v2" if k == old else k): v for k, v in row.items()} for row in out]
        return out

    def answer(self, ids: list[str], page: int, nonce: str = "") -> tuple[int, bytes, str, dict]:
        rows, not_found = [], []
        for i in ids:
            got = self.population.rows(self.spec.key, i)
            if got is None:
                not_found.append(i)
            else:
                rows.extend(to_wire(self.spec, r) for r in got)
        return self._encode(rows, not_found, page, nonce)

    def rejects(self, ref: str) -> bool:
        """Whether this agency rejects a person's authorization reference: one it cannot read (1 to 64 letters,
        digits, ``-_:.``), or, under ``rejecting``, about half of them (decided by the reference, so the same one
        is always rejected)."""
        if not 0 < len(ref) <= 64 or not set(ref) <= REFERENCE_CHARS:
            return True
        if self.faults.rejecting:
            mark = int.from_bytes(hashlib.sha256(f"{self.spec.key}:{ref}".encode()).digest()[:4], "big")
            return mark / 2 ** 32 < self.faults.rates["rejected"]
        return False

    def answer_batch(self, ids: list[str], refs: list[str], page: int, nonce: str = "") -> tuple[int, bytes, str, dict]:
        """A batch exchange: each person answered under their own reference, or rejected on its own."""
        rows, not_found, rejected = [], [], []
        ref_field = self.spec.ref_field
        for i, ref in zip(ids, refs):
            if self.rejects(ref):
                rejected.append(i)
                continue
            got = self.population.rows(self.spec.key, i)
            if got is None:
                not_found.append(i)
            else:
                rows.extend({**to_wire(self.spec, r), ref_field: ref} for r in got)
        distinct = list(dict.fromkeys(refs))
        if self.faults.shuffled and len(distinct) > 1 and self.roll() < self.faults.rates["shuffled"]:
            # every row under the next household's reference: each person's rows answered for another household
            moved = dict(zip(distinct, distinct[1:] + distinct[:1]))
            rows = [{**r, ref_field: moved.get(r[ref_field], r[ref_field])} for r in rows]
        return self._encode(rows, not_found, page, nonce, rejected)

    def answer_members(self, id_number: str, page: int, nonce: str = "") -> tuple[int, bytes, str, dict]:
        """户成员查询: every member of the person's household, or the person as not found."""
        got = self.population.household_members(id_number)
        self.counters.add(member_queries=1)
        if got is None:
            return self._encode([], [id_number], page, nonce)
        return self._encode([to_wire(self.spec, r) for r in got], [], page, nonce)

    def _encode(self, rows: list[dict], not_found: list[str], page: int, nonce: str,
                rejected: list[str] = ()) -> tuple[int, bytes, str, dict]:
        """The answer's page ``page``, with the dirty profile's faults, signed as sent for the request of
        ``nonce``."""
        total = len(rows)
        pages = 1
        if self.spec.page_size:
            pages = max(1, -(-total // self.spec.page_size))
            rows = rows[(page - 1) * self.spec.page_size: page * self.spec.page_size]
        encoding = None
        if self.faults.dirty:
            rows = self._dirty(rows, not_found)
            if self.roll() < self.rate("encoding"):
                encoding = "utf-8" if self.spec.wire == "csv" else "gbk"
        body, ctype = encode_answer(self.spec, rows, not_found, page=page, pages=pages, total=total, encoding=encoding)
        headers = {"X-Page": str(page), "X-Total-Pages": str(pages), "X-Total": str(total)}
        kid, key = self.answer_keys.active()
        headers.update(sign_answer(key, kid, source=self.spec.key, nonce=nonce, body=body, page=page, pages=pages,
                                   rows=row_counts(rows, self.spec.id_field), not_found=not_found,
                                   rejected=rejected))
        self.counters.add(served=1, rows=len(rows))
        return 200, body, ctype, headers


def _handler(agency: Agency) -> type[BaseHTTPRequestHandler]:
    spec = agency.spec
    routes = {f"/{spec.key}/{spec.path}": "query"}  # path -> operation
    if spec.members_path:
        routes[f"/{spec.key}/{spec.members_path}"] = "members"

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out as two writes: don't wait for delayed ACKs

        def log_message(self, *args) -> None:  # bodies hold ID numbers; request lines are not logged either
            pass

        def _send(self, status: int, body: bytes, ctype: str, headers: dict | None = None, cut: bool = False):
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            if cut:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body[: len(body) // 2] if cut else body)
            if cut:
                self.close_connection = True

        def _error(self, status: int, code: str, msg: str, headers: dict | None = None):
            body = ('{"code":"%s","msg":"%s"}' % (code, msg)).encode("utf-8")
            self._send(status, body, "application/json; charset=utf-8", headers)

        def do_GET(self):
            self._error(405, "4050", "use POST")

        def do_POST(self):
            length = self.headers.get("Content-Length") or "0"
            if not (length.isascii() and length.isdigit()) or int(length) > MAX_BODY:
                self.close_connection = True  # the body was not read: what follows is not a request
                return self._error(400, "4001", f"a Content-Length of at most {MAX_BODY} bytes is required")
            body = self.rfile.read(int(length))
            path = urllib.parse.urlsplit(self.path).path
            operation = routes.get(path)
            if operation is None:
                return self._error(404, "4040", "not found")
            agency.counters.add(requests=1)
            try:  # read first for the references a batch names; refused (403) before a bad body is said (400)
                ids, page, refs = parse_request(spec, body)
                bad = None
            except BadRequestBody as exc:
                ids, page, refs, bad = [], 1, None, exc
            refusal = check_request(self.headers, method="POST", path=path, body=body, credential=agency.credential,
                                    hub_key=agency.hub_key, refs=refs)
            if refusal:
                agency.counters.add(refused=1)
                return self._error(403, "4030", refusal)
            delay = agency.latency()
            if delay:
                time.sleep(delay)
            if agency.faults.flaky and agency.roll() < agency.faults.rates["flaky"]:
                if agency.roll() < 0.5:
                    agency.counters.add(throttled=1)
                    return self._error(429, "4290", "too many requests", {"Retry-After": "1"})
                agency.counters.add(errors=1)
                return self._error((500, 502, 503)[int(agency.roll() * 3)], "5000", "service unavailable")
            if agency.faults.slow and agency.roll() < agency.faults.rates["hang"]:
                agency.counters.add(hung=1)
                time.sleep(agency.hang_s)
                self.close_connection = True
                return
            if bad is not None:
                agency.counters.add(bad_request=1)
                return self._error(400, "4000", str(bad))
            if agency.on_query is not None:
                agency.on_query(ids, page)
            if operation == "members":
                if len(ids) != 1 or refs is not None:
                    agency.counters.add(bad_request=1)
                    return self._error(400, "4003", "exactly one ID number per household-members query")
                status, out, ctype, headers = agency.answer_members(ids[0], page, self.headers.get(NONCE) or "")
            elif len(ids) > spec.max_batch:
                agency.counters.add(bad_request=1)
                return self._error(400, "4002", f"at most {spec.max_batch} ID numbers per call")
            elif refs is not None:
                agency.counters.add(batch_queries=1)
                status, out, ctype, headers = agency.answer_batch(ids, refs, page, self.headers.get(NONCE) or "")
            else:
                status, out, ctype, headers = agency.answer(ids, page, self.headers.get(NONCE) or "")
            cut = agency.faults.truncated and agency.roll() < agency.faults.rates["truncated"]
            if cut:
                agency.counters.add(truncated=1)
            self._send(status, out, ctype, headers, cut=cut)

    return Handler


class AgencyServer:
    """The index and every agency, each agency on its own loopback port; the identity provider on one more."""

    def __init__(self, *, hub_key: Ed25519PublicKey, credentials: dict[str, Credential], answer_keys: Path,
                 households: int = 1000, seed: int = 1, faults: str = "none", host: str = "127.0.0.1", port: int = 0,
                 fault_rates: dict | None = None, registration: Registration | None = None):
        """``answer_keys``: the agencies' answer keys file (connectors.signing.answer_keys_path); ``registration``:
        the hub's registration with the identity provider, which then runs too (port + len(SPECS) + 1)."""
        self.faults = parse_faults(faults, fault_rates)
        self.population = Population(seed, households)
        missing = sorted(set(SPECS) - set(credentials))
        if missing:
            raise KeyError(f"no credentials for {', '.join(missing)}; run `hub init`")
        self.answer_keys = {k: AnswerKeys(answer_keys, k) for k in SPECS}
        self.agencies = {k: Agency(s, self.population, self.faults, credentials[k], hub_key, seed, self.answer_keys[k])
                         for k, s in SPECS.items()}
        self.index_httpd = ThreadingHTTPServer((host, port), self._index_handler())
        self.httpds: dict[str, ThreadingHTTPServer] = {}
        for i, (key, agency) in enumerate(self.agencies.items(), 1):
            if key in self.faults.down:
                continue
            self.httpds[key] = ThreadingHTTPServer((host, port + i if port else 0), _handler(agency))
        self._reserved_down = {key: port + i if port else 0 for i, key in enumerate(self.agencies, 1)
                               if key in self.faults.down}
        for h in [self.index_httpd, *self.httpds.values()]:
            h.daemon_threads = True
        self._identity = None
        if registration is not None:
            self._identity = IdentityProvider(self.population, registration, host=host,
                                              port=port + len(SPECS) + 1 if port else 0)
        self._threads: list[threading.Thread] = []

    @classmethod
    def from_hub_home(cls, **kwargs) -> "AgencyServer":
        """Agencies that trust the hub of HUB_HOME: its public key and the credentials `hub init` issued."""
        home = settings().home
        if "registration" not in kwargs and registration_path(home).exists():
            kwargs["registration"] = load_registration(home)
        return cls(hub_key=keyring().public_key, credentials=load_credentials(credentials_path(home)),
                   answer_keys=answer_keys_path(home), **kwargs)

    @property
    def identity(self) -> IdentityProvider | None:
        """The simulated identity provider, when the server was given the hub's registration."""
        return self._identity

    @property
    def url(self) -> str:
        host, port = self.index_httpd.server_address[:2]
        return f"http://{host}:{port}/"

    def base_url(self, key: str) -> str:
        if key in self.httpds:
            host, port = self.httpds[key].server_address[:2]
        else:  # down: a port nothing listens on
            host, port = "127.0.0.1", self._reserved_down[key] or _free_port()
            self._reserved_down[key] = port
        return f"http://{host}:{port}/{key}/"

    def index(self) -> dict:
        return {
            "sources": [
                {"key": k, "name": a.spec.name, "base_url": self.base_url(k), "format": a.spec.wire,
                 "auth": a.spec.auth, "max_batch": a.spec.max_batch, "page_size": a.spec.page_size,
                 "path": a.spec.path,
                 "batch_exchange": {"refs_field": a.spec.refs_field, "ref_field": a.spec.ref_field},
                 **({"members_path": a.spec.members_path} if a.spec.members_path else {}),
                 "answer_key": self._public_key(k)}
                for k, a in self.agencies.items()
            ],
            "households": self.population.n,
            "seed": self.population.seed,
            "faults": self.faults.names,
            **({"identity": {"issuer": self._identity.issuer, "discovery": self._identity.discovery_url}}
               if self._identity else {}),
        }

    def _public_key(self, key: str) -> dict:
        """The agency's active answer key, as the index lists it for the demo (the hub trusts its own list)."""
        kid, private = self.answer_keys[key].active()
        return {"kid": kid, "public": b64e(private.public_key().public_bytes_raw()), "algorithm": "Ed25519"}

    def stats(self) -> dict:
        return {k: a.counters.as_dict() for k, a in self.agencies.items()}

    def _servers(self) -> list[ThreadingHTTPServer]:
        return [self.index_httpd, *self.httpds.values(), *([self._identity.httpd] if self._identity else [])]

    def start(self) -> "AgencyServer":
        for h in self._servers():
            t = threading.Thread(target=h.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def serve_forever(self) -> None:
        """Serve in this process until it stops (``hub agencies serve``). What is made by now (the population above
        all) lives as long as the process: it is frozen out of the collector's way, which otherwise walks all of it
        again and again while answers are made (a city's population made every call about a fifth slower)."""
        gc.collect()
        gc.freeze()
        for h in self._servers()[1:]:
            threading.Thread(target=h.serve_forever, daemon=True).start()
        self.index_httpd.serve_forever()

    def stop(self) -> None:
        servers = self._servers()
        stoppers = [threading.Thread(target=h.shutdown) for h in servers]  # each waits one poll: wait in parallel
        for t in stoppers:
            t.start()
        for t in stoppers:
            t.join()
        for h in servers:
            h.server_close()

    def _index_handler(self) -> Callable:
        server = self

        class Index(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self):
                if self.path == "/":
                    doc = server.index()
                elif self.path == "/_stats":
                    doc = server.stats()
                else:
                    self.send_error(404)
                    return
                body = json.dumps(doc, ensure_ascii=False).encode("utf-8")
                self.send_response(200)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Index


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
