"""consent.merkle: RFC 6962 vectors from transparency-dev/merkle, known answers, exhaustive small-tree
properties against a naive RFC 6962 implementation written here, and getter-call budgets."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest

from consent import merkle
from consent.merkle import (
    EMPTY_ROOT,
    IndexOutOfRangeError,
    InvalidSizesError,
    MalformedHashError,
    MemoryTree,
    ProofError,
    ProofLengthError,
    RootMismatchError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    new_nodes,
    node_hash,
    root,
    subtree_root,
    verify_consistency,
    verify_inclusion,
)

VECTORS = Path(__file__).resolve().parents[2].parent / "shared" / "testdata" / "rfc6962-vectors"
MISSING = f"RFC 6962 test vectors not found at {VECTORS} (shared/testdata beside the checkout); skipped"

REFERENCE_LEAVES = [bytes.fromhex(h) for h in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f")]
REFERENCE_ROOT = bytes.fromhex("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")
EMPTY_SHA256 = bytes.fromhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")


# ------------------------------------------------------------------ naive RFC 6962 (section 2.1), for reference


def sha256(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


def split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(d: list[bytes]) -> bytes:
    if not d:
        return sha256(b"")
    if len(d) == 1:
        return sha256(b"\x00" + d[0])
    k = split(len(d))
    return sha256(b"\x01" + mth(d[:k]) + mth(d[k:]))


def path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = split(len(d))
    return path(m, d[:k]) + [mth(d[k:])] if m < k else path(m - k, d[k:]) + [mth(d[:k])]


def subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    if m == len(d):
        return [] if b else [mth(d)]
    k = split(len(d))
    return subproof(m, d[:k], b) + [mth(d[k:])] if m <= k else subproof(m - k, d[k:], False) + [mth(d[:k])]


# -------------------------------------------------------------------------------------------- fixtures

N = 70
DATA = [b"entry %d" % i for i in range(N)]


@pytest.fixture(scope="module")
def tree() -> MemoryTree:
    t = MemoryTree()
    for d in DATA:
        t.append(d)
    return t


@pytest.fixture(scope="module")
def roots(tree) -> list[bytes]:
    return [tree.root(s) for s in range(N + 1)]


def flipped(proof: list[bytes], i: int, pos: int) -> list[bytes]:
    h = bytearray(proof[i])
    h[pos] ^= 0x01
    return proof[:i] + [bytes(h)] + proof[i + 1:]


def flip_positions(size: int) -> range | tuple[int, ...]:
    """Every byte for small trees; first, last and a rotating middle byte otherwise (keeps the run short)."""
    return range(32) if size <= 12 else (0, 31, 1 + size % 30)


# -------------------------------------------------------------------------------------------- vectors


def _vector_files(kind: str) -> list:
    if not VECTORS.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=MISSING), id="vectors-missing")]
    files = sorted((VECTORS / kind).rglob("*.json"))
    assert files, f"no {kind} vectors under {VECTORS}"
    return [pytest.param(f, id=str(f.relative_to(VECTORS / kind))) for f in files]


def _b64(s: str) -> bytes:
    return base64.b64decode(s, validate=True)


@pytest.mark.parametrize("file", _vector_files("inclusion"))
def test_inclusion_vector(file):
    c = json.loads(file.read_text())
    args = (c["leafIdx"], c["treeSize"], _b64(c["leafHash"]), [_b64(p) for p in c["proof"] or []], _b64(c["root"]))
    if c["wantErr"]:
        with pytest.raises(ProofError):
            verify_inclusion(*args)
    else:
        verify_inclusion(*args)


@pytest.mark.parametrize("file", _vector_files("consistency"))
def test_consistency_vector(file):
    c = json.loads(file.read_text())
    args = (c["size1"], c["size2"], _b64(c["root1"]), _b64(c["root2"]), [_b64(p) for p in c["proof"] or []])
    if c["wantErr"]:
        with pytest.raises(ProofError):
            verify_consistency(*args)
    else:
        verify_consistency(*args)


def test_generated_proofs_equal_the_vectors_on_the_reference_tree():
    if not VECTORS.is_dir():
        pytest.skip(MISSING)
    t = MemoryTree()
    for leaf in REFERENCE_LEAVES:
        t.append(leaf)
    seen = 0
    for f in sorted(VECTORS.glob("inclusion/*/happy-path.json")):
        c = json.loads(f.read_text())
        if c["treeSize"] <= 8 and _b64(c["root"]) == t.root(c["treeSize"]):
            assert t.inclusion_proof(c["leafIdx"], c["treeSize"]) == [_b64(p) for p in c["proof"] or []], f
            seen += 1
    for f in sorted(VECTORS.glob("consistency/*/happy-path.json")):
        c = json.loads(f.read_text())
        if c["size2"] <= 8 and _b64(c["root2"]) == t.root(c["size2"]):
            assert t.consistency_proof(c["size1"], c["size2"]) == [_b64(p) for p in c["proof"] or []], f
            seen += 1
    assert seen >= 4


# -------------------------------------------------------------------------------------------- known answers


def test_known_answers():
    assert EMPTY_ROOT == EMPTY_SHA256 == root(lambda level, index: pytest.fail("getter called"), 0)
    assert leaf_hash(b"") == bytes.fromhex("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
    t = MemoryTree()
    assert t.root() == EMPTY_SHA256
    for leaf in REFERENCE_LEAVES:
        t.append(leaf)
    assert t.root() == REFERENCE_ROOT == mth(REFERENCE_LEAVES)
    assert node_hash(t.get(2, 0), t.get(2, 1)) == REFERENCE_ROOT == t.get(3, 0)


def test_root_equals_naive_mth_for_every_size_up_to_64(tree):
    for size in range(N + 1):
        assert root(tree.get, size) == tree.root(size) == mth(DATA[:size]), size


def test_subtree_root_of_every_range_equals_naive_mth(tree):
    for start in range(33):
        for end in range(start + 1, 34):
            assert subtree_root(tree.get, start, end) == mth(DATA[start:end]), (start, end)


def test_proofs_equal_naive_rfc6962_path_and_proof(tree):
    for size in range(1, 65):
        for index in range(size):
            assert inclusion_proof(tree.get, index, size) == path(index, DATA[:size]), (index, size)
        for size1 in range(1, size + 1):
            assert consistency_proof(tree.get, size1, size) == subproof(size1, DATA[:size], True), (size1, size)


# -------------------------------------------------------------------------------------------- properties


def test_every_inclusion_proof_up_to_64_verifies_and_every_corruption_fails(tree, roots):
    for size in range(1, 65):
        r = roots[size]
        for index in range(size):
            leaf, proof = tree.get(0, index), tree.inclusion_proof(index, size)
            verify_inclusion(index, size, leaf, proof, r)
            assert merkle.root_from_inclusion_proof(index, size, leaf, proof) == r
            for i in range(len(proof)):
                for pos in flip_positions(size):
                    with pytest.raises(RootMismatchError):
                        verify_inclusion(index, size, leaf, flipped(proof, i, pos), r)
            for pos in flip_positions(size):
                with pytest.raises(RootMismatchError):
                    verify_inclusion(index, size, flipped([leaf], 0, pos)[0], proof, r)
                with pytest.raises(RootMismatchError):
                    verify_inclusion(index, size, leaf, proof, flipped([r], 0, pos)[0])
            with pytest.raises(ProofError):
                verify_inclusion(index + 1, size, leaf, proof, r)
            with pytest.raises(ProofError):
                verify_inclusion(index, size + 1, leaf, proof, roots[size + 1])
            if index < size - 1:
                with pytest.raises(ProofError):
                    verify_inclusion(index, size - 1, leaf, proof, roots[size - 1])
            with pytest.raises(ProofLengthError):
                verify_inclusion(index, size, leaf, proof + [leaf], r)
            if proof:
                with pytest.raises(ProofLengthError):
                    verify_inclusion(index, size, leaf, proof[:-1], r)
            if len(proof) > 1:
                with pytest.raises(RootMismatchError):
                    verify_inclusion(index, size, leaf, proof[::-1], r)


def test_inclusion_proofs_bind_the_size_only_through_the_root(tree, roots):
    """As in transparency-dev/merkle: the verifier trusts (size, root) as a pair, e.g. from one checkpoint.
    A proof for (0, 3) has the same shape as one for (0, 4), so against the SIZE-3 root it verifies for 4."""
    proof = tree.inclusion_proof(0, 3)
    verify_inclusion(0, 4, tree.get(0, 0), proof, roots[3])
    with pytest.raises(RootMismatchError):
        verify_inclusion(0, 4, tree.get(0, 0), proof, roots[4])


def test_every_consistency_proof_up_to_64_verifies_and_every_corruption_fails(tree, roots):
    for size2 in range(1, 65):
        for size1 in range(1, size2 + 1):
            r1, r2, proof = roots[size1], roots[size2], tree.consistency_proof(size1, size2)
            verify_consistency(size1, size2, r1, r2, proof)
            for i in range(len(proof)):
                for pos in flip_positions(size2):
                    with pytest.raises(RootMismatchError):
                        verify_consistency(size1, size2, r1, r2, flipped(proof, i, pos))
            for pos in (0, 31):
                with pytest.raises(RootMismatchError):
                    verify_consistency(size1, size2, flipped([r1], 0, pos)[0], r2, proof)
                with pytest.raises(RootMismatchError):
                    verify_consistency(size1, size2, r1, flipped([r2], 0, pos)[0], proof)
            if size1 < size2:
                with pytest.raises(ProofError):
                    verify_consistency(size1, size2, r2, r1, proof)
                with pytest.raises(ProofError):
                    verify_consistency(size1 + 1, size2, roots[size1 + 1], r2, proof)
                with pytest.raises(ProofError):
                    verify_consistency(size1 + 1, size2, r1, r2, proof)
                with pytest.raises(ProofError):
                    verify_consistency(size1, size2 - 1, r1, roots[size2 - 1], proof)
                with pytest.raises(ProofLengthError):
                    verify_consistency(size1, size2, r1, r2, proof[:-1])
            if size1 > 1:
                with pytest.raises(ProofError):
                    verify_consistency(size1 - 1, size2, roots[size1 - 1], r2, proof)
                with pytest.raises(ProofError):
                    verify_consistency(size1 - 1, size2, r1, r2, proof)
            with pytest.raises(ProofError):
                verify_consistency(size1, size2 + 1, r1, roots[size2 + 1], proof)
            with pytest.raises(ProofLengthError):
                verify_consistency(size1, size2, r1, r2, proof + [r1])


# -------------------------------------------------------------------------------------------- preconditions


def test_preconditions_and_typed_errors(tree, roots):
    leaf, r = tree.get(0, 0), roots[4]
    with pytest.raises(IndexOutOfRangeError) as e:
        verify_inclusion(4, 4, leaf, [], r)
    assert (e.value.index, e.value.size) == (4, 4) and str(e.value) == "leaf index 4 is out of range for tree size 4"
    with pytest.raises(IndexOutOfRangeError):
        verify_inclusion(-1, 4, leaf, [], r)
    with pytest.raises(IndexOutOfRangeError):
        verify_inclusion(0, 0, leaf, [], EMPTY_ROOT)
    with pytest.raises(MalformedHashError):
        verify_inclusion(0, 4, leaf[:31], tree.inclusion_proof(0, 4), r)
    with pytest.raises(ProofLengthError) as e:
        verify_inclusion(0, 4, leaf, [], r)
    assert (e.value.got, e.value.want) == (0, 2)
    with pytest.raises(MalformedHashError) as e:
        verify_inclusion(0, 4, leaf, [b"x" * 32, b"y" * 33], r)
    assert str(e.value) == "proof[1] has 33 bytes, want 32"
    with pytest.raises(RootMismatchError) as e:
        verify_inclusion(0, 4, leaf, tree.inclusion_proof(0, 4), roots[3])
    assert e.value.size == 4 and e.value.computed == r and e.value.expected == roots[3]
    assert str(e.value) == f"root mismatch at tree size 4: computed {r.hex()}, expected {roots[3].hex()}"
    for size1, size2 in ((5, 4), (0, 0), (0, 4), (-1, 4)):
        with pytest.raises(InvalidSizesError):
            verify_consistency(size1, size2, roots[4], roots[4], [])
        if size1 != 0 or size2 == 0:
            with pytest.raises(InvalidSizesError):
                tree.consistency_proof(size1, size2)
    with pytest.raises(ProofLengthError):
        verify_consistency(4, 4, r, r, [r])
    with pytest.raises(RootMismatchError):
        verify_consistency(4, 4, r, roots[3], [])
    verify_consistency(4, 4, r, r, [])
    with pytest.raises(ProofLengthError):
        verify_consistency(3, 4, roots[3], r, [])
    with pytest.raises(IndexOutOfRangeError):
        tree.inclusion_proof(5, 5)
    with pytest.raises(ValueError):
        tree.root(N + 1)
    for cls in (IndexOutOfRangeError, ProofLengthError, RootMismatchError, InvalidSizesError, MalformedHashError):
        assert issubclass(cls, ProofError) and issubclass(cls, ValueError)


# -------------------------------------------------------------------------------------------- appending


def test_new_nodes_closes_each_complete_subtree(tree):
    store: dict[tuple[int, int], bytes] = {}
    for i, d in enumerate(DATA[:16]):
        nodes = new_nodes(i, leaf_hash(d), lambda level, index: store[(level, index)])
        assert [(lv, ix) for lv, ix, _ in nodes] == [(lv, i >> lv) for lv in range(len(nodes))]
        assert len(nodes) == 1 + ((i + 1) & -(i + 1)).bit_length() - 1  # 1 + trailing one bits of i
        for level, index, h in nodes:
            store[(level, index)] = h
            assert h == mth(DATA[index << level:(index + 1) << level])
    assert root(lambda level, index: store[(level, index)], 16) == mth(DATA[:16])
    with pytest.raises(MalformedHashError):
        new_nodes(16, b"not a hash", store.get)


def test_memory_tree_appends_hashes_and_data_alike():
    a, b = MemoryTree(), MemoryTree()
    for d in DATA[:10]:
        assert a.append(d) == b.append_leaf_hash(leaf_hash(d))
    assert a.root() == b.root() == mth(DATA[:10]) and len(a) == a.size == 10


# -------------------------------------------------------------------------------------------- efficiency

BIG = 2**20 + 12345


class Counting:
    """A getter that counts its calls and checks each node lies wholly inside the tree being computed."""

    def __init__(self, get, size: int):
        self.inner, self.size, self.calls = get, size, 0

    def __call__(self, level: int, index: int) -> bytes:
        assert level >= 0 and index >= 0 and (index + 1) << level <= self.size, (level, index, self.size)
        self.calls += 1
        return self.inner(level, index)


@pytest.fixture(scope="module")
def big_tree() -> MemoryTree:
    t = MemoryTree()
    for i in range(BIG):
        t.append_leaf_hash(sha256(i.to_bytes(8, "big")))  # any 32 bytes will do as leaf hashes
    return t


def test_getter_calls_at_2_pow_20_plus_12345_leaves(big_tree):
    budget = BIG.bit_length() ** 2  # (log2 n)^2, rounded up: 441
    r = big_tree.root()
    indices = [0, 1, 2**19, 2**20 - 1, 2**20, BIG - 2, BIG - 1] + list(range(7, BIG, 65537))
    worst = 0
    for index in indices:
        get = Counting(big_tree.get, BIG)
        proof = inclusion_proof(get, index, BIG)
        verify_inclusion(index, BIG, big_tree.get(0, index), proof, r)
        worst = max(worst, get.calls)
    for size1 in [1, 2, 3, 2**19 + 1, 2**20, 2**20 + 1, BIG - 1] + list(range(5, BIG, 70001)):
        get = Counting(big_tree.get, BIG)
        proof = consistency_proof(get, size1, BIG)
        verify_consistency(size1, BIG, big_tree.root(size1), r, proof)
        worst = max(worst, get.calls)
    get = Counting(big_tree.get, BIG)
    assert root(get, BIG) == r and get.calls == BIG.bit_count()
    assert worst <= budget, (worst, budget)
    assert worst <= 2 * BIG.bit_length() + 5  # in fact O(log n): one stored node per sibling, bar the border


def test_appending_costs_two_hashes_amortized(monkeypatch):
    t, calls = MemoryTree(), []
    real = merkle.node_hash
    monkeypatch.setattr(merkle, "node_hash", lambda left, right: calls.append(1) or real(left, right))
    for i in range(4096):
        t.append_leaf_hash(sha256(i.to_bytes(8, "big")))
    assert len(calls) == 4095  # one per internal node of the perfect tree of 4096 leaves
