"""What the DCI tests share: the spec read in place (../shared/dci/social_api_v1.0.0.yaml) with a validator for
every request and response, a remote platform that signs its envelopes, and a loopback server standing in for a
platform's callback endpoints."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import re
import threading
import urllib.parse
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import jsonschema
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from connectors import envelope as env

SPEC = Path(__file__).resolve().parents[2] / ".." / "shared" / "dci" / "social_api_v1.0.0.yaml"
URN = "urn:spdci:social-api"
FORMATS = jsonschema.FormatChecker()


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value) -> bool:  # RFC 3339: a date, a time and an offset
    if not isinstance(value, str):
        return True
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", value):
        raise ValueError("not an RFC 3339 date-time")
    dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return True


@FORMATS.checks("uri", raises=ValueError)
def _uri(value) -> bool:
    if isinstance(value, str) and not urllib.parse.urlsplit(value).scheme:
        raise ValueError("not an absolute URI")
    return True


@lru_cache(maxsize=1)
def spec() -> dict:
    return yaml.safe_load(SPEC.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def _registry() -> Registry:
    return Registry().with_resource(URN, Resource.from_contents(spec(), default_specification=DRAFT4))


def _pointer(*parts: str) -> str:
    return "#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


@lru_cache(maxsize=64)
def _validator(pointer: str) -> jsonschema.Draft4Validator:
    return jsonschema.Draft4Validator({"$ref": URN + pointer}, registry=_registry(), format_checker=FORMATS)


def _check(pointer: str, instance) -> None:
    error = jsonschema.exceptions.best_match(_validator(pointer).iter_errors(instance))
    assert error is None, f"{'/'.join(map(str, error.absolute_path))}: {error.message[:300]}"


def check_request(path: str, body) -> None:
    """``body`` is a valid request to ``path`` (the spec's path, e.g. /registry/sync/search)."""
    _check(_pointer("paths", path, "post", "requestBody", "content", "application/json", "schema"), body)


def check_response(path: str, status: int, body) -> None:
    """``body`` is the spec's response of ``path`` for ``status`` (its own entry, else ``default``)."""
    responses = spec()["paths"][path]["post"]["responses"]
    key = str(status) if str(status) in responses else "default"
    response = responses[key]
    if "$ref" in response:
        name = response["$ref"].rsplit("/", 1)[1]
        pointer = _pointer("components", "responses", name, "content", "application/json", "schema")
    else:
        pointer = _pointer("paths", path, "post", "responses", key, "content", "application/json", "schema")
    _check(pointer, body)


def check_schema(name: str, instance) -> None:
    _check(_pointer("components", "schemas", name), instance)


def spec_paths() -> list[str]:
    return sorted(spec()["paths"])


# -- a remote platform -------------------------------------------------------------------------------------------
@dataclass
class Remote:
    """A federated platform as the tests play it: its code, its key, and the token this hub issued to it."""

    platform: str
    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    token: str = ""
    client_id: str = ""

    @property
    def public_key(self) -> str:
        return env.public_key_b64(self.key.public_key())

    def header(self, action: str, *, total_count: int = 1, callback: bool = False, **over) -> dict:
        if callback:
            h = env.callback_header(action, status="succ", sender_id=self.platform, receiver_id=None,
                                    total_count=total_count)
        else:
            h = env.request_header(action, sender_id=self.platform, receiver_id=None, total_count=total_count)
        h.update(over)
        return {k: v for k, v in h.items() if v is not None}

    def envelope(self, header: dict, message, *, key: Ed25519PrivateKey | None = None,
                 sender: str | None = None) -> dict:
        body = {"signature": env.sign(header, message, key or self.key, sender or self.platform), "header": header}
        if message is not None:
            body["message"] = message
        return body

    def auth(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}


# -- a platform's callback endpoints on loopback ---------------------------------------------------------------------
class Callbacks:
    """A platform's /registry/... callbacks: every POST kept (path, headers, JSON body), answered with an ACK."""

    def __init__(self, prefix: str = "/dci", forward=None):
        """``forward(path, body) -> (status, answer)``: answer with that instead of an ACK (a relay)."""
        self.prefix, self.received, self.answer, self.forward = prefix, [], None, forward
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    parsed = json.loads(body)
                except ValueError:
                    parsed = None
                owner.received.append((self.path, dict(self.headers), parsed))
                if owner.forward is not None:
                    status, answer = owner.forward(self.path, parsed)
                else:
                    status, answer = owner.answer or (200, {"message": {
                        "ack_status": "ACK", "timestamp": env.timestamp(), "correlation_id": env.new_id()}})
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{self.prefix}"

    def at(self, path: str) -> list[dict]:
        return [body for p, _h, body in self.received if p == self.prefix + path]

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def peers_file(path: Path, *peers: dict) -> Path:
    path.write_text(json.dumps({"peers": list(peers)}), encoding="utf-8")
    path.chmod(0o600)
    return path
