"""The shapes of identifiers and values the API and the console accept from outside, in one place, and the ids
the store's bulk tables are keyed by."""

import secrets
import time

MAX_ID = 2**31 - 1  # the store's integer ids and ledger seqs (a PostgreSQL integer)
NO_NUL = r"^[^\x00]*$"  # what reaches the database as text: PostgreSQL refuses NUL characters
HEX32 = r"^[0-9a-f]{32}$"  # request and client ids
HOUSEHOLD = r"^hh_[0-9a-f]{32}$"  # a household's pseudonym
PERSON = r"^p_[0-9a-f]{32}$"  # a person's pseudonym
PLATFORM = r"^(?:FED|HUB)-[A-Z0-9][A-Z0-9-]{0,59}$"  # a federated platform's code, its DCI sender id
DEPARTMENT = r"^[A-Z0-9][A-Z0-9-]{1,63}$"  # a department's code, e.g. MZ-210302 (fullmatch: "$" admits a final newline)


def time_prefix(now_ns: int | None = None) -> str:
    """12 hex digits that grow with time: the milliseconds since the epoch (till the year 10889).

    An id that starts with it sorts after every id made before it, so the rows a batch inserts land at the end of
    each index keyed by such ids, on a few pages, instead of on a page anywhere in the index for each of them: with
    random ids, a re-check of 1,000 households dirtied some 11,000 pages of each such index, and SQLite writes every
    dirty page at each commit and again at the checkpoint (a 100,000-person re-check wrote 26 GB to the store's files,
    15 GB with these ids; the next re-check on the grown store 33 GB in 609 s against 16 GB in 460 s)."""
    return f"{(time.time_ns() if now_ns is None else now_ns) // 1_000_000:012x}"


def ordered_id(now_ns: int | None = None) -> str:
    """A new 32-hex id (the shape HEX32) that sorts by when it was made (``time_prefix``), with 80 random bits after
    it: the shape of UUIDv7, without its version digits."""
    return time_prefix(now_ns) + secrets.token_hex(10)
