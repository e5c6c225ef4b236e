"""The department API's record read: requests per second and p50/p99 latency of
``GET /v1/households/{household_id}/record?purpose=dibao`` (a department client's bearer token) at 32 concurrent
clients on loopback, and the ratio to a bare FastAPI JSON route (``GET /bench/bare``) served by the same process in
the same run.

Set-up (not measured): a scratch HUB_HOME (fresh keys, the store of the backend measured), the simulated agencies, one department client
(a civil-affairs office) and one request of that department with purpose dibao and a valid authorization, verified
inline over every source, so that one household record is published and the department has an open case for it; one
read through the API checks the answer (200, signature).

The app of ``hub.web.app.create_app()``, plus the bare route, runs under uvicorn (uvloop and httptools when
installed, log level warning) in its own process(es): on SQLite with 1 worker (``api_read_*``), on a scratch
PostgreSQL database with 1 worker (``api_read_pg_*``) and with one worker per core as ``hub api --workers N`` runs
it (``api_read_pg_workers_*``), each against its bare route in the same server, with the per-client rate limit off
(HUB_API_RATE=0: the figure is the API's capacity, not the limit). The load generator is another process: 32 keep-alive HTTP/1.1 connections on one
asyncio loop, each sending its next request when the previous answer is read. Per route: a warm-up (1 s, 3 s in full),
then a fixed window (5 s with --quick, 20 s in full); every request completed in the window counts, with its latency
(from writing the request to reading the whole body). Any answer but 200 fails the benchmark. The CPU time of both
processes is printed, to show whether the load generator, rather than the server, was the limit.
"""

from __future__ import annotations

# Imports inside functions below are deliberate: `hub bench` imports every benchmark to list it, and each loads
# what it measures only when it runs (some in a child process of their own, with a scratch HUB_HOME set first).
import json
import math
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from schemas.vocabulary import AGENCY_SOURCES

ROOT = Path(__file__).resolve().parents[1]
CONCURRENCY = 32
DEPARTMENT = "MZ-210302"  # a civil-affairs office: hub/rules/access_policy.toml lets MZ-* read the whole record for dibao
SOURCES = AGENCY_SOURCES
HOUSEHOLDS, SEED = 20, 13

# The API server: hub.web.app's app plus one bare JSON route (bench_app), on 127.0.0.1:<argv[1]>, <argv[2]> workers.
_SERVER = """
import sys
import uvicorn

uvicorn.run("bench.bench_api:bench_app", factory=True, host="127.0.0.1", port=int(sys.argv[1]),
            workers=int(sys.argv[2]), log_level="warning")
"""


def bench_app():
    """hub.web.app's app with one bare JSON route, ``GET /bench/bare``: the framework's floor in the same process."""
    from hub.web.app import create_app

    app = create_app()

    @app.get("/bench/bare")
    def bare() -> dict:
        return {"status": "ok", "n": 1}

    return app


_LOAD = "import json, sys; from bench.bench_api import load; print(json.dumps(load(**json.loads(sys.argv[1]))))"


# -- the load generator (runs in its own process) ----------------------------------------------
def _percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of a sorted list."""
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))]


def load(port: int, path: str, token: str | None = None, concurrency: int = CONCURRENCY, warmup_s: float = 1.0,
         duration_s: float = 5.0) -> dict:
    """Drive ``GET path`` with ``concurrency`` keep-alive connections; figures of the requests completed in the
    window after the warm-up."""
    import asyncio

    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{auth}Accept: application/json\r\n\r\n".encode()
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def client(start: float, end: float) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while True:
                t0 = time.perf_counter()
                if t0 >= end:
                    return
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head[9:12])
                length = None
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    name = name.strip().lower()
                    if name == b"content-length":
                        length = int(value)
                    elif name == b"transfer-encoding" or (name == b"connection" and value.strip().lower() == b"close"):
                        raise RuntimeError(f"unexpected response framing: {line.decode(errors='replace')}")
                if length is None:
                    raise RuntimeError("response without Content-Length")
                await reader.readexactly(length)
                t1 = time.perf_counter()
                if start <= t1 < end:
                    latencies.append(t1 - t0)
                    statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    async def main() -> None:
        start = time.perf_counter() + warmup_s
        await asyncio.gather(*(client(start, start + duration_s) for _ in range(concurrency)))

    cpu0 = time.process_time()
    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())
    cpu_s = time.process_time() - cpu0
    latencies.sort()
    n = len(latencies)
    return {"requests": n, "rps": n / duration_s, "p50_ms": _percentile(latencies, 0.50) * 1000 if n else 0.0,
            "p99_ms": _percentile(latencies, 0.99) * 1000 if n else 0.0, "statuses": statuses,
            "non_200": n - statuses.get(200, 0), "client_cpu_share": cpu_s / (warmup_s + duration_s)}


# -- set-up and orchestration ------------------------------------------------------------------
def _setup() -> tuple[str, str]:
    """A department client's token and a household record it may read for dibao."""
    from agencies.requests import sample_request
    from agencies.server import AgencyServer
    from hub.services.clients import create_client
    from hub.stages.intake import InvalidRequest, create_request
    from hub.stages.pipeline import run_inline

    _, token = create_client("bench department", "department", department=DEPARTMENT)
    server = AgencyServer.from_hub_home(households=HOUSEHOLDS, seed=SEED).start()
    saved = os.environ.get("HUB_AGENCIES_URL")
    os.environ["HUB_AGENCIES_URL"] = server.url
    try:
        for k in range(HOUSEHOLDS):
            doc = sample_request(seed=SEED, households=HOUSEHOLDS, k=k, sources=SOURCES, department=DEPARTMENT)
            try:
                request_id = create_request(doc, department=DEPARTMENT)
            except InvalidRequest:  # a household of minors only: nobody can sign
                continue
            result = run_inline(request_id)
            if result.status == "published" and result.household_ref:
                return token, result.household_ref
        raise RuntimeError("no household record could be published")
    finally:
        if saved is None:
            os.environ.pop("HUB_AGENCIES_URL", None)
        else:
            os.environ["HUB_AGENCIES_URL"] = saved
        server.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cpu_s(pid: int) -> float:
    """User and system CPU seconds of a process (Linux; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def _wait_ready(server: subprocess.Popen, port: int, log: Path, timeout: float = 60.0) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the API server exited ({server.returncode}):\n{log.read_text()[-2000:]}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the API server did not answer within {timeout:.0f} s:\n{log.read_text()[-2000:]}")


def _check_read(port: int, path: str, token: str, household_id: str) -> None:
    import requests

    from hub.stages.records import verify_record

    resp = requests.get(f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    if resp.status_code != 200:
        raise RuntimeError(f"record read answered {resp.status_code}: {resp.text[:300]}")
    body = resp.json()
    if body["household_id"] != household_id or not verify_record(body["content"], body["signature"]):
        raise RuntimeError("record read: wrong household or a signature that does not verify")
    print(f"record read checked: version {body['version']}, {len(resp.content):,} bytes")


def _drive(server_pid: int, port: int, path: str, token: str | None, warmup_s: float, duration_s: float) -> dict:
    args = {"port": port, "path": path, "token": token, "warmup_s": warmup_s, "duration_s": duration_s}
    cpu0 = _cpu_s(server_pid)
    out = subprocess.run([sys.executable, "-c", _LOAD, json.dumps(args)], cwd=ROOT, capture_output=True, text=True,
                         timeout=warmup_s + duration_s + 120)
    if out.returncode != 0:
        raise RuntimeError(f"the load generator failed:\n{out.stderr[-2000:]}")
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    figures["server_cpu_share"] = (_cpu_s(server_pid) - cpu0) / (warmup_s + duration_s)
    if figures["non_200"] or not figures["requests"]:
        raise RuntimeError(f"GET {path.split('?')[0]}: {figures['requests']} requests, statuses {figures['statuses']}")
    return figures


def _measure(backend: str, workers: int, duration_s: float, warmup_s: float) -> dict:
    """Bare route and record read on a scratch store of ``backend`` (sqlite or postgresql), ``workers`` server
    processes."""
    import logging

    from bench.scratch import scratch_home

    logging.getLogger("hub").setLevel(logging.WARNING)
    with scratch_home("hub-bench-api-", postgres=backend == "postgresql") as home:
        t0 = time.monotonic()
        token, household_id = _setup()
        print(f"[{backend}, {workers} worker{'s' if workers > 1 else ''}] set-up: one household verified over "
              f"{len(SOURCES)} sources and published in {time.monotonic() - t0:,.1f} s")
        port = _free_port()
        log = home / "api-server.log"
        with open(log, "wb") as fh:
            server = subprocess.Popen([sys.executable, "-c", _SERVER, str(port), str(workers)], cwd=ROOT,
                                      env={**os.environ, "HUB_API_RATE": "0"}, stdout=fh, stderr=subprocess.STDOUT)
        try:
            _wait_ready(server, port, log)
            read_path = f"/v1/households/{household_id}/record?purpose=dibao"
            _check_read(port, read_path, token, household_id)
            print(f"  {CONCURRENCY} keep-alive clients, warm-up {warmup_s:g} s, window {duration_s:g} s per route")
            figures = {}
            for name, path, auth in (("bare", "/bench/bare", None), ("read", read_path, token)):
                f = figures[name] = _drive(server.pid, port, path, auth, warmup_s, duration_s)
                print(f"  {name:<5} {f['rps']:>9,.1f} req/s  p50 {f['p50_ms']:>7.2f} ms  p99 {f['p99_ms']:>7.2f} ms  "
                      f"({f['requests']:,} requests; CPU: server {f['server_cpu_share']:.0%}, "
                      f"load generator {f['client_cpu_share']:.0%})")
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    return figures


def run(quick: bool = False, duration_s: float | None = None, warmup_s: float | None = None) -> dict:
    """SQLite (one worker: one writer per file), PostgreSQL with one worker and with one per core
    (``hub api --workers``)."""
    duration_s = duration_s or (5.0 if quick else 20.0)
    warmup_s = warmup_s or (1.0 if quick else 3.0)
    out = {}
    cores = os.cpu_count() or 1
    for backend, workers, tag in (("sqlite", 1, ""), ("postgresql", 1, "_pg"), ("postgresql", cores, "_pg_workers")):
        if tag == "_pg_workers" and cores == 1:
            continue
        figures = _measure(backend, workers, duration_s, warmup_s)
        read, bare = figures["read"], figures["bare"]
        out.update({f"api_read{tag}_rps": round(read["rps"], 1), f"api_read{tag}_p50_ms": round(read["p50_ms"], 2),
                    f"api_read{tag}_p99_ms": round(read["p99_ms"], 2), f"api_bare{tag}_rps": round(bare["rps"], 1),
                    f"api_bare{tag}_p50_ms": round(bare["p50_ms"], 2), f"api_bare{tag}_p99_ms": round(bare["p99_ms"], 2),
                    f"api_read{tag}_ratio_vs_bare": round(read["rps"] / bare["rps"], 3),
                    f"api_read{tag}_p99_x_bare": round(read["p99_ms"] / bare["p99_ms"], 2)})
        print(f"  record read / bare route: {out[f'api_read{tag}_ratio_vs_bare']:.3f} of the requests per second, "
              f"p99 {out[f'api_read{tag}_p99_x_bare']:.2f} x")
    if "api_read_pg_workers_rps" in out:
        out["api_read_pg_workers"] = cores
    return out


if __name__ == "__main__":
    run(quick="--quick" in sys.argv)
