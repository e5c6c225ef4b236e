"""`hub demo --sync` as a user runs it (a subprocess with its own HUB_HOME): it prints the same tokens and addresses
as `hub demo`, tokens that work, and uses the agencies at HUB_AGENCIES_URL when they answer there instead of
starting its own; and the live demo's children do not outlive a demo killed with SIGKILL."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.support.processes import alive
from tests.support.servers import free_port

HUB = str(Path(sys.executable).parent / "hub")


@pytest.fixture
def home(tmp_path):
    env = {**os.environ, "HUB_HOME": str(tmp_path / "var"), "HUB_AGENCIES_URL": f"http://127.0.0.1:{free_port()}/"}
    env.pop("HUB_DATABASE_URL", None)
    env.pop("HUB_AIRFLOW_URL", None)
    return env


def hub(env, *args):
    return subprocess.run([HUB, *args], env=env, capture_output=True, text=True, timeout=300)


def _accepted(env, token: str, path: str) -> int:
    """The status of GET ``path`` on the demo home's API with ``token``."""
    code = ("import sys; from fastapi.testclient import TestClient; from hub.web.app import create_app; "
            "print(TestClient(create_app()).get(sys.argv[2], headers={'Authorization': 'Bearer ' + sys.argv[1]})"
            ".status_code)")
    out = subprocess.run([sys.executable, "-c", code, token, path], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return int(out.stdout.strip().splitlines()[-1])


def test_demo_sync_prints_the_live_demos_tokens_and_addresses_and_they_work(home):
    out = hub(home, "demo", "--sync", "--households", "30")
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout
    assert "pipeline: published" in text and "signature valid" in text
    assert "started for the demo" in text  # nothing answered at HUB_AGENCIES_URL
    dept = re.search(r"^Hub API: +(http://\S+)/docs +token \(department (\S+)\): (\S+)$", text, re.M)
    staff = re.search(r"staff token \(sources, validation, quarantine, alerts\): (\S+)$", text, re.M)
    auditor = re.search(r"auditor token \(integrity, timelines, unusual reads\): (\S+)$", text, re.M)
    record = re.search(r"^ +'(http://\S+)/v1/households/(\S+)/record\?purpose=(\w+)'$", text, re.M)
    assert dept and staff and auditor and record, text
    assert re.search(r"^Console: +http://\S+/console/ ", text, re.M) and re.search(r"^Ledger: +checkpoint", text, re.M)
    assert dept.group(1) == record.group(1) == "http://127.0.0.1:8000"
    # the tokens printed are the demo home's clients, each with its role
    assert _accepted(home, dept.group(3), f"/v1/households/{record.group(2)}/record?purpose={record.group(3)}") == 200
    assert _accepted(home, staff.group(1), "/v1/quarantine") == 200
    assert _accepted(home, auditor.group(1), "/v1/audit/checkpoint") == 200
    assert _accepted(home, dept.group(3), "/v1/audit/checkpoint") == 403
    # one household walked through 码上办 by its members, over the resident pages and the identity provider's login
    assert re.search(r"^Residents: +http://127\.0\.0\.1:8000/m/ ", text, re.M), text
    walked = re.search(r"walked through: request (\w+): (\d+) members signed on their phones \((\d+) by a guardian\) "
                       r"-> verified -> result (\w+) -> 幸福清单 1 grant \(1268\.00 yuan/month\) -> 我的数据 (\d+) entries, "
                       r"proof of entry (\d+) checked", text)
    assert walked and int(walked.group(2)) >= 1 and int(walked.group(5)) > 0, text
    assert _accepted(home, dept.group(3), f"/v1/requests/{walked.group(1)}") == 200
    tried = re.search(r"try it: (http://\S+/m/s/\S+) +\(each member's QR code: http://\S+/console/requests/(\w+)\)", text)
    assert tried, text
    assert _accepted(home, dept.group(3), f"/v1/requests/{tried.group(2)}/invitations") == 200


def test_demo_sync_uses_the_agencies_answering_at_hub_agencies_url(home):
    assert hub(home, "init").returncode == 0
    agencies = subprocess.Popen([HUB, "agencies", "serve", "--households", "20", "--seed", "3", "--port", "0"],
                                env=home, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = agencies.stdout.readline()
        url = re.search(r"index on (http://127\.0\.0\.1:\d+/)", first)
        assert url, first + agencies.stderr.read()
        url = url.group(1)
        assert requests.get(url, timeout=5).json()["households"] == 20
        out = hub({**home, "HUB_AGENCIES_URL": url}, "demo", "--sync", "--households", "30")
    finally:
        agencies.terminate()
        agencies.wait(timeout=30)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    assert f"agencies: {url} (answering there: 20 households, seed 3)" in out.stdout
    assert "started for the demo" not in out.stdout and "pipeline: published" in out.stdout


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the kernel's parent-death signal is Linux's")
def test_a_demo_killed_with_sigkill_leaves_none_of_its_children_running(tmp_path):
    # the live demo's children each run in a session of their own (Ctrl-C in the terminal reaches the demo alone,
    # which stops them); a demo that cannot stop them, killed with SIGKILL, must not leave them holding its ports
    code = ("import sys, time; from pathlib import Path; from hub.demo import Children; "
            "c = Children(Path(sys.argv[1])); "
            "p = c.start('sleeper', [sys.executable, '-c', 'import time; time.sleep(300)']); "
            "print(p.pid, flush=True); time.sleep(300)")
    demo = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    child = int(demo.stdout.readline())
    try:
        assert alive(child)
        assert os.getsid(child) == child  # its own session: no signal to the demo's group reaches it
        demo.kill()
        demo.wait(timeout=30)
        deadline = time.monotonic() + 30
        while alive(child) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not alive(child), "the demo's child outlived it"
    finally:
        if alive(child):
            os.kill(child, signal.SIGKILL)
