"""The re-check of a whole city's recipients, end to end (and the ``latency`` phase bench.bench_request runs: one
household's verification).

reverify_rows_per_s: person-source rows per second through every stage of the re-check (the consent gate, the
agency calls, encrypted storage, validation, the checks across sources, unify and publish: ``hub.stages.reverify``,
what ``reverify_recipients`` runs per batch), at 100,000 persons (1,000 with --quick, N with --scale N), eleven
sources, the simulated agencies on loopback in their own process with no injected latency, measured as it runs in
production: one worker process per core (at most 8) over the mapped batches at once, the rows of all over the time
from the first start to the last end (reverify_rows_per_s_one_process: the same batches in one process, before).
Batches are BATCH households, fewer where the city is small so that every worker has several. One row is one person
asked of one source. The stages log at INFO into a file of each worker's, as an Airflow task logs.
reverify_peak_rss_mb is the peak resident set of the largest re-checking process.

reverify_wire_ratio: that rate divided by the rate of the same persons' answers fetched over the wire with the
same batch calls (batch exchanges of each agency's batch limit, signed, 12 at a time), then parsed, hashed and
inserted (the bare minimum below, fetch included).

reverify_ceiling_ratio: that rate divided by the rate of the bare minimum on the same rows in the same run: the
agencies' raw answers for the same persons (fetched beforehand, not timed) parsed, each row hashed (SHA-256) and
inserted into a plain SQLite table, one transaction per source. reverify_bare_fetch_rows_per_s is the rate at which
the same answers come over the wire (signed calls, 12 at a time), for reference.

The recipients are seeded beforehand and not measured: each household's request and authorization through
``hub.stages.intake``, a published record made with ``hub.rules.unify`` from the population's facts, and a dibao grant
(by as many processes as the re-check has workers, each its share of the households).
Seeding, the re-check and the bare minimum each run in a fresh process of their own, each from the store as seeded
(a copy made after seeding is put back before each) and against agencies started afresh: no phase measures a store
the phase before it grew, nor agencies it warmed.
Usage: ``python -m bench.bench_reverify [--quick | --scale N] [--no-one-process] [--no-baselines]`` (a province's
share: ``--scale 1000000 --no-one-process --no-baselines``); with HUB_BENCH_PROFILE=DIR each
phase runs under cProfile and leaves its statistics in DIR (what the closing notes' analyses of figures below their goals come from).
"""

from __future__ import annotations

# Imports inside functions below are deliberate: `hub bench` imports every benchmark to list it, and each loads
# what it measures only when it runs (some in a child process of their own, with a scratch HUB_HOME set first).
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from hub.airflow.schedules import RECHECK_BATCH
from schemas.vocabulary import AGENCY_SOURCES

ROOT = Path(__file__).resolve().parents[1]
SEED = 5
BATCH = RECHECK_BATCH  # households per re-check batch, as the DAG's tasks have (one GX run per source per batch)
OVERHEAD_LATENCY_MS = 200
SOURCES = AGENCY_SOURCES


def _free_port_block(n: int = 12) -> int:
    """A port P with P..P+n-1 free on loopback (the agencies' index and its eleven services)."""
    for base in range(8750, 9500, 20):
        socks = []
        try:
            for p in range(base, base + n):
                sock = socket.socket()
                socks.append(sock)
                sock.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError("no block of free ports for the agencies")


@contextlib.contextmanager
def agencies(households: int, faults: str = "none"):
    """``hub agencies serve`` in its own process, for the HUB_HOME of this environment; yields the index URL."""
    import requests

    port = _free_port_block()
    proc = subprocess.Popen([sys.executable, "-m", "hub.cli", "agencies", "serve", "--households", str(households),
                             "--seed", str(SEED), "--faults", faults, "--port", str(port)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(600):
            if proc.poll() is not None:
                raise RuntimeError(f"the agencies stopped: {proc.stderr.read().decode()[-500:]}")
            try:
                if requests.get(url, timeout=1).ok:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        else:
            raise RuntimeError("the agencies did not start")
        yield url
    finally:
        proc.terminate()
        proc.wait(30)


def _store_path() -> Path:
    """The scratch store's SQLite file."""
    from sqlalchemy.engine import make_url

    from core.settings import settings

    return Path(make_url(settings().database_url).database)


def _store_mb() -> float:
    """The store's size on disk in MB, its write-ahead log moved into it first (what the store takes, not what the
    log had not yet handed over when its writers stopped)."""
    import sqlite3

    store = _store_path()
    with contextlib.closing(sqlite3.connect(store)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return sum(p.stat().st_size for p in (store, store.with_name(store.name + "-wal")) if p.exists()) / 1e6


@contextlib.contextmanager
def _seeded_store(keep_copy: bool = True):
    """A copy of the scratch store as it is now (SQLite's online backup: whole and consistent, whatever its WAL
    holds); yields a function that puts it back, so that each phase starts from the same store and not from the one
    the phase before it left (a re-check adds a version of every record, its batches, rows and ledger entries), and
    one that counts the fetch batches in the store. Without ``keep_copy`` (one phase only: no copy of a province's
    store to make) there is nothing to put back."""
    import shutil
    import sqlite3
    import tempfile

    store = _store_path()
    keep = Path(tempfile.mkdtemp(prefix="hub-bench-seeded-")) / "seeded.db"

    def copy(source: str | Path, target: str | Path) -> None:
        with contextlib.closing(sqlite3.connect(source)) as src, contextlib.closing(sqlite3.connect(target)) as dst:
            src.backup(dst, pages=65536)

    def batches() -> int:
        with contextlib.closing(sqlite3.connect(store)) as conn:
            return conn.execute("SELECT count(*) FROM fetch_batches").fetchone()[0]

    def restore() -> int:
        """Put the seeded store back; returns the fetch batches it then holds (as seeded: none)."""
        copy(keep, store)
        return batches()

    if keep_copy:
        copy(store, keep)
    try:
        yield (restore if keep_copy else None), batches
    finally:
        shutil.rmtree(keep.parent, ignore_errors=True)


def _child(phase: str, *args: str) -> dict:
    """Run one phase in a fresh process (its own peak memory), in this environment's HUB_HOME; its last line is JSON."""
    out = subprocess.run([sys.executable, "-m", "bench.bench_reverify", "--phase", phase, *args], cwd=ROOT,
                         capture_output=True, text=True, env=os.environ.copy())
    if out.returncode != 0:
        raise RuntimeError(f"phase {phase} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- phases (each in its own process) ------------------------------------------------------------------------


def seed(persons: int, part: int = 0, parts: int = 1) -> dict:
    """Requests, authorizations, published records and dibao grants for the first households holding ``persons``
    living persons (``parts`` above 1: the households part, part + parts, ... of them, as one of ``parts`` seeding
    processes); returns the count of households and persons of all parts."""
    import datetime as dt
    import sqlite3

    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from agencies.population import facts, population
    from agencies.requests import request_for
    from bench.bench_records import publish, record_inputs
    from core.crypto import keyring
    from core.store import Request, session
    from hub.rules.standards import rules_at
    from hub.services import assistance
    from hub.stages.intake import create_request

    @event.listens_for(Engine, "connect")
    def unsynced(dbapi_conn, _record):  # the scratch store's setup, not measured: no sync at each of its commits
        if isinstance(dbapi_conn, sqlite3.Connection):
            dbapi_conn.execute("PRAGMA synchronous=OFF")

    keys = keyring()
    as_of = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)
    rules = rules_at(as_of.date())
    households = counted = 0
    for n, hh in enumerate(population(SEED, 10 * persons)):
        living = sum(m.status == "normal" for m in hh.members)
        households += 1
        counted += living
        if not living or n % parts != part:
            if counted >= persons:
                break
            continue
        app = create_request(request_for(hh, seed=SEED, sources=SOURCES))
        applicants, rows = record_inputs(facts(SEED, hh), keys.pseudonym)
        household_ref = publish(app, applicants, rows, as_of, rules, keys, SOURCES)
        with session() as s:
            req = s.get(Request, app)
            req.household_ref, req.status = household_ref, "published"
        assistance.report(household_ref=household_ref, department="MZ-210302", client_id="bench", programme="dibao",
                          granted_from=as_of.date(), request_id=app)
        if counted >= persons:
            break
    return {"households": households, "persons": counted}


def recheck(agencies_url: str, batch: int = BATCH, part: int = 0, parts: int = 1) -> dict:
    """Re-check the current recipients, ``batch`` households at a time: every batch, or (``parts`` above 1) the
    batches part, part + parts, ... of them, as one of ``parts`` worker processes over the mapped batches does;
    the figures of that, with the wall-clock times it started and ended."""
    import logging
    import resource

    from sqlalchemy import func, select

    from core.settings import settings
    from core.store import RequestMember, session
    from hub.stages.reverify import due_recipients, recheck_batch

    # the stages log what they log in an Airflow task (INFO; a re-check batch's validations and records summed up,
    # hub.stages.records.LOG_EACH), into a file of this worker's: what a task pays for its log, this pays too
    folder = settings().home / "log"
    folder.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(folder / f"bench-recheck-{part}-of-{parts}.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    for name in ("hub", "connectors", "consent", "schemas"):
        logging.getLogger(name).setLevel(logging.INFO)
        logging.getLogger(name).addHandler(handler)
    os.environ["HUB_AGENCIES_URL"] = agencies_url
    t0 = time.perf_counter()
    due = due_recipients(every=True)
    due_s = time.perf_counter() - t0
    batches = [due[i: i + batch] for i in range(0, len(due), batch)][part::parts]
    mine = [h for b in batches for h in b]
    with session() as s:  # the persons of these households (in chunks: SQLite bounds an IN list)
        persons = sum(s.scalar(select(func.count()).select_from(RequestMember).where(
            RequestMember.request_id.in_(mine[i: i + 500]))) for i in range(0, len(mine), 500))
    totals: dict[str, int] = {}
    rss: list[float] = []  # the resident set after each batch, MB
    started, t0 = time.time(), time.perf_counter()
    for n, households in enumerate(batches, 1):
        for k, v in recheck_batch(households, run_id=f"bench-recheck-{parts}-{part}").items():
            totals[k] = totals.get(k, 0) + v
        rss.append(_rss_mb())
        rate = sum(len(b) for b in batches[:n]) / (time.perf_counter() - t0)
        print(f"  [{part + 1}/{parts}] re-checked {n} of {len(batches)} batches ({rate:,.1f} households/s, "
              f"{rss[-1]:,.0f} MB resident)", file=sys.stderr, flush=True)
    seconds = time.perf_counter() - t0
    return {"households": len(mine), "persons": persons, "rows": persons * len(SOURCES), "seconds": seconds,
            "started": started, "ended": time.time(), "due_s": due_s, "outcome": totals,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "rss_growth_mb": rss[-1] - rss[0] if rss else 0.0}


def _rss_mb() -> float:
    """This process's resident set now, MB (Linux)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _children(phase: str, workers: int, *args: str) -> list[dict]:
    """``workers`` processes of one phase at once, worker k given ``args`` and then k and ``workers``; the result of
    each."""
    import tempfile

    # each worker's output in files, not pipes: a pipe nobody reads yet would stop its worker when full
    files = [(tempfile.TemporaryFile(mode="w+"), tempfile.TemporaryFile(mode="w+")) for _ in range(workers)]
    procs = [subprocess.Popen([sys.executable, "-m", "bench.bench_reverify", "--phase", phase, *args, str(k),
                               str(workers)], cwd=ROOT, env=os.environ.copy(), stdout=out, stderr=err, text=True)
             for k, (out, err) in enumerate(files)]
    parts = []
    for proc, (out, err) in zip(procs, files):
        proc.wait()
        out.seek(0)
        err.seek(0)
        result, errors = out.read(), err.read()
        out.close()
        err.close()
        if proc.returncode != 0:
            raise RuntimeError(f"a {phase} worker failed:\n{errors[-3000:]}")
        parts.append(json.loads(result.strip().splitlines()[-1]))
    return parts


def recheck_parallel(agencies_url: str, workers: int, batch: int) -> dict:
    """The re-check as it runs in production: ``workers`` processes over the mapped batches at once (as the
    reverify_recipients DAG's mapped tasks run under LocalExecutor or Celery), each a fresh process; the rows of all
    over the wall-clock time from the first start to the last end; the peak RSS is the largest process's."""
    parts = _children("recheck", workers, agencies_url, str(batch))
    outcome: dict[str, int] = {}
    for p in parts:
        for k, v in p["outcome"].items():
            outcome[k] = outcome.get(k, 0) + v
    return {"households": sum(p["households"] for p in parts), "persons": sum(p["persons"] for p in parts),
            "rows": sum(p["rows"] for p in parts), "outcome": outcome,
            "seconds": max(p["ended"] for p in parts) - min(p["started"] for p in parts),
            "peak_rss_mb": max(p["peak_rss_mb"] for p in parts), "workers": workers,
            "rss_growth_mb": max(p["rss_growth_mb"] for p in parts)}


def bare(agencies_url: str) -> dict:
    """The same persons' answers from every source, fetched (timed apart), then parsed, hashed and inserted."""
    import concurrent.futures
    import hashlib
    import shutil
    import sqlite3
    import tempfile
    import threading

    from sqlalchemy import select

    from connectors import registry
    from connectors.auth import batch_ref
    from connectors.base import FetchResult
    from connectors.wire import build_request, parse_answer
    from core.crypto import canonical_json, keyring
    from core.store import Request, RequestMember, aad_member, session
    from schemas.contracts import from_wire

    keys = keyring()
    with session() as s:
        ids = [keys.decrypt(m.id_number_enc, aad=aad_member(m.request_id, "id_number_enc", m.person_ref))
               for m in s.scalars(select(RequestMember).join(Request, Request.id == RequestMember.request_id)
                                  .where(Request.kind == "application"))]
    db = Path(tempfile.mkdtemp(prefix="hub-bench-bare-")) / "bare.db"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE bare_rows (source TEXT, person_sha TEXT, row_sha TEXT, data TEXT)")
    fetch_s = work_s = 0.0
    local = threading.local()
    for source in SOURCES:
        base = registry.base_url(source, agencies_url)
        spec = registry.source_class(source).contract

        def call(chunk: list[str], page: int) -> tuple[bytes, dict]:  # a batch exchange's call, as the hub's
            if not hasattr(local, "c") or local.c.key != source:
                local.c = registry.connector(source, base)
            refs = [f"bench-bare:{n}" for n in range(len(chunk))]
            signed = local.c._call(build_request(spec, chunk, page, refs), batch_ref(refs), time.monotonic() + 600,
                                   FetchResult(source=source, status="complete"), page)  # its signature checked
            return signed.body, signed.headers

        t0 = time.perf_counter()
        chunks = [ids[i: i + spec.max_batch] for i in range(0, len(ids), spec.max_batch)]
        answers = []
        with concurrent.futures.ThreadPoolExecutor(12) as pool:
            for chunk, (raw, headers) in zip(chunks, pool.map(lambda c: call(c, 1), chunks)):
                answers.append((raw, headers))
                pages = parse_answer(spec, raw, headers).pages
                answers += [call(chunk, p) for p in range(2, pages + 1)]
        fetch_s += time.perf_counter() - t0
        t0 = time.perf_counter()
        out = []
        for raw, headers in answers:
            for r in parse_answer(spec, raw, headers).rows:
                r.pop(spec.ref_field, None)
                row = from_wire(spec, r)
                data = canonical_json(row)
                out.append((source, hashlib.sha256(str(row.get("id_number")).encode()).hexdigest(),
                            hashlib.sha256(data).hexdigest(), data.decode("utf-8")))
        with conn:
            conn.executemany("INSERT INTO bare_rows VALUES (?, ?, ?, ?)", out)
        work_s += time.perf_counter() - t0
    conn.close()
    shutil.rmtree(db.parent, ignore_errors=True)
    return {"rows": len(ids) * len(SOURCES), "fetch_s": fetch_s, "work_s": work_s}


def request_latency(agencies_url: str, households: int, n: int, *, timed_calls: bool,
                    processes: int | None = None) -> list[tuple[float, float]]:
    """(seconds, slowest agency call in seconds) of ``n`` verifications inline, households spread over the seeded
    population; the sources validated in a pool of ``processes`` warm processes, as the API's worker does (default
    HUB_VALIDATION_PROCESSES's; 0: in this process)."""
    import logging

    from agencies.population import population
    from agencies.requests import request_for
    from connectors.base import Source
    from core.settings import settings
    from hub.stages.intake import create_request
    from hub.stages.pipeline import run_inline
    from schemas import parallel

    pool = parallel.start(settings().validation_processes if processes is None else processes)
    if pool is not None and not pool.wait():
        raise RuntimeError("the validation pool did not start")

    logging.getLogger("hub").setLevel(logging.WARNING)
    logging.getLogger("connectors").setLevel(logging.WARNING)
    os.environ["HUB_AGENCIES_URL"] = agencies_url
    calls: list[float] = []
    if timed_calls:
        original = Source._call

        def timed(self, *args, **kwargs):
            t = time.perf_counter()
            try:
                return original(self, *args, **kwargs)
            finally:
                calls.append(time.perf_counter() - t)

        Source._call = timed
    step = max(1, households // n)
    picked = [hh for hh in population(SEED, households) if hh.index % step == 0
              and any(m.status == "normal" for m in hh.members)][:n]
    run_inline(create_request(request_for(picked[0], seed=SEED, sources=SOURCES)))  # warm: imports, GX context
    out = []
    for hh in picked:
        request_id = create_request(request_for(hh, seed=SEED, sources=SOURCES))
        calls.clear()
        t0 = time.perf_counter()
        result = run_inline(request_id)
        took = time.perf_counter() - t0
        if result.record_id is None:
            raise RuntimeError(f"verification {request_id} ended {result.status}")
        out.append((took, max(calls) if calls else 0.0))
    return out


# -- the benchmark ---------------------------------------------------------------------------------------------


def run(quick: bool = False, persons: int | None = None, workers: int | None = None, one_process: bool = True,
        baselines: bool = True) -> dict:
    """The figures; at 100,000 persons their keys are the report's, at another size (``--quick``: 1,000;
    ``--scale N``) each re-check key carries its size. ``workers``: the re-check's processes (default the cores;
    seeding runs in as many). Without ``one_process`` (``--no-one-process``) the single-process re-check is not
    run: at a province's share (``--scale 1000000``) it alone would take hours, and the figures the goals name are
    the workers'. Without ``baselines`` (``--no-baselines``) neither is the bare minimum, nor the ratios to it: at a
    province's share what is asked is the rate against the city's figure, and memory that stays flat
    (reverify_rss_growth_mb: the largest growth of a worker's resident set from its first batch to its last)."""
    from bench.scratch import scratch_home

    persons = persons or (1_000 if quick else 100_000)
    label = f"{persons // 1000}k" if persons % 1000 == 0 else str(persons)
    out = {}
    with scratch_home("hub-bench-reverify-"):
        workers = max(1, min(workers or (os.cpu_count() or 1), 8))
        t0 = time.perf_counter()
        seeded = _children("seed", workers, str(persons))[0]  # every part counts the same totals
        print(f"seeded {seeded['households']:,} households ({seeded['persons']:,} persons) in "
              f"{time.perf_counter() - t0:,.0f} s (not measured)")
        # batches small enough that every worker has several even at --quick's size; BATCH at a city's
        batch = max(1, min(BATCH, -(-seeded["households"] // (4 * workers))))
        seeded_mb = _store_mb()
        with _seeded_store(one_process or baselines) as (restore, batches):  # every phase from the store as seeded
            one = b = None
            at_start = [batches()]  # the fetch batches in the store as each phase starts
            if one_process:
                with agencies(seeded["households"]) as url:
                    one = _child("recheck", url, str(batch))
                at_start.append(restore())
            with agencies(seeded["households"]) as url:
                rc = recheck_parallel(url, workers, batch)
            rechecked_mb = _store_mb()
            if baselines:
                at_start.append(restore())
                with agencies(seeded["households"]) as url:
                    b = _child("bare", url)
    rate = rc["rows"] / rc["seconds"]
    suffix = "" if persons == 100_000 else f"_{label}"
    out[f"reverify_rows_per_s{suffix}"] = round(rate, 1)
    if one is not None:
        out[f"reverify_rows_per_s_one_process{suffix}"] = round(one["rows"] / one["seconds"], 1)
        out[f"reverify_peak_rss_mb_one_process{suffix}"] = round(one["peak_rss_mb"], 1)
    out[f"reverify_workers{suffix}"] = workers
    out[f"reverify_batch{suffix}"] = batch
    out[f"reverify_peak_rss_mb{suffix}"] = round(rc["peak_rss_mb"], 1)
    out[f"reverify_rss_growth_mb{suffix}"] = round(rc["rss_growth_mb"], 1)
    if b is not None:
        ceiling = b["rows"] / b["work_s"]
        wire = b["rows"] / (b["fetch_s"] + b["work_s"])
        out[f"reverify_ceiling_rows_per_s{suffix}"] = round(ceiling, 1)
        out[f"reverify_ceiling_ratio{suffix}"] = round(rate / ceiling, 4)
        out[f"reverify_wire_rows_per_s{suffix}"] = round(wire, 1)
        out[f"reverify_wire_ratio{suffix}"] = round(rate / wire, 4)
        out[f"reverify_bare_fetch_rows_per_s{suffix}"] = round(b["rows"] / b["fetch_s"], 1)
    out[f"reverify_persons{suffix}"] = rc["persons"]
    # the disk a city (or a province, --scale) needs: its store as seeded (one record version a household) and
    # after one re-check (a second version, the re-check's batches, rows, raw answers and ledger entries)
    out[f"reverify_store_mb_seeded{suffix}"] = round(seeded_mb, 1)
    out[f"reverify_store_mb{suffix}"] = round(rechecked_mb, 1)
    out[f"reverify_store_kb_per_person{suffix}"] = round(rechecked_mb * 1000 / rc["persons"], 1)
    out[f"reverify_batches_at_start{suffix}"] = max(at_start)  # 0: no phase started from another's store
    out[f"reverify_wall_s{suffix}"] = round(rc["seconds"], 1)
    print(f"re-check, {workers} worker processes over batches of {batch} households: {rc['persons']:,} persons "
          f"({rc['households']:,} households) x {len(SOURCES)} sources = {rc['rows']:,} rows in {rc['seconds']:,.1f} "
          f"s: {rate:,.1f} rows/s ({rc['persons'] / rc['seconds']:,.1f} persons/s), peak RSS {rc['peak_rss_mb']:,.0f} "
          f"MB a process (grown {rc['rss_growth_mb']:,.0f} MB from its first batch to its last); outcome {rc['outcome']}")
    print(f"store: {seeded_mb:,.0f} MB seeded, {rechecked_mb:,.0f} MB after the re-check "
          f"({rechecked_mb * 1000 / rc['persons']:,.1f} KB a person)")
    if one is not None:
        print(f"re-check in one process: {one['rows']:,} rows in {one['seconds']:,.1f} s: "
              f"{one['rows'] / one['seconds']:,.1f} rows/s, peak RSS {one['peak_rss_mb']:,.0f} MB")
    if b is not None:
        print(f"bare minimum on the same rows: parse+hash+insert {ceiling:,.0f} rows/s (ratio {rate / ceiling:.4f}); "
              f"the same answers fetched over the wire with the same batch calls, parsed, hashed and inserted "
              f"{wire:,.0f} rows/s (ratio {rate / wire:.4f}); fetched alone {b['rows'] / b['fetch_s']:,.0f} rows/s")
    return out


def _phase(argv: list[str]) -> None:
    """One phase in this process; with HUB_BENCH_PROFILE=DIR, under cProfile, its statistics written to
    DIR/<phase>.prof and a summary (cumulative and own time) to DIR/<phase>.txt."""
    profile_dir = os.environ.get("HUB_BENCH_PROFILE")
    if not profile_dir:
        return _run_phase(argv)
    import cProfile
    import io
    import pstats

    profiler = cProfile.Profile()
    profiler.runcall(_run_phase, argv)
    Path(profile_dir).mkdir(parents=True, exist_ok=True)
    profiler.dump_stats(Path(profile_dir) / f"{argv[0]}.prof")
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("cumulative").print_stats(60)
    stats.sort_stats("tottime").print_stats(40)
    (Path(profile_dir) / f"{argv[0]}.txt").write_text(text.getvalue())


def _run_phase(argv: list[str]) -> None:
    phase, args = argv[0], argv[1:]
    if phase == "seed":
        result = seed(*(int(a) for a in args[:3]))
    elif phase == "recheck":
        result = recheck(args[0], *(int(a) for a in args[1:4]))
    elif phase == "bare":
        result = bare(args[0])
    elif phase == "latency":
        result = {"runs": request_latency(args[0], int(args[1]), int(args[2]), timed_calls=args[3] == "1",
                                          processes=int(args[4]) if len(args) > 4 else None)}
    else:
        raise SystemExit(f"unknown phase {phase}")
    print(json.dumps(result))


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--phase":
        _phase(sys.argv[2:])
    else:
        scale = sys.argv[sys.argv.index("--scale") + 1] if "--scale" in sys.argv else None
        run(quick="--quick" in sys.argv, persons=int(scale) if scale else None,
            one_process="--no-one-process" not in sys.argv, baselines="--no-baselines" not in sys.argv)
