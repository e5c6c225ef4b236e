"""After a full demo run (`hub demo`: agencies, Airflow standalone, the API, one household verified through
verify_household), no plaintext ID number or name of that household is anywhere it must not be: the store's
database files, the hub's logs, Airflow's task logs and its metadata database (XCom, DAG-run conf), or the ledger."""

from __future__ import annotations

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

pytestmark = pytest.mark.airflow
HUB = str(Path(sys.executable).parent / "hub")


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
    with out.open("w") as fh:
        demo = subprocess.Popen([HUB, "demo"], env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + 600
            while "Ctrl-C stops everything." not in out.read_text(errors="replace"):
                assert demo.poll() is None, out.read_text(errors="replace")[-3000:]
                assert time.monotonic() < deadline, "the demo did not finish in 10 minutes"
                time.sleep(2)
        finally:
            os.killpg(demo.pid, signal.SIGINT)
            try:
                demo.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(demo.pid, signal.SIGKILL)
    text = out.read_text(errors="replace")
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
