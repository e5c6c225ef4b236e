"""RFC 6962 Merkle tree: hashing, proof construction over stored subtrees, and proof verification.

The verifiers follow transparency-dev/merkle (proof/verify.go, rfc6962/rfc6962.go): preconditions first,
the expected proof length is derived from the sizes alone and checked before any hashing, and every failure
raises a ProofError subclass. Error messages carry only sizes, indices, lengths and hashes.

Tree computations read the hashes of PERFECT ALIGNED subtrees through a getter `get(level, index)`: node
(level, index) covers leaves [index * 2**level, (index + 1) * 2**level), level 0 being the leaf hashes. The
getter is only asked for nodes lying entirely within the tree size being computed, so a database holding
every complete node can serve historical roots and proofs for any earlier size.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
Getter = Callable[[int, int], bytes]


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + bytes(data)).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


class ProofError(ValueError):
    """A Merkle proof, or the sizes, index or hashes it is checked against, is invalid."""


class IndexOutOfRangeError(ProofError):
    def __init__(self, index: int, size: int):
        super().__init__(f"leaf index {index} is out of range for tree size {size}")
        self.index, self.size = index, size


class ProofLengthError(ProofError):
    def __init__(self, got: int, want: int):
        super().__init__(f"proof has {got} hashes, want {want}")
        self.got, self.want = got, want


class RootMismatchError(ProofError):
    def __init__(self, size: int, computed: bytes, expected: bytes):
        super().__init__(f"root mismatch at tree size {size}: computed {computed.hex()}, expected {expected.hex()}")
        self.size, self.computed, self.expected = size, computed, expected


class InvalidSizesError(ProofError):
    def __init__(self, size1: int, size2: int):
        if size1 == 0 and size2 >= 0:
            reason = "a consistency proof from the empty tree is meaningless"
        else:
            reason = "need 0 < size1 <= size2"
        super().__init__(f"invalid tree sizes {size1} -> {size2}: {reason}")
        self.size1, self.size2 = size1, size2


class MalformedHashError(ProofError):
    def __init__(self, what: str, got: int):
        super().__init__(f"{what} has {got} bytes, want {HASH_SIZE}")
        self.what, self.got = what, got


def _check_proof(proof: Sequence[bytes]) -> list[bytes]:
    for i, h in enumerate(proof):
        if len(h) != HASH_SIZE:
            raise MalformedHashError(f"proof[{i}]", len(h))
    return [bytes(h) for h in proof]


# ---------------------------------------------------------------------------------------------- verification


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root of a tree of `size` leaves implied by `proof` for leaf hash `leaf` at `index`."""
    if not 0 <= index < size:
        raise IndexOutOfRangeError(index, size)
    if len(leaf) != HASH_SIZE:
        raise MalformedHashError("leaf hash", len(leaf))
    inner = (index ^ (size - 1)).bit_length()  # levels below where paths to index and size-1 diverge
    border = (index >> inner).bit_count()  # left siblings on the right border above that
    if len(proof) != inner + border:
        raise ProofLengthError(len(proof), inner + border)
    proof = _check_proof(proof)
    h = bytes(leaf)
    for i, p in enumerate(proof):
        h = node_hash(h, p) if i < inner and not (index >> i) & 1 else node_hash(p, h)
    return h


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> None:
    """Raise a ProofError unless `proof` shows leaf hash `leaf` at `index` in the tree (size, root).

    The size is bound only through the root (a proof for size 3 also checks out for size 4 against the size-3
    root), so take size and root together from one verified checkpoint."""
    computed = root_from_inclusion_proof(index, size, leaf, proof)
    if computed != root:
        raise RootMismatchError(size, computed, bytes(root))


def verify_consistency(size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]) -> None:
    """Raise a ProofError unless `proof` shows the tree (size1, root1) is a prefix of (size2, root2).

    As in transparency-dev/merkle: size1 == 0 is rejected (nothing to prove), equal sizes need an empty proof
    and equal roots (compared as given, whatever their length).
    """
    if size1 < 0 or size2 < size1 or size1 == 0:
        raise InvalidSizesError(size1, size2)
    if size1 == size2:
        if len(proof):
            raise ProofLengthError(len(proof), 0)
        if root1 != root2:
            raise RootMismatchError(size2, bytes(root1), bytes(root2))
        return
    shift = (size1 & -size1).bit_length() - 1  # level of the rightmost perfect subtree of the old tree
    inner = ((size1 - 1) ^ (size2 - 1)).bit_length()
    border = ((size1 - 1) >> inner).bit_count()
    inner -= shift
    first = 0 if size1 == 1 << shift else 1  # a perfect old tree is its own seed; otherwise proof[0] is
    if len(proof) != first + inner + border:
        raise ProofLengthError(len(proof), first + inner + border)
    proof = _check_proof(proof)
    seed = bytes(root1) if first == 0 else proof[0]
    rest, mask = proof[first:], (size1 - 1) >> shift
    hash1 = hash2 = seed
    for i, p in enumerate(rest[:inner]):
        if (mask >> i) & 1:
            hash1, hash2 = node_hash(p, hash1), node_hash(p, hash2)
        else:
            hash2 = node_hash(hash2, p)  # a right sibling: part of the new tree only
    for p in rest[inner:]:
        hash1, hash2 = node_hash(p, hash1), node_hash(p, hash2)
    if hash1 != root1:
        raise RootMismatchError(size1, hash1, bytes(root1))
    if hash2 != root2:
        raise RootMismatchError(size2, hash2, bytes(root2))


# ------------------------------------------------------------------------------ computation over stored nodes


def _split(n: int) -> int:
    """The largest power of two strictly less than n (n >= 2): RFC 6962's k."""
    return 1 << ((n - 1).bit_length() - 1)


def subtree_root(get: Getter, start: int, end: int) -> bytes:
    """MTH of leaves [start, end). When start is a multiple of the smallest power of two >= end - start (as
    for every subtree of an RFC 6962 tree) each left part is one stored node: O(log n) getter calls."""
    n = end - start
    if start < 0 or n <= 0:
        raise ValueError(f"empty or negative leaf range [{start}, {end})")
    if n & (n - 1) == 0 and start % n == 0:
        level = n.bit_length() - 1
        return get(level, start >> level)
    k = _split(n)
    return node_hash(subtree_root(get, start, start + k), subtree_root(get, start + k, end))


def root(get: Getter, size: int) -> bytes:
    if size < 0:
        raise ValueError(f"negative tree size {size}")
    return EMPTY_ROOT if size == 0 else subtree_root(get, 0, size)


def inclusion_proof(get: Getter, index: int, size: int) -> list[bytes]:
    """RFC 6962 section 2.1.1 PATH(index, D[0:size]), leaf to root."""
    if not 0 <= index < size:
        raise IndexOutOfRangeError(index, size)
    siblings, lo, hi = [], 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            siblings.append(subtree_root(get, lo + k, hi))
            hi = lo + k
        else:
            siblings.append(subtree_root(get, lo, lo + k))
            lo += k
    return siblings[::-1]


def consistency_proof(get: Getter, size1: int, size2: int) -> list[bytes]:
    """RFC 6962 section 2.1.2 PROOF(size1, D[0:size2]); requires 0 < size1 <= size2."""
    if size1 <= 0 or size2 < size1:
        raise InvalidSizesError(size1, size2)
    siblings, lo, hi, whole = [], 0, size2, True  # SUBPROOF(size1 - lo, D[lo:hi], whole)
    while size1 != hi:
        k = _split(hi - lo)
        if size1 <= lo + k:
            siblings.append(subtree_root(get, lo + k, hi))
            hi = lo + k
        else:
            siblings.append(subtree_root(get, lo, lo + k))
            lo, whole = lo + k, False
    head = [] if whole else [subtree_root(get, lo, hi)]
    return head + siblings[::-1]


def new_nodes(leaf_index: int, leaf: bytes, get: Getter) -> list[tuple[int, int, bytes]]:
    """The nodes (level, index, hash) completed by appending leaf hash `leaf` (= leaf_hash(data)) at
    `leaf_index`: the leaf itself, then each parent while the node is a right child. 2 hashes amortized."""
    if len(leaf) != HASH_SIZE:
        raise MalformedHashError("leaf hash", len(leaf))
    level, index, h = 0, leaf_index, bytes(leaf)
    nodes = [(0, index, h)]
    while index & 1:
        h = node_hash(get(level, index - 1), h)
        level, index = level + 1, index >> 1
        nodes.append((level, index, h))
    return nodes


class MemoryTree:
    """In-memory log holding every complete node (one list per level): a reference implementation."""

    def __init__(self) -> None:
        self._levels: list[list[bytes]] = [[]]
        self._stored = lambda level, index: self._levels[level][index]  # unchecked get, for appends

    @property
    def size(self) -> int:
        return len(self._levels[0])

    def __len__(self) -> int:
        return self.size

    def get(self, level: int, index: int) -> bytes:
        if index < 0 or level < 0:
            raise IndexError(f"no node ({level}, {index})")
        return self._levels[level][index]

    def append(self, data: bytes) -> int:
        """Append an entry (hashed with leaf_hash); returns its leaf index."""
        return self.append_leaf_hash(leaf_hash(data))

    def append_leaf_hash(self, leaf: bytes) -> int:
        levels = self._levels
        index = len(levels[0])
        for level, _, h in new_nodes(index, leaf, self._stored):  # node (level, i) lands at levels[level][i]
            if level == len(levels):
                levels.append([])
            levels[level].append(h)
        return index

    def _size(self, size: int | None) -> int:
        if size is None:
            return self.size
        if not 0 <= size <= self.size:
            raise ValueError(f"tree size {size} not in [0, {self.size}]")
        return size

    def root(self, size: int | None = None) -> bytes:
        return root(self.get, self._size(size))

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        return inclusion_proof(self.get, index, self._size(size))

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        return consistency_proof(self.get, size1, self._size(size2))
