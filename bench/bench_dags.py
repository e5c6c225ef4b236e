"""Airflow: the parse time of each DAG file, and reverify_recipients' wall time on the embedded default (Airflow
standalone, LocalExecutor, SQLite) and on the distributed set-up (CeleryExecutor with two workers, Redis,
PostgreSQL), for 10,000 persons (300 with --quick).

Parse time: "cold" is a fresh interpreter running the file (airflow.sdk's import included, what a new DAG-processor
process pays once); "warm" is the file alone once airflow.sdk is imported (what the DAG processor pays on every
re-parse), the best of five.

Re-check: households of the simulated population are verified first and each is reported as receiving dibao (not
measured); then one reverify_recipients run re-checks every current recipient (``every``), triggered through
Airflow's REST API; the figure is the run's wall time from the trigger to its success.
"""

from __future__ import annotations

# Imports inside functions below are deliberate: `hub bench` imports every benchmark to list it, and each loads
# what it measures only when it runs (some in a child process of their own, with a scratch HUB_HOME set first).
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

from schemas.vocabulary import AGENCY_SOURCES

DAGS = Path(__file__).resolve().parents[1] / "dags"
SOURCES = AGENCY_SOURCES

_COLD = "import runpy, sys, time; t = time.perf_counter(); runpy.run_path(sys.argv[1]); print(time.perf_counter() - t)"
_WARM = ("import runpy, sys, time, airflow.sdk\nbest = 1e9\nfor _ in range(5):\n    t = time.perf_counter()\n"
         "    runpy.run_path(sys.argv[1])\n    best = min(best, time.perf_counter() - t)\nprint(best)")


def parse_times() -> dict[str, tuple[float, float]]:
    from hub.airflow.env import airflow_environment

    env = {**os.environ, **airflow_environment()}
    out = {}
    for path in sorted(DAGS.glob("*.py")):
        cold, warm = (float(subprocess.run([sys.executable, "-c", code, str(path)], env=env, capture_output=True,
                                           text=True, check=True, timeout=300).stdout.strip().splitlines()[-1])
                      for code in (_COLD, _WARM))
        out[path.stem] = (cold, warm)
    return out


def _seed(persons: int, seed: int = 5) -> tuple[list[str], int]:
    """Verify enough households of the population to hold ``persons`` persons; return their request ids."""
    from sqlalchemy import select

    from agencies.requests import sample_request
    from core.store import Request, session, utcnow
    from hub.services import assistance
    from hub.stages.intake import create_request
    from hub.stages.pipeline import fetch_missing, finish, validate_batches

    n = _households_for(persons, seed)
    apps = [create_request(sample_request(seed=seed, households=n, k=k, sources=list(SOURCES))) for k in range(n)]
    for start in range(0, len(apps), 50):
        chunk = apps[start: start + 50]
        pending = [b for a in chunk for b in fetch_missing(a)]
        validate_batches(pending, run_id="bench-seed")
        for a in chunk:
            finish(a, "bench-seed", utcnow())
    with session() as s:  # every household receives assistance: every person is re-checked
        households = [(r.id, r.household_ref, r.department) for r in s.scalars(
            select(Request).where(Request.id.in_(apps))) if r.household_ref]
    for app, household, department in households:
        assistance.report(household_ref=household, department=department, client_id="bench", programme="dibao",
                          granted_from=utcnow().date(), request_id=app)
    return apps, n


def _recheck_wall_time(airflow) -> float:
    t0 = time.monotonic()
    run_id = airflow.trigger("reverify_recipients", {"every": True})  # the DAG's own batch size, as in production
    state = airflow.wait("reverify_recipients", run_id, timeout=7200)
    if state != "success":
        raise RuntimeError(f"reverify_recipients ended {state}")
    return time.monotonic() - t0


def _keep_logs(home: Path) -> None:
    """A failed run's logs outlive its scratch HUB_HOME (in the system's temporary folder)."""
    import shutil
    import tempfile

    kept = Path(tempfile.gettempdir()) / f"hub-bench-failed-{uuid.uuid4().hex[:6]}"
    shutil.copytree(home / "log", kept, dirs_exist_ok=True)
    print(f"logs of the failed run kept in {kept}")


def _wait_ready(children, home: Path, port: int):
    from hub.airflow.client import AirflowClient, admin_credentials
    from hub.demo import wait_for

    def client():
        return AirflowClient(f"http://127.0.0.1:{port}", *admin_credentials(home))

    wait_for("Airflow", lambda: (home / "simple_auth_manager_passwords.json.generated").exists()
              and client().healthy() and client().dag_ready("reverify_recipients"), children, 300)
    return client()


def embedded(persons: int, port: int = 8098) -> tuple[float, int]:
    from agencies.server import AgencyServer
    from bench.scratch import scratch_home
    from hub.airflow.env import airflow_environment
    from hub.demo import Children

    with scratch_home("hub-bench-reverify-") as home:
        apps, n = _run_seeded(persons)
        server = AgencyServer.from_hub_home(households=n, seed=5).start()
        os.environ["HUB_AGENCIES_URL"] = server.url
        children = Children(home / "log")
        try:
            env = {**airflow_environment(port=port), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
            children.start("airflow", [str(Path(sys.executable).parent / "airflow"), "standalone"], env=env)
            airflow = _wait_ready(children, Path(env["AIRFLOW_HOME"]), port)
            return _recheck_wall_time(airflow), len(apps)
        except Exception:
            _keep_logs(home)
            raise
        finally:
            children.stop()
            server.stop()


def _run_seeded(persons: int) -> tuple[list[str], int]:
    from agencies.server import AgencyServer
    from hub.airflow.env import create_secrets

    create_secrets()
    n_households = _households_for(persons)
    server = AgencyServer.from_hub_home(households=n_households, seed=5).start()
    os.environ["HUB_AGENCIES_URL"] = server.url
    try:
        return _seed(persons)
    finally:
        server.stop()


def _households_for(persons: int, seed: int = 5) -> int:
    from agencies.population import households

    n = count = 0
    for hh in households(seed, 100_000):
        count += sum(m.status == "normal" for m in hh.members)
        n += 1
        if count >= persons:
            return n
    return n


def distributed(persons: int) -> tuple[float, int]:
    from agencies.server import AgencyServer
    from bench.scratch import scratch_home
    from hub.airflow.distributed import Cluster, drop_databases, ensure_databases, environment, migrate, start
    from hub.demo import Children

    with scratch_home("hub-bench-reverify-dist-") as home:
        cluster = Cluster(prefix=f"hub_bench_{uuid.uuid4().hex[:6]}", port=8099, log_port=8993)
        ensure_databases(cluster)
        os.environ["HUB_DATABASE_URL"] = cluster.store_url
        children = Children(home / "log")
        try:
            from hub.services.bootstrap import initialize

            initialize()
            apps, n = _run_seeded(persons)
            server = AgencyServer.from_hub_home(households=n, seed=5).start()
            os.environ["HUB_AGENCIES_URL"] = server.url
            try:
                env = environment(cluster)
                migrate(env)
                start(children, cluster, env)
                airflow = _wait_ready(children, Path(env["AIRFLOW_HOME"]), cluster.port)
                return _recheck_wall_time(airflow), len(apps)
            except Exception:
                _keep_logs(home)
                raise
            finally:
                server.stop()
        finally:
            children.stop()
            os.environ.pop("HUB_DATABASE_URL", None)
            drop_databases(cluster)


def run(quick: bool = False, airflow: bool = False) -> dict:
    """DAG parse times; with ``airflow``, reverify_recipients' wall time through real DAG runs too."""
    import logging

    logging.getLogger("hub").setLevel(logging.WARNING)
    out = {}
    times = parse_times()
    for name, (cold, warm) in times.items():
        print(f"parse {name}: cold {cold * 1000:,.0f} ms, warm {warm * 1000:,.1f} ms")
    out["dag_parse_s_max"] = round(max(w for _, w in times.values()), 4)
    out["dag_parse_cold_s_max"] = round(max(c for c, _ in times.values()), 3)
    if not airflow:
        return out
    persons = 300 if quick else 10_000
    label = "300" if quick else "10k"
    for name, measure in (("embedded", embedded), ("distributed", distributed)):
        wall, households = measure(persons)
        out[f"reverify_wall_s_{label}_persons_{name}"] = round(wall, 1)
        print(f"reverify_recipients, {persons:,} persons ({households:,} households), {name}: {wall:,.1f} s")
    return out


if __name__ == "__main__":
    run(quick="--quick" in sys.argv, airflow="--airflow" in sys.argv)
