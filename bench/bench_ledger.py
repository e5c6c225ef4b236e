"""The ledger: appends per second (one per transaction, and batched), checkpointing, inclusion and consistency
proofs, and `hub audit verify`, at 1,000,000 entries (100,000 with --quick), on SQLite in a scratch HUB_HOME."""

from __future__ import annotations

# Imports inside functions below are deliberate: `hub bench` imports every benchmark to list it, and each loads
# what it measures only when it runs (some in a child process of their own, with a scratch HUB_HOME set first).
import statistics
import time


def run(quick: bool = False) -> dict:
    from bench.scratch import scratch_home

    n = 100_000 if quick else 1_000_000
    single = 500 if quick else 2_000
    with scratch_home("hub-bench-ledger-"):
        return _run(n, single)


def _payload(i: int) -> dict:
    return {"request_id": f"{i:032x}", "person_ref": f"p_{i:032x}", "source": "tax", "reason": "ALLOWED"}


def _run(n: int, single: int) -> dict:
    from consent import ledger, merkle
    from consent.tree import DbTree, make_checkpoint, verify
    from core.crypto import keyring
    from core.store import session

    keys = keyring()
    out = {}
    t0 = time.perf_counter()
    for i in range(single):
        with session() as s:
            ledger.append(s, "consent.allowed", _payload(i))
    out["ledger_appends_per_s"] = round(single / (time.perf_counter() - t0), 1)

    t0 = time.perf_counter()
    batch = 10_000
    for start in range(single, n, batch):
        with session() as s:
            ledger.append_many(s, [("consent.allowed", _payload(i)) for i in range(start, min(n, start + batch))])
    out["ledger_batched_appends_per_s"] = round((n - single) / (time.perf_counter() - t0), 1)

    t0 = time.perf_counter()
    with session() as s:
        make_checkpoint(s, keys.signing_key)
    out["ledger_checkpoint_s_at_n"] = round(time.perf_counter() - t0, 2)

    with session() as s:
        tree = DbTree(s)
        size = tree.size()
        times_inc, times_con = [], []
        for k in range(20):
            index = (k * 7919 * 104729) % size
            t = time.perf_counter()
            proof = merkle.inclusion_proof(DbTree(s).get, index, size)
            times_inc.append(time.perf_counter() - t)
            merkle.verify_inclusion(index, size, tree.get(0, index), proof, merkle.root(tree.get, size))
            old = max(1, size - 1 - (k * 104729) % (size - 1))
            t = time.perf_counter()
            merkle.consistency_proof(DbTree(s).get, old, size)
            times_con.append(time.perf_counter() - t)
    out["ledger_proof_ms_at_1m" if n == 1_000_000 else "ledger_proof_ms_at_100k"] = round(
        statistics.median(times_inc) * 1000, 2)
    out["ledger_consistency_ms_at_1m" if n == 1_000_000 else "ledger_consistency_ms_at_100k"] = round(
        statistics.median(times_con) * 1000, 2)

    t0 = time.perf_counter()
    with session() as s:
        result = verify(s, keys.public_key)
    assert result.intact, result.problems[:3]
    out["audit_verify_s_at_1m" if n == 1_000_000 else "audit_verify_s_at_100k"] = round(time.perf_counter() - t0, 1)

    print(f"ledger: {n:,} entries on SQLite")
    for k, v in out.items():
        print(f"  {k:<36}{v:>12,}")
    return out


if __name__ == "__main__":
    run()
