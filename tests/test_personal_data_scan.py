"""After a full demo run (`hub demo`: agencies, Airflow standalone, the API, one household verified through
verify_household), no plaintext ID number or name of that household is anywhere it must not be: the store's
database files, the hub's logs, Airflow's task logs and its metadata database (XCom, DAG-run conf), or the ledger."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agencies.requests import sample_request
from hub.demo import DEMO_DEPARTMENT, DEMO_HOUSEHOLD, DEMO_SEED
from hub.services.scan import Finding, files_under, scan
from tests.support.processes import processes

pytestmark = pytest.mark.airflow
HUB = str(Path(sys.executable).parent / "hub")


def _sessions_of(demo: int) -> set[int]:
    """The sessions the demo and its children run in (each child in one of its own, with whatever it starts: Airflow's
    processes retitle themselves, so neither their command line nor their environment names the demo's home)."""
    return {demo} | {session for _state, parent, session in processes().values() if parent == demo}


def _running_in(sessions: set[int]) -> list[int]:
    """The processes of those sessions that have not ended."""
    return [pid for pid, (state, _parent, session) in processes().items() if session in sessions and state != "Z"]


def _command(pid: int) -> str:
    with contextlib.suppress(OSError):
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    return str(pid)


def _bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:  # a database's -wal or -journal file gone with its process
        return b""


def test_the_scan_finds_each_form_a_value_takes(tmp_path):
    people = [("21030219800101001X", "张三丰")]
    (tmp_path / "plain.log").write_text("read 21030219800101001x for 张三丰\n", encoding="utf-8")
    (tmp_path / "xcom.json").write_text('{"name": "\\u5f20\\u4e09\\u4e30"}', encoding="ascii")
    (tmp_path / "clean.log").write_text("read p_0123 for hh_4567\n", encoding="utf-8")
    found = scan(files_under(tmp_path), people)
    assert found == [Finding(str(tmp_path / "plain.log"), "id_number", 0), Finding(str(tmp_path / "plain.log"), "name", 0),
                     Finding(str(tmp_path / "xcom.json"), "name", 0)]


def test_a_full_demo_run_leaves_no_id_number_or_name_in_files_logs_xcom_or_ledger(tmp_path):
    home = tmp_path / "var"
    env = {**os.environ, "HUB_HOME": str(home)}
    for key in ("HUB_DATABASE_URL", "HUB_AGENCIES_URL", "AIRFLOW_HOME", "AIRFLOW__CORE__DAGS_FOLDER",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"):
        env.pop(key, None)
    env = {k: v for k, v in env.items() if not k.startswith("AIRFLOW__")}
    assert subprocess.run([HUB, "init"], env=env, capture_output=True, timeout=120).returncode == 0
    out = tmp_path / "demo.out"
    stopped, sessions = None, set()
    with out.open("w") as fh:
        # started as a script's background job starts it: SIGINT inherited ignored (what a CI runner's shell does)
        demo = subprocess.Popen([HUB, "demo"], env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
        try:
            deadline = time.monotonic() + 600
            while "Ctrl-C stops everything." not in out.read_text(errors="replace"):
                sessions |= _sessions_of(demo.pid)
                assert demo.poll() is None, out.read_text(errors="replace")[-3000:]
                assert time.monotonic() < deadline, "the demo did not finish in 10 minutes"
                time.sleep(2)
        finally:
            sessions |= _sessions_of(demo.pid)
            os.killpg(demo.pid, signal.SIGINT)
            try:
                stopped = demo.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(demo.pid, signal.SIGKILL)
            grace = time.monotonic() + 30  # Airflow's own processes end after the standalone command that ran them
            while (left := _running_in(sessions)) and time.monotonic() < grace:
                time.sleep(1)
            for pid in left:  # never leave the demo's agencies, API or Airflow holding their ports for later tests
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
    text = out.read_text(errors="replace")
    # Ctrl-C (SIGINT) stops the demo and everything it started
    assert stopped == 0 and "stopping..." in text, text[-3000:]
    assert not left, [_command(pid) for pid in left]
    assert "verify_household: success; request status: published" in text, text[-3000:]
    # the standalone scheduler (LocalExecutor) loaded GX and the suites before forking its tasks (hub.airflow.warm)
    assert "hub.airflow.warm: the hub's task processes start warm" in (home / "log" / "airflow.log").read_text(
        errors="replace")

    doc = sample_request(seed=DEMO_SEED, households=200, k=DEMO_HOUSEHOLD, department=DEMO_DEPARTMENT)
    people = [(m["id_number"], m["name"]) for m in doc["members"]]
    places = files_under(home / "hub.db", home / "hub.db-wal", home / "log", home / "airflow")
    names = {p.name for p in places}
    assert "hub.db" in names and "airflow.db" in names  # the store and Airflow's metadata (XCom, DAG runs)
    assert any(p.suffix == ".log" and "airflow" in str(p) and "task_id=" in str(p) for p in places)  # task logs
    found = scan(places, people)
    assert not found, [(str(Path(f.path).relative_to(home)), f.kind) for f in found]

    # nor any secret of the hub: its keys, the agencies' credentials, Airflow's secrets (the key files aside)
    keys = json.loads((home / "keys" / "keyring.json").read_text())
    secrets = [*keys["encryption"]["keys"].values(), keys["pseudonym"], keys["signing"]]
    secrets += [c["secret"] for c in json.loads((home / "keys" / "agencies.json").read_text()).values()]
    secrets += list(json.loads((home / "keys" / "airflow.json").read_text()).values())
    exposed = sorted({str(place.relative_to(home)) for place in places
                      for secret in secrets if secret.encode() in _bytes(place)})
    assert not exposed, exposed
