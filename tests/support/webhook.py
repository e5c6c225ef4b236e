"""A department's webhook on loopback: records what it is sent, and answers with the statuses given, then 200."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def serve_webhook(answers: list[int] | None = None) -> Iterator[tuple[str, list[tuple[dict, bytes]]]]:
    """Yields (url, received): each POST as (headers, body). A generator for a fixture to yield from."""
    received: list[tuple[dict, bytes]] = []
    answers = list(answers or [])

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((dict(self.headers), body))
            self.send_response(answers.pop(0) if answers else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()
