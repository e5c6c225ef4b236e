"""Decisions recorded: the one way the hub asks the consent gate and keeps what it answered.

Every fetch path (the pipeline's fetches, the re-ask before each agency call, a federated platform's search and
its notifications) asks here. ``ask`` puts each of the gate's decisions for an asker's persons and sources at one
moment in the store (``consent_decisions``) and in the ledger (``consent.allowed`` / ``consent.refused``), in the
caller's transaction, and returns them; ``DecisionBatch`` does the same for many askers at one moment, stored
together (one statement for the rows, one for the ledger entries). ``ConsentWatch`` asks again at the moment of
each agency call, should consent be withdrawn after the decisions were made.

Only consent.gate makes an Allow; this module never does, it only passes on what the gate decided.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from consent import ledger
from consent.authorizations import revoked_since, views, watermark
from consent.gate import Allow, AuthorizationView, Decision, Refuse, decide
from core.store import ConsentDecision, Request, Revocation, engine, session, utcnow


@dataclass(frozen=True)
class Asker:
    """Who asks the gate: a request (its decisions are recorded under it), the request whose authorizations it
    runs under (a re-check runs under its application's), and the request's department and purpose."""

    request_id: str
    root_id: str
    purpose: str
    department: str

    @classmethod
    def of(cls, req: Request) -> Asker:
        return cls(req.id, req.parent_id or req.id, req.purpose, req.department)


@dataclass(frozen=True)
class Decisions:
    """The gate's decisions for one asker at one moment, in the order asked (source by source, then person by
    person), each recorded."""

    made: tuple[Decision, ...]

    def __iter__(self) -> Iterator[Decision]:
        return iter(self.made)

    def __len__(self) -> int:
        return len(self.made)

    @property
    def allows(self) -> list[Allow]:
        return [d for d in self.made if isinstance(d, Allow)]

    @property
    def refusals(self) -> list[Refuse]:
        return [d for d in self.made if not isinstance(d, Allow)]


class DecisionBatch:
    """Decisions for many askers at one moment, recorded together in the caller's transaction: the store's rows in
    one statement, the ledger entries in one more. Use it as ``with batch(s, moment) as decisions``, which records
    what was decided when the block ends without an error."""

    def __init__(self, s: Session, moment: dt.datetime):
        self.s, self.moment = s, moment
        self._rows: list[dict] = []
        self._entries: list[tuple[str, dict]] = []

    def ask(self, asker: Asker, persons: Iterable[str], sources: str | Iterable[str], *,
            authorizations: Sequence[AuthorizationView] | None = None, again: bool = False) -> Decisions:
        """The gate's decision for each of ``persons`` (person_refs) and each of ``sources``, under
        ``authorizations`` (by default the asker's, consent.authorizations.views); ``again`` marks the ledger
        entries of a person asked again before a call. Recorded by ``record`` (or at the end of the block)."""
        if authorizations is None:
            authorizations = views(self.s, asker.request_id)
        persons = list(persons)
        made = []
        for source in ([sources] if isinstance(sources, str) else sources):
            for ref in persons:
                d = decide(ref, source, asker.purpose, asker.department, self.moment, authorizations)
                made.append(d)
                self._rows.append({"request_id": asker.request_id, "person_ref": ref, "source": source,
                                   "purpose": asker.purpose, "decided_at": self.moment, "allowed": d.allowed,
                                   "reason": d.reason.value, "authorization_id": d.authorization_id})
                self._entries.append((
                    "consent.allowed" if d.allowed else "consent.refused",
                    {"request_id": asker.request_id, "person_ref": ref, "source": source, "purpose": asker.purpose,
                     "reason": d.reason.value, "authorization_id": d.authorization_id,
                     "moment": self.moment.isoformat(), **({"asked_again": True} if again else {})},
                ))
        return Decisions(tuple(made))

    def record(self) -> None:
        """Store and log every decision not recorded yet."""
        rows, entries = self._rows, self._entries
        self._rows, self._entries = [], []
        if rows:
            self.s.execute(ConsentDecision.__table__.insert(), rows)
        ledger.append_many(self.s, entries, at=self.moment)  # one statement for all of them


@contextmanager
def batch(s: Session, moment: dt.datetime) -> Iterator[DecisionBatch]:
    """A DecisionBatch whose decisions are recorded when the block ends (not when it raises: the caller's
    transaction rolls back then)."""
    decisions = DecisionBatch(s, moment)
    yield decisions
    decisions.record()


def ask(s: Session, asker: Asker, persons: Iterable[str], sources: str | Iterable[str], moment: dt.datetime, *,
        authorizations: Sequence[AuthorizationView] | None = None, again: bool = False) -> Decisions:
    """Ask the gate for each of ``persons`` (person_refs) and ``sources``, for the asker's purpose and department,
    at ``moment``; record each decision (store and ledger) in the caller's transaction; return them."""
    with batch(s, moment) as decisions:
        return decisions.ask(asker, persons, sources, authorizations=authorizations, again=again)


class ConsentWatch:
    """The gate at the moment of each agency call. A fetch's decisions are made before its calls, with the consent
    watermark of that moment (consent.authorizations.watermark: the latest revocation's id). Before each call the
    watermark is read again, one indexed read; only when a revocation landed since are the persons of that call
    decided again (each new decision recorded and logged like the first), and a person no longer allowed is named
    in no further call. After the calls, in the transaction that stores their answers, ``withdrawn`` does the same
    for consent withdrawn while a call was in flight: that member's answers are kept out of the record."""

    def __init__(self, mark: int):
        self.mark = mark

    def _redecide(self, s: Session, asker: Asker, allows: list[Allow]) -> list[Allow] | None:
        """The allows that still hold, the new decisions stored and logged; None when no revocation touched the
        request since the watch began (nothing decided again)."""
        _, touched = revoked_since(s, self.mark)
        if asker.root_id not in touched:
            return None
        if not allows:
            return []
        return ask(s, asker, [a.person_ref for a in allows], allows[0].source, utcnow(), again=True).allows

    def changed(self) -> bool:
        """Whether a revocation landed since the watch began (one indexed read): a batch exchange asks this once
        for all its households before a call, and ``still_allowed`` for each only when it did."""
        with engine().connect() as c:
            return (c.scalar(select(func.max(Revocation.id))) or 0) > self.mark

    def still_allowed(self, asker: Asker, allows: list[Allow], *, changed: bool | None = None) -> list[Allow]:
        """Before a call: the allows that hold now (``changed``: ``changed()`` read already for this call)."""
        if not (self.changed() if changed is None else changed):
            return allows
        with session() as s:
            kept = self._redecide(s, asker, allows)
        return allows if kept is None else kept

    def withdrawn(self, s: Session, asker: Asker, allows: list[Allow]) -> set[str]:
        """After the calls, inside the transaction that stores their answers: the persons whose consent was
        withdrawn while a call was in flight."""
        if watermark(s) <= self.mark:
            return set()
        kept = self._redecide(s, asker, allows)
        return set() if kept is None else {a.person_ref for a in allows} - {a.person_ref for a in kept}
