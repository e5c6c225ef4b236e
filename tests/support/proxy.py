"""A fault-injecting proxy between the hub and one simulated agency, as a faulty network, a faulty agency or a man in
the middle would behave: every request goes to the agency unchanged, and its answer comes back changed as ``mode``
says. The answers it saw are kept, so it can serve an old one again (a replay) or one meant for another request."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

from connectors.signing import MANIFEST, SIGNATURE, KEY_ID, AnswerKeys, answer_keys_path, b64d, sign_answer
from core.settings import settings
from schemas.contracts import SPECS

SIGNED = (MANIFEST, SIGNATURE, KEY_ID)
PASSED = ("Content-Type", "X-Page", "X-Total-Pages", "X-Total", *SIGNED)
HTML = b"<html><head><title>502</title></head><body><h1>Bad Gateway</h1></body></html>"

# what each mode does to an answer (body, headers) -> (body, headers); ``proxy`` for the modes that need its past
MODES = ("pass", "cut_row", "empty", "html", "digit", "unsigned", "replay", "miscount", "signed_html", "signed_empty")


def cut_row(source: str, body: bytes) -> bytes:
    """The answer with its last row cut out, still well-formed."""
    spec = SPECS[source]
    if spec.wire == "json":
        doc = json.loads(body.decode("utf-8"))
        assert doc["data"], "the answer has no row to cut"
        doc["data"].pop()
        return json.dumps(doc, ensure_ascii=False).encode("utf-8")
    if spec.wire == "xml":
        text = body.decode("utf-8")
        records = list(re.finditer(r"<record>.*?</record>", text, re.S))
        assert records, "the answer has no row to cut"
        last = records[-1]
        return (text[:last.start()] + text[last.end():]).encode("utf-8")
    lines = body.decode("gbk").split("\r\n")
    rows = [i for i, line in enumerate(lines[1:], 1) if line]
    assert rows, "the answer has no row to cut"
    del lines[rows[-1]]
    return "\r\n".join(lines).encode("gbk")


def changed_digit(body: bytes) -> bytes:
    """The answer with one digit of its last number changed (a balance, an amount, a check digit)."""
    for i in range(len(body) - 1, -1, -1):
        if 0x30 <= body[i] <= 0x39:
            return body[:i] + bytes([0x30 + (body[i] - 0x30 + 1) % 10]) + body[i + 1:]
    raise AssertionError("the answer has no digit to change")


def resigned(source: str, body: bytes, headers: dict, *, manifest_from: bytes | None = None) -> dict:
    """Headers signing ``body`` with the agency's own key, the counts and not-found list taken from the manifest of
    the answer as it was (``manifest_from``: the original body's): an agency whose own answer lost a row, or that
    signs an error page."""
    doc = json.loads(b64d(headers[MANIFEST]))
    kid, key = AnswerKeys(answer_keys_path(settings().home), source).active()
    return {**headers, **sign_answer(key, kid, source=source, nonce=doc["nonce"], body=body, page=doc["page"],
                                     pages=doc["pages"], rows=doc["rows"], not_found=doc["not_found"])}


class FaultProxy:
    """A loopback proxy for ``source``'s agency at ``upstream`` (its base URL); ``base_url`` is the proxy's."""

    def __init__(self, source: str, upstream: str, mode: str = "pass"):
        assert mode in MODES, mode
        self.source, self.upstream, self.mode = source, upstream.rstrip("/") + "/", mode
        self.seen: list[tuple[bytes, dict]] = []  # every answer the agency gave, as it gave it
        self.served = 0
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/{self.source}/"

    def __enter__(self) -> "FaultProxy":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def change(self, body: bytes, headers: dict) -> tuple[bytes, dict]:
        mode = self.mode
        if mode == "pass":
            return body, headers
        if mode == "cut_row":
            return cut_row(self.source, body), headers
        if mode == "empty":
            return b"", headers
        if mode == "html":
            return HTML, {**headers, "Content-Type": "text/html"}
        if mode == "digit":
            return changed_digit(body), headers
        if mode == "unsigned":
            return body, {k: v for k, v in headers.items() if k not in SIGNED}
        if mode == "replay":  # the first answer seen, served for every later request
            return self.seen[0]
        if mode == "miscount":  # the agency's own answer lost a row, its counts did not
            cut = cut_row(self.source, body)
            return cut, resigned(self.source, cut, headers)
        if mode == "signed_html":
            return HTML, resigned(self.source, HTML, {**headers, "Content-Type": "text/html"})
        if mode == "signed_empty":
            return b"", resigned(self.source, b"", headers)
        raise AssertionError(mode)

    def _handler(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = self.path.split(f"/{proxy.source}/", 1)[1]
                sent = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                resp = requests.post(proxy.upstream + path, data=body, headers=sent, timeout=10)
                answer = resp.content, {k: resp.headers[k] for k in PASSED if k in resp.headers}
                with proxy._lock:
                    proxy.seen.append(answer)
                    out, headers = proxy.change(*answer) if resp.status_code == 200 else answer
                    proxy.served += 1
                self.send_response(resp.status_code)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        return Handler
