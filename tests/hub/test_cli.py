"""The `hub` command as a user runs it, in subprocesses with their own HUB_HOME."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HUB = str(Path(sys.executable).parent / "hub")


@pytest.fixture
def home(tmp_path):
    env = {**os.environ, "HUB_HOME": str(tmp_path / "var")}
    env.pop("HUB_DATABASE_URL", None)
    return env


def hub(env, *args, stdin=None):
    return subprocess.run([HUB, *args], env=env, capture_output=True, text=True, input=stdin, timeout=300)


def test_init_is_idempotent_and_keeps_keys(home):
    first = hub(home, "init")
    assert first.returncode == 0 and "keys:       created" in first.stdout
    keyring = Path(home["HUB_HOME"]) / "keys" / "keyring.json"
    before = keyring.read_bytes()
    again = hub(home, "init")
    assert again.returncode == 0 and "keys:       kept" in again.stdout
    assert keyring.read_bytes() == before
    assert oct(keyring.stat().st_mode & 0o777) == "0o600"


def test_demo_sync_runs_inline_and_exits_0(home):
    out = hub(home, "demo", "--sync", "--households", "30")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "pipeline: published" in out.stdout and "signature valid" in out.stdout


def test_sample_request_is_accepted_by_request_create(home):
    assert hub(home, "init").returncode == 0
    doc = hub(home, "agencies", "sample-request", "--household", "3", "--households", "10")
    assert doc.returncode == 0
    created = hub(home, "request", "create", "-", stdin=doc.stdout)
    assert created.returncode == 0 and len(created.stdout.strip()) == 32


def test_bad_input_gives_a_clear_error_and_exit_2(home, tmp_path):
    assert hub(home, "init").returncode == 0
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    out = hub(home, "request", "create", str(broken))
    assert out.returncode == 2 and "cannot read the request file" in out.stderr
    doc = json.loads(hub(home, "agencies", "sample-request", "--household", "3", "--households", "10").stdout)
    idn = doc["members"][0]["id_number"]
    doc["members"][0]["id_number"] = idn[:17] + ("0" if idn[17] != "0" else "1")
    out = hub(home, "request", "create", "-", stdin=json.dumps(doc))
    assert out.returncode == 2 and "members[0].id_number" in out.stderr and idn[:17] not in out.stderr
    out = hub(home, "clients", "create", "--name", "x", "--role", "department")
    assert out.returncode == 2 and "--department" in out.stderr
    out = hub(home, "verify", "0" * 32, "--sync")
    assert out.returncode == 2 and "no request" in out.stderr


def test_documents_nested_too_deep_or_mistyped_give_one_line_and_exit_2(home, tmp_path):
    """`hub request create` once died with a RecursionError traceback on a deeply nested file."""
    assert hub(home, "init").returncode == 0
    deep = tmp_path / "deep.json"
    deep.write_text('{"members": ' + "[" * 100_000 + "]" * 100_000 + "}")
    too_deep = "nested deeper than 32 levels of arrays and objects"
    for args, what in [(("request", "create", str(deep)), "request"),
                       (("consent", "grant", "0" * 32, str(deep)), "authorization"),
                       (("record", "verify", str(deep)), "record")]:
        out = hub(home, *args)
        assert out.returncode == 2 and out.stderr == f"error: cannot read the {what} file: {too_deep}\n", out.stderr
    out = hub(home, "request", "create", "-", stdin="[" * 33 + "]" * 33)
    assert out.returncode == 2 and out.stderr == f"error: cannot read the request file: {too_deep}\n"
    out = hub(home, "request", "create", "-", stdin="null")  # a document, not a request: said, not silent
    assert out.returncode == 2 and "the request must be a JSON object" in out.stderr
    doc = json.loads(hub(home, "agencies", "sample-request", "--household", "3", "--households", "10").stdout)
    doc["authorization"].update(valid_from=1764547200, data_life_days=True)
    out = hub(home, "request", "create", "-", stdin=json.dumps(doc))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "authorization.valid_from: an ISO 8601 date-time as text, not a number" in out.stderr
    assert "authorization.data_life_days: whole days from 1 to 3650" in out.stderr


def test_clients_create_prints_a_token_that_the_api_accepts(home):
    assert hub(home, "init").returncode == 0
    out = hub(home, "clients", "create", "--name", "caseworker", "--role", "department", "--department", "MZ-210302")
    assert out.returncode == 0
    token = out.stdout.strip()
    code = (
        "import sys; from fastapi.testclient import TestClient; from hub.web.app import create_app; "
        "c = TestClient(create_app()); "
        "print(c.get('/v1/requests/' + '0' * 32, headers={'Authorization': 'Bearer ' + sys.argv[1]}).status_code)"
    )
    check = subprocess.run([sys.executable, "-c", code, token], env=home, capture_output=True, text=True)
    assert check.stdout.strip() == "404"  # authenticated, no such request


def test_agencies_serve_says_which_source_is_where(home):
    import re

    import requests

    assert hub(home, "init").returncode == 0
    proc = subprocess.Popen([HUB, "agencies", "serve", "--households", "20", "--port", "0"], env=home,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = [proc.stdout.readline() for _ in range(12)]
        index_url = re.search(r"index on (http://127\.0\.0\.1:\d+/)", lines[0]).group(1)
        listed = {line.split()[0]: line.split()[-1] for line in lines[1:]}
        index = requests.get(index_url, timeout=5).json()
        assert listed == {s["key"]: s["base_url"] for s in index["sources"]}
        assert len(listed) == 11
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_agencies_serve_refuses_an_unknown_profile(home):
    assert hub(home, "init").returncode == 0
    out = hub(home, "agencies", "serve", "--faults", "chaos", "--households", "5")
    assert out.returncode == 2 and "unknown fault profile" in out.stderr


def test_policy_check_accepts_the_shipped_policy_and_names_the_rule_of_a_bad_one(home, tmp_path):
    ok = hub(home, "policy", "check")
    assert ok.returncode == 0 and "7 rules, valid" in ok.stdout and "medical-security: YB-*" in ok.stdout
    assert "federation: FED-*, HUB-*" in ok.stdout
    bad = tmp_path / "policy.toml"
    bad.write_text('[[rule]]\nname = "leaky"\ndepartments = ["YB-*"]\npurposes = ["medical"]\n'
                   'fields = ["members", "bank_accounts"]\n', encoding="utf-8")
    out = hub(home, "policy", "check", str(bad))
    assert out.returncode == 1 and "leaky: unknown fields ['bank_accounts']" in out.stderr


def test_a_deactivated_client_is_refused_at_once(home):
    assert hub(home, "init").returncode == 0
    token = hub(home, "clients", "create", "--name", "staff", "--role", "staff").stdout.strip()
    client_id = next(line.split()[0] for line in hub(home, "clients", "list").stdout.splitlines() if "staff" in line)
    code = ("import sys; from fastapi.testclient import TestClient; from hub.web.app import create_app; "
            "print(TestClient(create_app()).get('/v1/sources', headers={'Authorization': 'Bearer ' + sys.argv[1]})"
            ".status_code)")
    ask = [sys.executable, "-c", code, token]
    assert subprocess.run(ask, env=home, capture_output=True, text=True).stdout.strip() == "200"
    assert hub(home, "clients", "deactivate", client_id).returncode == 0
    assert subprocess.run(ask, env=home, capture_output=True, text=True).stdout.strip() == "401"
    assert hub(home, "clients", "deactivate", client_id).returncode == 1
    listed = hub(home, "clients", "list").stdout
    assert "inactive" in listed and token not in listed


def test_commands_that_serve_or_run_refuse_a_store_of_another_schema(home):
    """`hub api`, `hub verify` and `hub reverify` check the store's schema revision before they start: on a store one
    migration behind they exit 2 with what to run, and `hub init` (which upgrades it) lets them start again."""
    from core.store import SCHEMA_REVISION, upgrade

    url = f"sqlite:///{Path(home['HUB_HOME']) / 'hub.db'}"
    assert hub(home, "init").returncode == 0
    Path(home["HUB_HOME"], "hub.db").unlink()
    upgrade(url, f"{int(SCHEMA_REVISION) - 1:04d}")
    for args in (("api", "--port", "0"), ("verify", "0" * 32, "--sync"), ("reverify", "--sync")):
        out = hub(home, *args)
        assert out.returncode == 2 and "run `hub init`" in out.stderr, (args, out.stderr[-2000:])
    assert hub(home, "init").returncode == 0
    out = hub(home, "verify", "0" * 32, "--sync")
    assert "schema" not in out.stderr  # past the check: the request is simply unknown


def test_every_command_on_a_home_without_init_says_so_and_how_to_fix_it(home):
    """A fresh home: each command that needs the hub's keys or store answers one line naming `hub init` and exits 2
    (they once died with tracebacks); those that need no home still work, and nothing is created by asking."""
    for args in (("api", "--port", "0"), ("verify", "0" * 32, "--sync"), ("reverify", "--sync"), ("audit", "verify"),
                 ("clients", "create", "--name", "x", "--role", "staff"), ("review", "--sync"), ("keys", "status"),
                 ("agencies", "serve")):
        out = hub(home, *args)
        assert out.returncode == 2 and "run `hub init`" in out.stderr and "Traceback" not in out.stderr, args
        assert len(out.stderr.strip().splitlines()) == 1, (args, out.stderr)
    assert not Path(home["HUB_HOME"]).exists()
    assert hub(home, "agencies", "sample-request", "--household", "3", "--households", "10").returncode == 0
    assert hub(home, "policy", "check").returncode == 0


def test_a_store_that_cannot_be_reached_is_one_line_not_a_traceback(home):
    assert hub(home, "init").returncode == 0
    env = {**home, "HUB_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:9/nowhere"}  # nothing listens
    out = hub(env, "verify", "0" * 32, "--sync")
    assert out.returncode == 2 and "cannot be reached" in out.stderr and "Traceback" not in out.stderr, out.stderr
