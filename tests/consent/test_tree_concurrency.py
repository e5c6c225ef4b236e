"""Checkpoints made by several processes at once while others append: one checkpointer at a time (on SQLite and
PostgreSQL), nothing fails, the checkpoints are numbered without gaps and the ledger verifies intact."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from consent import ledger
from consent.checkpoint import open_checkpoint
from consent.tree import inclusion, latest_checkpoint, sign_checkpoint_stage, verifier_key, verify
from hub.cli import main
from core.crypto import keyring
from core.store import LedgerCheckpoint, LedgerEvent, LedgerLeaf, session
from tests.support.store import fresh_postgres

ROOT = Path(__file__).resolve().parents[2]
ROUNDS = 20
KIND = "test.concurrent_append"

# One worker process. It imports what it needs, says "ready" and waits for "go" on standard input, so every worker
# starts its rounds at the same moment; then it writes one JSON line per round to its result file.
WORKER = r"""
import contextlib, io, json, sys

role, tag, worker, rounds, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
from consent import ledger
from consent.tree import sign_checkpoint_stage
from hub.cli import main
from core.store import session

print("ready", flush=True)
sys.stdin.readline()
with open(out, "w") as results:
    for r in range(rounds):
        if role == "append":
            with session() as s:
                seqs = [ledger.append(s, "test.concurrent_append", {"tag": tag, "worker": worker, "round": r,
                                                                    "n": n}).seq for n in range(2)]
            results.write(json.dumps({"seqs": seqs}) + "\n")
        elif role == "cli":
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                code = main(["audit", "checkpoint"])
            results.write(json.dumps({"code": code, "note": printed.getvalue()}) + "\n")
        else:
            results.write(json.dumps(sign_checkpoint_stage()) + "\n")
"""


@pytest.fixture
def fresh_store(database, request, monkeypatch):
    """A migrated store of the test's own on the backend of ``database``, as HUB_DATABASE_URL: the whole ledger is
    verified afterwards, and the session's stores hold entries other tests wrote past the checks on purpose."""
    if database == "sqlite":
        yield request.getfixturevalue("own_store")
        return
    with fresh_postgres("hub_cc") as url:
        monkeypatch.setenv("HUB_DATABASE_URL", url)
        yield url


def _run_workers(roles: list[str], tag: str, tmp_path: Path) -> list[list[dict]]:
    """Start one process per role, let them all go at once, wait for them; each one's results, in order."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # HUB_HOME and HUB_DATABASE_URL as this test has them
    procs = []
    try:
        for i, role in enumerate(roles):
            err = (tmp_path / f"{i}.err").open("w")
            procs.append(subprocess.Popen(
                [sys.executable, "-c", WORKER, role, tag, str(i), str(ROUNDS), str(tmp_path / f"{i}.jsonl")],
                cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True))
            err.close()
        for i, p in enumerate(procs):
            assert p.stdout.readline().strip() == "ready", (tmp_path / f"{i}.err").read_text()[-2000:]
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.close()
        for i, p in enumerate(procs):
            code = p.wait(timeout=180)
            assert code == 0, f"{roles[i]} worker {i} failed:\n" + (tmp_path / f"{i}.err").read_text()[-3000:]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stdout.close()
    return [[json.loads(line) for line in (tmp_path / f"{i}.jsonl").read_text().splitlines()]
            for i in range(len(roles))]


def test_concurrent_checkpointers_and_appenders(fresh_store, tmp_path):
    tag = uuid.uuid4().hex
    with session() as s:
        before = latest_checkpoint(s)
        before = before.number if before else 0
    roles = ["checkpoint", "checkpoint", "cli", "append", "append"]
    results = _run_workers(roles, tag, tmp_path)

    vkey = verifier_key(keyring().public_key)
    for role, rounds in zip(roles, results):
        assert len(rounds) == ROUNDS
        if role == "checkpoint":  # each checkpointer sees the log only grow
            numbers = [r["number"] for r in rounds]
            assert numbers == sorted(numbers) and numbers[0] > before
        elif role == "cli":  # the command prints a valid signed note every time (the latest one when nothing is new)
            assert all(r["code"] == 0 and open_checkpoint(r["note"].encode("utf-8"), vkey) for r in rounds)
    appended = {seq for role, rounds in zip(roles, results) if role == "append" for r in rounds for seq in r["seqs"]}
    assert len(appended) == 2 * ROUNDS * roles.count("append")

    final = sign_checkpoint_stage()  # whatever was appended after the workers' last checkpoint
    with session() as s:
        result = verify(s, keyring().public_key)
        assert result.intact, result.problems
        numbers = s.scalars(select(LedgerCheckpoint.number).order_by(LedgerCheckpoint.number)).all()
        assert numbers == list(range(1, len(numbers) + 1)) and numbers[-1] == final["number"] > before
        ours = s.scalars(select(LedgerEvent.seq).where(LedgerEvent.kind == KIND)).all()
        assert appended <= set(ours)
        leaves = dict(s.execute(select(LedgerLeaf.seq, LedgerLeaf.leaf_index)
                                .where(LedgerLeaf.seq.in_(appended))).all())
        assert set(leaves) == appended and max(leaves.values()) < final["size"]  # every entry under a checkpoint


@pytest.mark.postgres
@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_an_entry_committed_after_later_ones_were_checkpointed_goes_into_the_next_checkpoint(fresh_store):
    """On PostgreSQL seqs are handed out at insert but become visible at commit: an entry whose transaction commits
    after a checkpoint took larger seqs is integrated by the next checkpoint, and the ledger stays intact."""
    tag = uuid.uuid4().hex
    with session() as slow:
        late = ledger.append(slow, KIND, {"tag": tag, "which": "committed last"}).seq
        with session() as quick:
            early = ledger.append(quick, KIND, {"tag": tag, "which": "committed first"}).seq
        assert early > late
        first = sign_checkpoint_stage()  # while the slow transaction is still open
        with session() as s:
            assert s.scalar(select(LedgerLeaf.seq).where(LedgerLeaf.seq == early)) == early
            assert s.scalar(select(LedgerLeaf.seq).where(LedgerLeaf.seq == late)) is None
    second = sign_checkpoint_stage()
    assert second["number"] == first["number"] + 1 and second["size"] > first["size"]
    with session() as s:
        index = dict(s.execute(select(LedgerLeaf.seq, LedgerLeaf.leaf_index)
                               .where(LedgerLeaf.seq.in_([early, late]))).all())
        assert first["size"] <= index[late] < second["size"] and index[early] < first["size"]
        assert inclusion(s, late)["leaf_index"] == index[late]
        result = verify(s, keyring().public_key)
        assert result.intact, result.problems


def test_the_checkpoint_command_prints_the_latest_checkpoint_when_nothing_is_new(capsys):
    assert main(["audit", "checkpoint"]) == 0
    first = capsys.readouterr().out
    assert main(["audit", "checkpoint"]) == 0
    assert capsys.readouterr().out == first
    with session() as s:
        assert first == latest_checkpoint(s).note
