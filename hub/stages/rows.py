"""One pass over a re-check batch's rows: while ``one_pass()`` is open, the canonical rows a stage has in hand (the
fetch's, as they came; validation's, once decrypted) are kept in memory by (batch id, row number) and handed to the
stages after it (validation, the checks across sources, publication), so each row is decrypted and parsed at most
once per re-check batch instead of once per stage. Outside it, or for a row not kept (a batch fetched by an earlier,
killed run), ``row_of`` decrypts the stored row as before: the store stays the only truth, the memory only spares
the work. Rows are handed out as copies, so no stage sees another's changes."""

from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from typing import Iterator

from core.store import aad_source_row

_lock = threading.Lock()
_kept: dict[str, dict[int, str | dict]] | None = None  # batch id -> row number -> the row (or its JSON text)
_depth = 0


@contextmanager
def one_pass() -> Iterator[None]:
    """Keep the rows of the batches handled inside, for the stages after; forget them all at the end."""
    global _kept, _depth
    with _lock:
        _depth += 1
        if _kept is None:
            _kept = {}
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if not _depth:
                _kept = None


def keep(batch_id: str, row_no: int, row: str | dict) -> None:
    """Keep one row (the canonical row, a copy of it, or its JSON text as stored) while a pass is open; nothing
    otherwise."""
    kept = _kept
    if kept is not None:
        row = dict(row) if isinstance(row, dict) else row
        with _lock:
            kept.setdefault(batch_id, {})[row_no] = row


def row_of(batch_id: str, row_no: int, data_enc: str, keys) -> dict:
    """The canonical row ``row_no`` of batch ``batch_id``: the one kept in this pass, else decrypted from
    ``data_enc`` (and kept)."""
    kept = _kept
    got = kept.get(batch_id, {}).get(row_no) if kept is not None else None
    if got is None:
        got = json.loads(keys.decrypt(data_enc, aad=aad_source_row(batch_id, row_no)))
        keep(batch_id, row_no, got)
    elif isinstance(got, str):
        got = json.loads(got)
        keep(batch_id, row_no, got)
    return dict(got)
