"""精准评估: who is missed, who is over-assisted, and how the city's assistance moves.

The city's plan asks the platform to avoid "应救未救和过度救助". The hub holds both halves: every household's
record (its screening under the standards) and every grant the departments report (幸福清单). A review, as of a date
and under the standards in force then, puts them side by side:

- ``missed`` (应救未救): the household's latest record screens **yes** for a programme and no grant for it is active;
  ``review``: it screens **needs_review** and no grant is active (kept apart: people must look first);
- ``over`` (过度救助): a grant is active and the latest record screens **no**, with the reason codes of the "no" and
  the record version (a re-check's, mostly) since which it has;
- movement per month and county: grants started and ended, households re-checked, material changes, households moved
  between dibao, low-income and none (by their active grants at each month's end); coverage (recipients per 1,000
  residents) and the share of re-checks that changed an answer.

``review`` is a pure function over compact views of records and grants (``Household``, ``Grant``), tested without a
store or Airflow. ``run_review`` reads the store, keeps each run (counts, pseudonyms, department and reason codes: no
personal data) with a ledger entry, and tells the departments whose households entered a list through the outbox
(hub.stages.notify, and the DCI subscriptions of platforms). It never ends assistance: people decide.

A standards change shows its effect before it is in force: ``what_if`` screens the records already held under another
standards version (no agency call) and counts who would enter or leave each programme, per county.

Past versions are screened again under the standards of the review when those are not the ones they were published
under (hub.rules.unify.assess over the record's own members, facts and completeness), so "since when" is read under
one set of standards.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from consent import ledger
from core.settings import settings
from core.store import (
    AssistanceGrant,
    HouseholdRecord,
    Notification,
    Request,
    ReviewEntry,
    ReviewRun,
    session,
    utcnow,
)
from hub.rules.standards import RULES, Rules, UnknownCounty, rules_at
from hub.rules.unify import assess, income_window, material_changes
from hub.stages.records import decrypt_content
from schemas.codes import ANSHAN_DIVISIONS
from schemas.vocabulary import ASSISTANCE_PROGRAMMES, NO, REVIEW, YES

LISTS = ("missed", "review", "over")
NOTIFIED = ("missed", "over")  # the two lists a department is told of
# reason codes that say a test was passed: never a reason for "no"
PASSING = frozenset({"ASSET_TEST_PASSED", "INCOME_BELOW_STANDARD", "INCOME_IN_LOW_INCOME_BAND",
                     "NO_INCOME_NO_SUPPORTER", "SUPPORTERS_NOT_IN_SOURCES"})
STANDINGS = ("dibao", "low_income", "none")  # what a household receives, for the movement between them
UNKNOWN_COUNTY = "other"


class UnknownStandards(LookupError):
    """No standards version of that name."""


# -- the views the review works on (no personal data) ----------------------------------------------------------------
@dataclass(frozen=True)
class Version:
    """One published version of a household's record, as the review needs it."""

    version: int
    as_of: dt.date
    recheck: bool  # published by a re-check
    answers: dict[str, str]  # programme -> yes | no | needs_review
    reasons: dict[str, tuple[str, ...]]  # programme -> reason codes
    changed: bool = False  # a material change from the version before


@dataclass(frozen=True)
class Household:
    household_ref: str
    county: str | None
    members: int  # members counted
    versions: tuple[Version, ...]  # by version; the last is the latest
    departments: tuple[str, ...] = ()  # departments with a request for the household

    @property
    def latest(self) -> Version:
        return self.versions[-1]


@dataclass(frozen=True)
class Grant:
    household_ref: str
    department: str
    programme: str
    granted_from: dt.date
    granted_until: dt.date | None = None

    def active(self, day: dt.date) -> bool:
        return self.granted_from <= day and (self.granted_until is None or day <= self.granted_until)


@dataclass(frozen=True)
class Entry:
    kind: str  # missed | review | over
    household_ref: str
    programme: str
    county: str | None
    departments: tuple[str, ...]
    reasons: tuple[str, ...]
    since: dt.date
    since_version: int
    record_version: int

    @property
    def key(self) -> tuple[str, str, str]:
        return self.kind, self.household_ref, self.programme


@dataclass
class Review:
    as_of: dt.date
    rules: str
    households: int
    entries: list[Entry] = field(default_factory=list)
    movement: list[dict] = field(default_factory=list)  # per month and county
    funnel: dict = field(default_factory=dict)  # programme -> answer -> granted|not_granted -> households
    coverage: dict = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return {k: sum(e.kind == k for e in self.entries) for k in LISTS}

    def summary(self) -> dict:
        """What a run keeps besides its entries: counts only."""
        per_county: dict[str, Counter] = defaultdict(Counter)
        for e in self.entries:
            per_county[e.county or UNKNOWN_COUNTY][e.kind] += 1
        return {"counts": self.counts(), "per_county": {c: dict(v) for c, v in sorted(per_county.items())},
                "movement": self.movement, "funnel": self.funnel, "coverage": self.coverage}


# -- the review, a pure function -----------------------------------------------------------------------------------
def _since(versions: tuple[Version, ...], programme: str) -> Version:
    """The first version of the latest unbroken run of versions with the latest one's answer."""
    answer = versions[-1].answers.get(programme)
    first = versions[-1]
    for v in reversed(versions):
        if v.answers.get(programme) != answer:
            break
        first = v
    return first


def _month(day: dt.date) -> str:
    return day.strftime("%Y-%m")


def _month_end(month: str) -> dt.date:
    y, m = int(month[:4]), int(month[5:])
    first_next = dt.date(y + (m == 12), m % 12 + 1, 1)
    return first_next - dt.timedelta(days=1)


def _months(first: dt.date, last: dt.date) -> list[str]:
    out, y, m = [], first.year, first.month
    while (y, m) <= (last.year, last.month):
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def _standing(grants: list[Grant], day: dt.date) -> str:
    active = {g.programme for g in grants if g.active(day)}
    return next((p for p in STANDINGS[:-1] if p in active), "none")


def review(households: Iterable[Household], grants: Iterable[Grant], as_of: dt.date, *, rules: str,
           residents: int | None = None, months: int = 24) -> Review:
    """The review as of ``as_of``: each household's latest version (the caller gives only versions as of that day)
    against the grants active that day; movement over the ``months`` months up to ``as_of``."""
    by_household: dict[str, list[Grant]] = defaultdict(list)
    for g in grants:
        if g.granted_from <= as_of:
            by_household[g.household_ref].append(g)
    out = Review(as_of=as_of, rules=rules, households=0)
    funnel = {p: {a: {"granted": 0, "not_granted": 0} for a in (YES, REVIEW, NO)} for p in ASSISTANCE_PROGRAMMES}
    month_list = _months(dt.date(as_of.year - (months - 1) // 12 - 1, 1, 1), as_of)[-months:]
    first_month = month_list[0]
    moves: dict[tuple[str, str], Counter] = defaultdict(Counter)  # (month, county) -> counts
    recipients = recipient_households = 0
    county_of: dict[str, str] = {}
    for hh in households:
        out.households += 1
        county = hh.county if hh.county in ANSHAN_DIVISIONS else UNKNOWN_COUNTY
        county_of[hh.household_ref] = county
        latest = hh.latest
        held = by_household.get(hh.household_ref, [])
        receives = False
        for p in ASSISTANCE_PROGRAMMES:
            active = sorted({g.department for g in held if g.programme == p and g.active(as_of)})
            answer = latest.answers.get(p)
            if answer in funnel[p]:
                funnel[p][answer]["granted" if active else "not_granted"] += 1
            receives = receives or bool(active)
            kind = ("over" if answer == NO else None) if active else \
                {YES: "missed", REVIEW: "review"}.get(answer)
            if kind is None:
                continue
            first = _since(hh.versions, p)
            reasons = latest.reasons.get(p, ())
            if kind == "over":
                reasons = tuple(r for r in reasons if r not in PASSING)
            out.entries.append(Entry(kind, hh.household_ref, p, hh.county, tuple(active) if kind == "over" else
                                     tuple(sorted(set(hh.departments))), reasons, first.as_of, first.version,
                                     latest.version))
        if receives:
            recipients += hh.members
            recipient_households += 1
        previous = None
        for v in hh.versions:
            m = _month(v.as_of)
            if v.recheck and m >= first_month:
                c = moves[(m, county)]
                c["rechecked"] += 1
                c["material_changes"] += v.changed
                c["answer_changed"] += previous is not None and any(
                    previous.answers.get(p) != v.answers.get(p) for p in ASSISTANCE_PROGRAMMES)
            previous = v
    for ref, held in by_household.items():
        county = county_of.get(ref, UNKNOWN_COUNTY)
        for g in held:
            if _month(g.granted_from) >= first_month:
                moves[(_month(g.granted_from), county)]["grants_started"] += 1
            if g.granted_until is not None and g.granted_until <= as_of and _month(g.granted_until) >= first_month:
                moves[(_month(g.granted_until), county)]["grants_ended"] += 1
        before = None
        for m in month_list:
            end = min(_month_end(m), as_of)
            now = _standing(held, end)
            if before is not None and now != before:
                moves[(m, county)][f"moved:{before}->{now}"] += 1
            before = now
    out.movement = [{"month": m, "county": c, **dict(sorted(v.items()))} for (m, c), v in sorted(moves.items())]
    out.funnel = funnel
    rechecks = sum(r.get("rechecked", 0) for r in out.movement)
    changed = sum(r.get("answer_changed", 0) for r in out.movement)
    out.coverage = {"recipient_households": recipient_households, "recipients": recipients, "residents": residents,
                    "per_1000": round(1000 * recipients / residents, 2) if residents else None,
                    "rechecks": rechecks, "rechecks_changed": changed,
                    "rechecks_changed_share": round(changed / rechecks, 4) if rechecks else None}
    out.entries.sort(key=lambda e: (LISTS.index(e.kind), e.programme, e.since, e.household_ref))
    return out


# -- screening a record under other standards ------------------------------------------------------------------------
def standards(version: str) -> Rules:
    found = next((r for r in RULES if r.version == version), None)
    if found is None:
        raise UnknownStandards(f"no standards version {version!r}; known: {', '.join(r.version for r in RULES)}")
    return found


def screening(content: dict, rules: Rules) -> dict[str, dict]:
    """The record's screening under ``rules``: as published when those are its rules, else assessed again from the
    record's own members, facts, completeness and discrepancies."""
    assessment = content.get("assessment") or {}
    if assessment.get("rules") == rules.version:
        return assessment.get("screening") or {}
    division = content.get("division") or {}
    completeness = {k: (v or {}).get("status") for k, v in (content.get("sources") or {}).items()}
    facts = content.get("facts") or {}
    try:
        window = income_window(facts, dt.date.fromisoformat(content["as_of"][:10]), rules.income_months)
        return assess(content["members"], facts, window, rules, division.get("code"), division.get("area_type"),
                      completeness, content.get("discrepancies") or [])["screening"]
    except (UnknownCounty, KeyError):
        return assessment.get("screening") or {}


def version_of(record: HouseholdRecord, content: dict, rules: Rules, recheck: bool,
               previous: dict | None) -> Version:
    screened = screening(content, rules)
    return Version(
        version=record.version, as_of=record.as_of.date(), recheck=recheck,
        answers={p: (screened.get(p) or {}).get("answer") for p in ASSISTANCE_PROGRAMMES},
        reasons={p: tuple(r.get("code") for r in (screened.get(p) or {}).get("reasons") or [] if r.get("code"))
                 for p in ASSISTANCE_PROGRAMMES},
        changed=previous is not None and bool(material_changes(previous, content)))


# -- reading the store -------------------------------------------------------------------------------------------------
def _day_end(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=dt.timezone.utc)


def _records(as_of: dt.date, *, history: bool = True) -> Iterator[tuple[list[tuple[HouseholdRecord, dict, bool]],
                                                                       tuple[str, ...]]]:
    """Each household with a record published by the end of ``as_of`` describing it no later than that day: its
    versions (record, content, published by a re-check?) in order, only the latest when ``history`` is false, and the
    departments with a request for it. Streamed household by household."""
    end = _day_end(as_of)
    with session() as s:
        departments: dict[str, set[str]] = defaultdict(set)
        for ref, dept in s.execute(select(Request.household_ref, Request.department).distinct()
                                   .where(Request.household_ref.is_not(None))):
            departments[ref].add(dept)
        held = (HouseholdRecord.recorded_at < end, HouseholdRecord.as_of < end)
        q = (select(HouseholdRecord, Request.kind).join(Request, Request.id == HouseholdRecord.request_id)
             .where(*held).order_by(HouseholdRecord.household_ref, HouseholdRecord.version))
        if not history:
            latest = (select(HouseholdRecord.household_ref, func.max(HouseholdRecord.version).label("v"))
                      .where(*held).group_by(HouseholdRecord.household_ref).subquery())
            q = q.join(latest, (latest.c.household_ref == HouseholdRecord.household_ref)
                       & (latest.c.v == HouseholdRecord.version))
        current: list[tuple[HouseholdRecord, dict, bool]] = []
        for record, kind in s.execute(q.execution_options(yield_per=500)):
            if current and current[-1][0].household_ref != record.household_ref:
                yield current, tuple(sorted(departments.get(current[0][0].household_ref, ())))
                current = []
            current.append((record, decrypt_content(record), kind == "recheck"))
        if current:
            yield current, tuple(sorted(departments.get(current[0][0].household_ref, ())))


def household_of(versions: list[tuple[HouseholdRecord, dict, bool]], departments: tuple[str, ...],
                 rules: Rules) -> Household:
    out, previous = [], None
    for record, content, recheck in versions:
        out.append(version_of(record, content, rules, recheck, previous))
        previous = content
    record, content, _ = versions[-1]
    return Household(record.household_ref, (content.get("division") or {}).get("code"),
                     int((content.get("assessment") or {}).get("members_counted") or 0), tuple(out), departments)


def load_households(as_of: dt.date, rules: Rules) -> Iterator[Household]:
    """Every household with a record by then (``_records``), its versions screened under ``rules``."""
    for versions, departments in _records(as_of):
        yield household_of(versions, departments, rules)


def load_grants(as_of: dt.date) -> list[Grant]:
    with session() as s:
        return [Grant(g.household_ref, g.department, g.programme, g.granted_from, g.granted_until)
                for g in s.scalars(select(AssistanceGrant).where(AssistanceGrant.granted_from <= as_of)
                                   .order_by(AssistanceGrant.granted_from, AssistanceGrant.id))]


def _state(as_of: dt.date) -> str:
    """What a run as of that day reads, in brief: a second run over the same records and grants is the same run."""
    end = _day_end(as_of)
    with session() as s:
        records = s.execute(select(func.count(), func.max(HouseholdRecord.id))
                            .where(HouseholdRecord.recorded_at < end)).one()
        grants = s.execute(select(func.count(), func.max(AssistanceGrant.reported_at))).one()
    return f"{as_of.isoformat()}|{tuple(records)}|{grants[0]}|{grants[1]}"


def run_review(as_of: dt.date, *, residents: int | None = None) -> dict:
    """Review as of ``as_of`` under the standards in force that day; keep the run, its entries and a ledger entry,
    and put a notification in the outbox for each household that entered the missed or over list. Running again over
    the same records and grants returns the run already kept. Returns counts only (what a DAG task may pass on)."""
    rules = rules_at(as_of)
    state = f"{rules.version}:{residents}:{_state(as_of)}"
    with session() as s:
        previous = _latest_run(s, as_of)
        if previous is not None and previous.summary.get("state") == state:
            return _counts(previous, existing=True)
        previous_id = previous.id if previous is not None else None
    # the same records and grants after the same run give the same id: two processes at once write one run
    run_id = uuid.uuid5(uuid.NAMESPACE_URL, f"hub:review:{state}:{previous_id}").hex
    result = review(load_households(as_of, rules), load_grants(as_of), as_of, rules=rules.version,
                    residents=residents)
    now = utcnow()
    try:
        return _keep(run_id, as_of, rules.version, state, previous_id, result, now)
    except IntegrityError:  # another process kept this very run first
        with session() as s:
            return _counts(s.get(ReviewRun, run_id), existing=True)


def _latest_run(s, as_of: dt.date) -> ReviewRun | None:
    """The run a new one as of ``as_of`` follows: the last kept for that day or an earlier one."""
    return s.scalars(select(ReviewRun).where(ReviewRun.as_of <= as_of)
                     .order_by(ReviewRun.as_of.desc(), ReviewRun.created_at.desc()).limit(1)).first()


def _counts(run: ReviewRun, *, existing: bool) -> dict:
    return {"run_id": run.id, "as_of": run.as_of.isoformat(), "rules": run.rules, "households": run.households,
            **run.summary["counts"], "new": run.summary.get("new", 0), "existing": existing}


def _keep(run_id: str, as_of: dt.date, rules: str, state: str, previous: str | None, result: Review,
          now: dt.datetime) -> dict:
    with session() as s:
        before = set() if previous is None else {
            (k, h, p) for k, h, p in s.execute(select(ReviewEntry.kind, ReviewEntry.household_ref,
                                                      ReviewEntry.programme).where(ReviewEntry.run_id == previous))}
        new = [e for e in result.entries if e.key not in before]
        summary = {**result.summary(), "new": len(new), "previous_run": previous, "state": state}
        s.add(ReviewRun(id=run_id, as_of=as_of, rules=rules, households=result.households,
                        summary=summary, created_at=now))
        s.flush()
        if result.entries:
            s.execute(insert(ReviewEntry), [
                {"run_id": run_id, "kind": e.kind, "household_ref": e.household_ref, "programme": e.programme,
                 "county": e.county, "departments": list(e.departments), "reasons": list(e.reasons),
                 "since": e.since, "since_version": e.since_version, "record_version": e.record_version,
                 "new": e.key not in before} for e in result.entries])
        flagged: dict[str, list[Entry]] = defaultdict(list)
        for e in new:
            if e.kind in NOTIFIED:
                flagged[e.household_ref].append(e)
        for ref, entries in sorted(flagged.items()):
            s.add(Notification(
                household_ref=ref, record_id=None, version=entries[0].record_version, kind="review.flagged",
                idempotency_key=hashlib.sha256(f"{run_id}:{ref}".encode()).hexdigest(),
                payload={"run_id": run_id, "changed": [f"review.{e.kind}.{e.programme}" for e in entries],
                         "departments": sorted({d for e in entries for d in e.departments})},
                created_at=now))
        ledger.append(s, "review.completed", {"run_id": run_id, "as_of": as_of.isoformat(), "rules": rules,
                                              "households": result.households, **result.counts(), "new": len(new),
                                              "notified": len(flagged)})
    return {"run_id": run_id, "as_of": as_of.isoformat(), "rules": rules, "households": result.households,
            **result.counts(), "new": len(new), "existing": False}


def what_if(version: str, as_of: dt.date) -> dict:
    """How many households would enter or leave each programme (screen yes where they do not now, or stop screening
    yes) if standards ``version`` were in force on ``as_of``, per county, from the records already held."""
    proposed, current = standards(version), rules_at(as_of)
    table: dict[str, dict[str, Counter]] = {p: defaultdict(Counter) for p in ASSISTANCE_PROGRAMMES}
    households = 0
    for versions, departments in _records(as_of, history=False):
        households += 1
        hh = household_of(versions, departments, current)
        county = hh.county if hh.county in ANSHAN_DIVISIONS else UNKNOWN_COUNTY
        after = screening(versions[-1][1], proposed)
        for p in ASSISTANCE_PROGRAMMES:
            was, now = hh.latest.answers.get(p) == YES, (after.get(p) or {}).get("answer") == YES
            if now and not was:
                table[p][county]["enter"] += 1
            elif was and not now:
                table[p][county]["leave"] += 1
    return {"as_of": as_of.isoformat(), "current": current.version, "proposed": proposed.version,
            "households": households,
            "programmes": {p: {c: dict(v) for c, v in sorted(by.items())} for p, by in table.items()}}


BEIJING = dt.timezone(dt.timedelta(hours=8), "CST")


def review_stage(as_of: str | None, moment: dt.datetime) -> dict:
    """The DAG's task: the day given (``YYYY-MM-DD``), else the calendar day in Beijing of the run's moment; the
    residents from HUB_REVIEW_RESIDENTS."""
    day = dt.date.fromisoformat(as_of) if as_of else moment.astimezone(BEIJING).date()
    return run_review(day, residents=settings().review_residents)
