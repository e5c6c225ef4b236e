"""Simulated agencies: real HTTP services on 127.0.0.1, one process hosting them all.

``GET /`` answers the index (each source's key and base URL); ``GET /_stats`` the counters (requests
served, refused, rows returned) that tests read to prove what reached an agency.

Household registration (公安户籍) speaks the style of a public-security data-sharing interface: a POST
of up to ``MAX_BATCH`` ID numbers under field ``sfzhList``, answered with pinyin-abbreviated fields and
code tables (xb sex, yhzgx relation to head, zt status, dzbm address code). A request without the
``X-Auth-Ref`` header (the authorization reference the hub sends with every call) is refused with 403.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from agencies.population import Household, Person, households
from schemas.codes import PERSON_STATUS, RELATION_CODES, SEX

SEX_CODES = {v: k for k, v in SEX.items()}
STATUS_CODES = {v: k for k, v in PERSON_STATUS.items()}

FAULT_PROFILES = ("none", "dirty")


class UnknownFaultProfile(ValueError):
    pass


def parse_faults(spec: str) -> frozenset[str]:
    parts = frozenset(p.strip() for p in (spec or "none").split(",") if p.strip())
    unknown = sorted(parts - set(FAULT_PROFILES))
    if unknown:
        raise UnknownFaultProfile(f"unknown fault profile(s) {unknown}; known: {', '.join(FAULT_PROFILES)}")
    return parts - {"none"}


@dataclass
class Counters:
    requests: int = 0
    served: int = 0
    refused: int = 0
    rows: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **deltas: int) -> None:
        with self.lock:
            for k, v in deltas.items():
                setattr(self, k, getattr(self, k) + v)

    def as_dict(self) -> dict:
        return {"requests": self.requests, "served": self.served, "refused": self.refused, "rows": self.rows}


class Population:
    """The people of a generated population, indexed by ID number."""

    def __init__(self, seed: int, n: int):
        self.seed, self.n = seed, n
        self.by_id: dict[str, tuple[Household, Person]] = {}
        for hh in households(seed, n):
            for p in hh.members:
                self.by_id[p.id_number] = (hh, p)


def _dirty(row: dict) -> dict:
    """Corrupt some rows deterministically, as a careless export would."""
    h = int(hashlib.sha256(row["sfzh"].encode()).hexdigest(), 16) % 10
    if h == 0:  # wrong check character
        last = row["sfzh"][17]
        row["sfzh"] = row["sfzh"][:17] + ("0" if last != "0" else "1")
    elif h == 1:  # unknown address code
        row["dzbm"] = "999999"
    return row


class HouseholdRegistry:
    key = "household"
    name = "公安户籍"
    MAX_BATCH = 100

    def __init__(self, population: Population, faults: frozenset[str]):
        self.population, self.faults = population, faults

    def row(self, hh: Household, p: Person) -> dict:
        return {
            "sfzh": p.id_number,
            "xm": p.name,
            "xb": SEX_CODES[p.sex],
            "csrq": p.birth_date.strftime("%Y%m%d"),
            "hh": hh.household_no,
            "yhzgx": RELATION_CODES[p.relation],
            "zt": STATUS_CODES[p.status],
            "dzbm": p.address_code,
        }

    def query(self, body: dict) -> tuple[int, dict]:
        ids = body.get("sfzhList")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            return 400, {"code": "4001", "msg": "sfzhList must be a list of ID numbers"}
        if len(ids) > self.MAX_BATCH:
            return 400, {"code": "4002", "msg": f"at most {self.MAX_BATCH} ID numbers per call"}
        data, not_found = [], []
        for i in ids:
            hit = self.population.by_id.get(i)
            if hit is None:
                not_found.append(i)
                continue
            row = self.row(*hit)
            data.append(_dirty(row) if "dirty" in self.faults else row)
        return 200, {"code": "0000", "msg": "ok", "data": data, "notFound": not_found}


class AgencyServer:
    """All simulated agencies behind one ThreadingHTTPServer."""

    def __init__(self, *, households: int = 1000, seed: int = 1, faults: str = "none", host="127.0.0.1", port=0):
        self.faults = parse_faults(faults)
        self.population = Population(seed, households)
        self.agencies = {HouseholdRegistry.key: HouseholdRegistry(self.population, self.faults)}
        self.counters = {key: Counters() for key in self.agencies}
        self.httpd = ThreadingHTTPServer((host, port), self._handler())
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/"

    def base_url(self, key: str) -> str:
        return f"{self.url}{key}/"

    def index(self) -> dict:
        return {
            "sources": [
                {"key": key, "name": a.name, "base_url": self.base_url(key), "max_batch": a.MAX_BATCH}
                for key, a in self.agencies.items()
            ],
            "households": self.population.n,
            "seed": self.population.seed,
            "faults": sorted(self.faults) or ["none"],
        }

    def stats(self) -> dict:
        return {key: c.as_dict() for key, c in self.counters.items()}

    def start(self) -> "AgencyServer":
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="agencies", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handler(self) -> Callable:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # request lines carry no personal data, but stay quiet
                pass

            def _send(self, status: int, body: dict) -> None:
                data = json.dumps(body, ensure_ascii=False).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path == "/":
                    return self._send(200, server.index())
                if self.path == "/_stats":
                    return self._send(200, server.stats())
                self._send(404, {"code": "4040", "msg": "not found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                parts = self.path.strip("/").split("/")
                agency = server.agencies.get(parts[0]) if parts else None
                if agency is None or parts[1:] != ["api", "v1", "persons", "query"]:
                    return self._send(404, {"code": "4040", "msg": "not found"})
                counters = server.counters[agency.key]
                counters.add(requests=1)
                if not self.headers.get("X-Auth-Ref"):
                    counters.add(refused=1)
                    return self._send(403, {"code": "4030", "msg": "authorization reference missing"})
                try:
                    body = json.loads(raw.decode("utf-8"))
                except (UnicodeDecodeError, json.JSONDecodeError):
                    counters.add(refused=1)
                    return self._send(400, {"code": "4000", "msg": "body is not JSON"})
                status, answer = agency.query(body)
                if status == 200:
                    counters.add(served=1, rows=len(answer["data"]))
                else:
                    counters.add(refused=1)
                self._send(status, answer)

        return Handler
