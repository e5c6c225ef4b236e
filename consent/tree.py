"""The ledger's Merkle tree (RFC 6962), signed checkpoints (C2SP tlog-checkpoint), proofs and verification.

Events are appended cheaply (one row, in the transaction of the work they record). A checkpoint integrates the
events not yet in the tree, in seq order: each gets the next leaf index (ledger_leaves), the complete subtrees
it closes are stored (ledger_nodes), and the new tree head is signed (ledger_checkpoints), all in one
transaction. The tree therefore only ever grows, and every leaf is covered by a signed checkpoint.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from consent import checkpoint as cpnote
from consent import merkle
from consent.authorizations import terms, terms_differences
from consent.ledger import entry_bytes, leaf_hash
from core.crypto import DecryptionFailed, canonical_json, keyring, sha256_hex
from core.settings import settings
from core.store import (
    Authorization,
    AuthorizationMember,
    HouseholdRecord,
    LedgerCheckpoint,
    LedgerEvent,
    LedgerLeaf,
    LedgerNode,
    Revocation,
    aad_record,
    exclusive_session,
    session,
)


def origin() -> str:
    """The log's origin line (and the name of its signing key)."""
    return settings().ledger_origin  # HUB_LEDGER_ORIGIN


def verifier_key(public_key) -> str:
    return cpnote.verifier_key(origin(), public_key)


class DbTree:
    """The stored tree: complete-subtree hashes read from ledger_nodes (cached), sized by ledger_leaves."""

    def __init__(self, s: Session):
        self.s = s
        self.cache: dict[tuple[int, int], bytes] = {}

    def get(self, level: int, index: int) -> bytes:
        key = (level, index)
        if key not in self.cache:
            h = self.s.scalar(select(LedgerNode.hash).where(LedgerNode.level == level, LedgerNode.index == index))
            if h is None:
                raise LedgerCorrupt(f"ledger_nodes: node ({level}, {index}) is missing")
            self.cache[key] = bytes.fromhex(h)
        return self.cache[key]

    def size(self) -> int:
        last = self.s.scalar(select(func.max(LedgerLeaf.leaf_index)))
        return 0 if last is None else last + 1


class LedgerCorrupt(RuntimeError):
    """The stored tree does not match what was signed."""


class NotCheckpointed(LookupError):
    """The entry exists but no signed checkpoint covers it yet."""


def latest_checkpoint(s: Session) -> LedgerCheckpoint | None:
    return s.scalars(select(LedgerCheckpoint).order_by(LedgerCheckpoint.number.desc()).limit(1)).first()


def integrate(s: Session) -> int:
    """Give every event not yet in the tree the next leaf index; store the nodes it completes. Returns the count."""
    tree = DbTree(s)
    size = tree.size()
    done = select(LedgerLeaf.seq)
    pending = s.execute(select(LedgerEvent.seq, LedgerEvent.leaf_sha256).where(LedgerEvent.seq.not_in(done))
                        .order_by(LedgerEvent.seq)).all()
    leaves, nodes = [], []
    for i, (seq, leaf_hex) in enumerate(pending):
        index = size + i
        leaf = bytes.fromhex(leaf_hex)
        for level, idx, h in merkle.new_nodes(index, leaf, tree.get):
            tree.cache[(level, idx)] = h
            nodes.append({"level": level, "index": idx, "hash": h.hex()})
        leaves.append({"leaf_index": index, "seq": seq, "leaf_sha256": leaf_hex})
    if leaves:
        s.execute(LedgerLeaf.__table__.insert(), leaves)
        s.execute(LedgerNode.__table__.insert(), nodes)
    return len(leaves)


def make_checkpoint(s: Session, signing_key) -> LedgerCheckpoint | None:
    """Integrate pending events and sign the new tree head; None when nothing new was appended.

    Before signing, the new head is proven consistent with the previous signed one from the stored nodes."""
    integrate(s)
    tree = DbTree(s)
    size = tree.size()
    previous = latest_checkpoint(s)
    if previous is not None and previous.size == size:
        return None
    root = merkle.root(tree.get, size)
    if previous is not None and previous.size:
        proof = merkle.consistency_proof(tree.get, previous.size, size)
        try:
            merkle.verify_consistency(previous.size, size, bytes.fromhex(previous.root_sha256), root, proof)
        except merkle.ProofError as exc:
            raise LedgerCorrupt(f"the stored tree is not consistent with checkpoint {previous.number}: {exc}") from exc
    note = cpnote.sign_checkpoint(cpnote.Checkpoint(origin(), size, root), origin(), signing_key)
    cp = LedgerCheckpoint(number=(previous.number + 1) if previous else 1, size=size, root_sha256=root.hex(),
                          note=note.decode("utf-8"))
    s.add(cp)
    s.flush()
    return cp


def b64(h: bytes) -> str:
    return base64.b64encode(h).decode("ascii")


def inclusion(s: Session, seq: int) -> dict:
    """The inclusion proof of event ``seq`` against the latest signed checkpoint."""
    event = s.get(LedgerEvent, seq)
    if event is None:
        raise LookupError(f"no ledger entry {seq}")
    leaf = s.scalars(select(LedgerLeaf).where(LedgerLeaf.seq == seq)).first()
    cp = latest_checkpoint(s)
    if leaf is None or cp is None or leaf.leaf_index >= cp.size:
        raise NotCheckpointed(f"ledger entry {seq} is not covered by a signed checkpoint yet; run `hub audit checkpoint`")
    proof = merkle.inclusion_proof(DbTree(s).get, leaf.leaf_index, cp.size)
    return {"seq": seq, "kind": event.kind, "leaf_index": leaf.leaf_index, "tree_size": cp.size,
            "leaf_hash": b64(bytes.fromhex(leaf.leaf_sha256)), "proof": [b64(h) for h in proof],
            "root": b64(bytes.fromhex(cp.root_sha256)), "checkpoint": cp.note,
            "entry": entry_bytes(event.kind, event.recorded_at, event.payload).decode("utf-8")}


def check_proof(proof: dict, key: str | None = None) -> None:
    """Check an inclusion proof as ``inclusion`` gives it, the way anyone holding the ledger's public key can: the
    checkpoint note's signature (``key``, a verifier key; default the proof's own ``verifier_key``, which the
    reader should compare with the one the centre publishes), its size and root against the proof's, the leaf hash
    of the entry's bytes, and the path from the leaf to the root (RFC 6962). Raises ValueError (a ProofError or a
    note error among them) naming what does not hold."""
    try:
        cp = cpnote.open_checkpoint(proof["checkpoint"].encode("utf-8"), key or proof["verifier_key"])
        leaf = base64.b64decode(proof["leaf_hash"], validate=True)
        root = base64.b64decode(proof["root"], validate=True)
        path = [base64.b64decode(h, validate=True) for h in proof["proof"]]
        index, size = proof["leaf_index"], proof["tree_size"]
        entry = proof["entry"].encode("utf-8")
    except (KeyError, TypeError, AttributeError, base64.binascii.Error) as exc:
        raise ValueError(f"not an inclusion proof: {exc.__class__.__name__}") from None
    if cp.size != size or cp.root != root:
        raise ValueError("the proof's tree size or root is not the signed checkpoint's")
    if leaf_hash(entry) != leaf:
        raise ValueError("the entry's bytes do not hash to the proof's leaf")
    merkle.verify_inclusion(index, size, leaf, path, root)


@dataclass
class Verification:
    events: int
    leaves: int
    checkpoints: int
    root: str | None
    problems: list[str]

    @property
    def intact(self) -> bool:
        return not self.problems


def verify(s: Session, public_key) -> Verification:
    """Check the whole ledger: every checkpoint's signature and its agreement with the events, consistency between
    checkpoints, every leaf against the stored event it names, the stored nodes against the leaves, and the rows
    the events vouch for (published records, authorizations). Names every problem it finds."""
    problems: list[str] = []
    key = verifier_key(public_key)
    cps = s.scalars(select(LedgerCheckpoint).order_by(LedgerCheckpoint.number)).all()
    signed: list[tuple[int, int, bytes]] = []  # (number, size, root) of the checkpoints whose signature holds
    for expected, cp in enumerate(cps, 1):
        if cp.number != expected:
            problems.append(f"ledger_checkpoints: checkpoint {expected} is missing")
        try:
            body = cpnote.open_checkpoint(cp.note.encode("utf-8"), key)
        except cpnote.CheckpointError as exc:
            problems.append(f"ledger_checkpoints: checkpoint {cp.number} fails its signature check ({exc.__class__.__name__})")
            continue
        if body.size != cp.size or body.root.hex() != cp.root_sha256:
            problems.append(f"ledger_checkpoints: checkpoint {cp.number}: size or root column differs from its signed note")
        if body.origin != origin():
            problems.append(f"ledger_checkpoints: checkpoint {cp.number} is of another log ({body.origin})")
        if signed and body.size < signed[-1][1]:
            problems.append(f"ledger_checkpoints: checkpoint {cp.number} is smaller than checkpoint {signed[-1][0]}")
        signed.append((cp.number, body.size, body.root))

    events = {e.seq: e for e in s.execute(select(LedgerEvent.seq, LedgerEvent.kind, LedgerEvent.recorded_at,
                                                  LedgerEvent.payload, LedgerEvent.leaf_sha256))}
    leaves = s.execute(select(LedgerLeaf.leaf_index, LedgerLeaf.seq, LedgerLeaf.leaf_sha256)
                       .order_by(LedgerLeaf.leaf_index)).all()
    tree = merkle.MemoryTree()
    for expected, (index, seq, leaf_hex) in enumerate(leaves):
        if index != expected:
            problems.append(f"ledger_leaves: leaf {expected} is missing")
            break
        event = events.get(seq)
        stored = bytes.fromhex(leaf_hex)
        if event is None:
            problems.append(f"ledger_events: event seq {seq} (leaf {index}) is missing")
            tree.append_leaf_hash(stored)
            continue
        actual = leaf_hash(entry_bytes(event.kind, event.recorded_at, event.payload))
        if actual.hex() != event.leaf_sha256:
            problems.append(f"ledger_events: event seq {seq} (leaf {index}) was altered: its content no longer "
                            f"matches its leaf hash")
        if stored.hex() != event.leaf_sha256:
            problems.append(f"ledger_leaves: leaf {index} (event seq {seq}) was altered")
        tree.append_leaf_hash(actual)
    for number, size, root in signed:
        if size > tree.size:
            problems.append(f"ledger_leaves: checkpoint {number} covers {size} entries, the tree holds {tree.size}")
        elif merkle.root(tree.get, size) != root:
            problems.append(f"ledger: the events under checkpoint {number} do not give its signed root")
    if signed and tree.size > signed[-1][1]:
        problems.append(f"ledger_checkpoints: leaves up to {tree.size} are integrated but the latest checkpoint "
                        f"covers {signed[-1][1]}: a checkpoint was removed")
    stored_nodes = {(level, index): h for level, index, h in
                    s.execute(select(LedgerNode.level, LedgerNode.index, LedgerNode.hash))}
    level = 0
    while tree.size >> level:
        for index in range(tree.size >> level):
            h = tree.get(level, index)
            got = stored_nodes.pop((level, index), None)
            if got is None:
                problems.append(f"ledger_nodes: node ({level}, {index}) is missing")
            elif got != h.hex():
                problems.append(f"ledger_nodes: node ({level}, {index}) was altered")
        level += 1
    for level, index in sorted(stored_nodes):
        problems.append(f"ledger_nodes: node ({level}, {index}) does not belong to the tree")
    problems += _check_vouched_rows(s, events)
    return Verification(events=len(events), leaves=len(leaves), checkpoints=len(cps),
                        root=signed[-1][2].hex() if signed else None, problems=problems)


def _check_vouched_rows(s: Session, events: dict) -> list[str]:
    """Rows the ledger vouches for, both ways (a changed row, a row without its entry, an entry without its row):
    published records (their content's hash), authorizations and their members (every term the gate and the reads
    rest on), revocations (each row names its entry, so an undone withdrawal of consent is found)."""
    problems = []
    published = {(e.payload.get("household_ref"), e.payload.get("version")): (e.payload.get("content_sha256"), seq)
                 for seq, e in events.items() if e.kind == "record.published"}
    keys = keyring()
    for r in s.scalars(select(HouseholdRecord)):
        logged, _ = published.pop((r.household_ref, r.version), (None, None))
        try:
            content = keys.decrypt(r.content_enc, aad=aad_record(r.household_ref, r.version))
            actual = sha256_hex(content.encode("utf-8"))
        except DecryptionFailed:
            actual = None
        if logged is None:
            problems.append(f"household_records: record {r.household_ref} v{r.version} has no ledger entry")
        elif actual != logged or r.content_sha256 != logged:
            problems.append(f"household_records: record {r.household_ref} v{r.version} differs from what was logged")
    for (household_ref, version), (_, seq) in sorted(published.items(), key=lambda kv: kv[1][1]):
        problems.append(f"household_records: record {household_ref} v{version} (ledger seq {seq}) is missing: "
                        f"a published record was deleted")

    granted = {e.payload.get("authorization_id"): (e.payload, seq)
               for seq, e in events.items() if e.kind == "authorization.granted"}
    members: dict[str, list] = {}
    for m in s.scalars(select(AuthorizationMember)):
        members.setdefault(m.authorization_id, []).append(m)
    for a in s.scalars(select(Authorization)):
        logged, _ = granted.pop(a.id, (None, None))
        if logged is None:
            problems.append(f"authorizations: authorization {a.id} has no ledger entry")
            continue
        if sha256_hex(canonical_json(a.receipt)) != logged.get("receipt_sha256") or \
                a.receipt_sha256 != logged.get("receipt_sha256"):
            problems.append(f"authorizations: authorization {a.id} differs from what was logged: receipt")
        actual = terms(a, members.pop(a.id, []))
        expected = logged.get("terms")
        if expected is None:
            expected, actual = _terms_of_receipt(a.receipt, actual)
        changed = terms_differences(expected, actual)
        if changed:
            problems.append(f"authorizations: authorization {a.id} differs from what was logged: {', '.join(changed)}")
    for auth_id, (_, seq) in sorted(granted.items(), key=lambda kv: kv[1][1]):
        problems.append(f"authorizations: authorization {auth_id} (ledger seq {seq}) is missing: it was deleted")
    for auth_id in sorted(members):
        problems.append(f"authorization_members: members of authorization {auth_id}, which is not stored")

    revoked = {e.payload["revocation_id"]: (e.payload, seq) for seq, e in events.items()
               if e.kind == "authorization.revoked" and "revocation_id" in e.payload}
    legacy = {(e.payload.get("authorization_id"), e.payload.get("person_ref"), e.payload.get("source")): seq
              for seq, e in events.items() if e.kind == "authorization.revoked" and "revocation_id" not in e.payload}
    scopes = set()
    for r in s.scalars(select(Revocation)):
        scope = (r.authorization_id, r.person_ref, r.source)
        scopes.add(scope)
        logged, _ = revoked.pop(r.id, (None, None))
        if logged is None:
            if scope not in legacy:  # revocations from before their rows named their entries match by scope
                problems.append(f"revocations: revocation {r.id} of authorization {r.authorization_id} has no "
                                f"ledger entry")
            continue
        changed = [k for k, v in (("authorization_id", r.authorization_id), ("person_ref", r.person_ref),
                                  ("source", r.source), ("revoked_at", r.revoked_at.isoformat())) if logged.get(k) != v]
        if changed:
            problems.append(f"revocations: revocation {r.id} of authorization {r.authorization_id} differs from what "
                            f"was logged: {', '.join(changed)}")
    missing = [(seq, p["revocation_id"], p["authorization_id"], p.get("scope")) for p, seq in revoked.values()]
    missing += [(seq, None, scope[0], "legacy") for scope, seq in legacy.items() if scope not in scopes]
    for seq, rid, auth_id, scope in sorted(missing):
        problems.append(f"revocations: revocation {rid or ''} of authorization {auth_id} ({scope}; ledger seq {seq}) "
                        f"is missing: a withdrawal of consent was undone")
    return problems


def _terms_of_receipt(receipt: dict, actual: dict) -> tuple[dict, dict]:
    """For an authorization logged before its entries held its terms: the terms its receipt (vouched for by its
    hash) states, and the stored terms cut to the same fields, to compare."""
    entrustment = receipt.get("entrustment") or {}
    logged = {"request_id": entrustment.get("request_id"), "department": entrustment.get("department"),
              "purpose": (receipt.get("purpose") or {}).get("code"),
              "valid_from": (receipt.get("validity") or {}).get("from"),
              "valid_until": (receipt.get("validity") or {}).get("until"),
              "recheck_interval_days": receipt.get("recheck_interval_days"),
              "data_life_days": receipt.get("data_life_days"), "members": {}}
    for p in receipt.get("principals") or []:
        sensitive = p.get("sensitive") or {}
        logged["members"][p.get("person_ref")] = {
            "evidence_sha256": p.get("evidence_sha256"), "guardian_ref": p.get("guardian_ref"),
            "sources": p.get("categories"), "financial_sources": sensitive.get("categories", []),
            "financial_evidence_sha256": sensitive.get("evidence_sha256")}
    cut = {k: actual.get(k) for k in logged if k != "members"}
    cut["members"] = {ref: {f: m.get(f) for f in next(iter(logged["members"].values()), {})}
                      for ref, m in (actual.get("members") or {}).items()}
    return logged, cut


# -- stages (the ledger_checkpoint DAG and `hub audit`) ---------------------------------------------------------


def checkpoint_now(signing_key) -> LedgerCheckpoint:
    """Integrate new entries and sign a checkpoint, one checkpointer at a time across processes (the ledger's
    writer lock, core.store.exclusive_session); when nothing is new, the latest checkpoint as it stands. Appenders
    keep appending meanwhile: what they commit later goes into the next checkpoint."""
    with exclusive_session(lock="ledger") as s:
        return make_checkpoint(s, signing_key) or latest_checkpoint(s)


def sign_checkpoint_stage() -> dict:
    """Integrate new entries and sign a checkpoint; returns its number, size and root (no personal data)."""
    cp = checkpoint_now(keyring().signing_key)
    return {"number": cp.number, "size": cp.size, "root": cp.root_sha256}


def verify_stage() -> dict:
    """Verify the whole ledger; raise LedgerCorrupt naming the problems when it is not intact."""
    with session() as s:
        result = verify(s, keyring().public_key)
    if not result.intact:
        raise LedgerCorrupt("; ".join(result.problems[:20]))
    return {"events": result.events, "checkpoints": result.checkpoints, "root": result.root}
