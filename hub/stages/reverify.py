"""Re-checks of current recipients (动态管理): which households are due, and re-checking them with the same stages.

A current recipient is a household to which the department reports an active grant for the application's purpose
(``POST /v1/assistance``). Where the department has reported no grant for it at all, the hub falls back on
eligibility: the household's latest record for the application found it eligible for the programme of the purpose
(screening "yes" or "needs_review"; purposes without a screened programme are then not re-checked). A recipient is
due when its authorization is valid now and the last check is at least the authorization's ``recheck_interval_days``
old.

A re-check is a request of kind ``recheck`` whose parent is the application: it names the same members and
runs under the application's authorizations, so the consent gate decides every fetch again, now (a revoked or
expired authorization stops it). Its id is derived from the application and the pipeline run, so a task that is
retried resumes its re-checks instead of starting new ones.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid

from sqlalchemy import func, select

from consent import ledger
from consent.authorizations import not_revoked
from core.crypto import keyring
from core.store import (
    AssistanceGrant,
    Authorization,
    FetchBatch,
    HouseholdRecord,
    Notification,
    Request,
    RequestMember,
    aad_member,
    session,
    utcnow,
)
from hub.stages import pipeline  # by module: its stages are looked up at call time (tests stand in for them)
from hub.stages.records import decrypt_content
from schemas.vocabulary import PROGRAMME_OF_PURPOSE, REVIEW, YES

log = logging.getLogger(__name__)

RECIPIENT_ANSWERS = (YES, REVIEW)


def due_recipients(*, now: dt.datetime | None = None, limit: int | None = None, every: bool = False) -> list[str]:
    """Ids of the applications whose households are due for a re-check, oldest check first; with ``every``, all
    current recipients whose authorization is valid, however recent their last check (e.g. after the standards
    changed). Reads columns, not whole records, so a city's recipients fit in little memory; a record's content is
    decrypted only when its department never reported a grant. ``now`` is the moment of the selection (a DAG run's
    logical date; by default the clock's)."""
    now = now or utcnow()
    latest: dict[tuple[str, str, str], tuple[int, dt.datetime, str]] = {}
    with session() as s:
        requests = {rid: (parent, department, purpose) for rid, parent, department, purpose in s.execute(
            select(Request.id, Request.parent_id, Request.department, Request.purpose))}
        for record_id, household_ref, recorded_at, request_id in s.execute(
                select(HouseholdRecord.id, HouseholdRecord.household_ref, HouseholdRecord.recorded_at,
                       HouseholdRecord.request_id).order_by(HouseholdRecord.recorded_at)):
            parent, department, purpose = requests[request_id]
            root = parent or request_id
            _, root_department, root_purpose = requests.get(root, requests[request_id])
            latest[(household_ref, root_department, root_purpose)] = (record_id, recorded_at, root)
        auths: dict[str, list[tuple]] = {}
        for request_id, valid_from, valid_until, interval in s.execute(
                select(Authorization.request_id, Authorization.valid_from, Authorization.valid_until,
                       Authorization.recheck_interval_days).where(not_revoked(Authorization.id, now))):
            auths.setdefault(request_id, []).append((valid_from, valid_until, interval))
        due = []
        for (household_ref, department, purpose), (record_id, recorded_at, root) in latest.items():
            valid = [a for a in auths.get(root, []) if a[0] <= now < a[1]]
            if not valid:
                continue
            interval = dt.timedelta(days=min(a[2] for a in valid))
            if now - recorded_at < interval and not every:
                continue
            granted = active_grant(s, household_ref, department, purpose, now.date())
            if granted is None and purpose in PROGRAMME_OF_PURPOSE:  # no grant ever reported: eligibility decides
                screening = decrypt_content(s.get(HouseholdRecord, record_id))["assessment"]["screening"]
                granted = screening.get(PROGRAMME_OF_PURPOSE[purpose], {}).get("answer") in RECIPIENT_ANSWERS
            if granted:
                due.append((recorded_at, root))
    due.sort()
    return [rid for _, rid in due][:limit]


def _resealed(keys, member: RequestMember, column: str, from_request: str, to_request: str) -> str:
    """A member's encrypted value, sealed again for the same member's row in another request."""
    plain = keys.decrypt(getattr(member, column), aad=aad_member(from_request, column, member.person_ref))
    return keys.encrypt(plain, aad=aad_member(to_request, column, member.person_ref))


def start_recheck(application_id: str, run_id: str) -> str:
    """The re-check request of ``application_id`` for pipeline run ``run_id`` (created once, then found again)."""
    return start_rechecks([application_id], run_id)[0]


def start_rechecks(application_ids: list[str], run_id: str) -> list[str]:
    """``start_recheck`` for many applications in one transaction; ids in the order given."""
    keys = keyring()
    ids = [uuid.uuid5(uuid.NAMESPACE_URL, f"hub:recheck:{a}:{run_id}").hex for a in application_ids]
    with session() as s:
        existing = set(s.scalars(select(Request.id).where(Request.id.in_(ids))))
        todo = {a: r for a, r in zip(application_ids, ids) if r not in existing}
        apps = {a.id: a for a in s.scalars(select(Request).where(Request.id.in_(list(todo))))}
        for app_id in todo:
            if app_id not in apps:
                raise LookupError(f"no request {app_id}")
        members: dict[str, list[RequestMember]] = {}
        for m in s.scalars(select(RequestMember).where(RequestMember.request_id.in_(list(todo)))
                           .order_by(RequestMember.id)):
            members.setdefault(m.request_id, []).append(m)
        entries = []
        for app_id, recheck_id in todo.items():
            app = apps[app_id]
            s.add(Request(id=recheck_id, department=app.department, purpose=app.purpose, case_ref=app.case_ref,
                          sources=list(app.sources), status="received", kind="recheck", parent_id=app.id))
            for m in members.get(app_id, []):
                s.add(RequestMember(request_id=recheck_id, person_ref=m.person_ref, relation=m.relation,
                                    id_number_enc=_resealed(keys, m, "id_number_enc", app.id, recheck_id),
                                    name_enc=_resealed(keys, m, "name_enc", app.id, recheck_id)))
            entries.append(("recheck.started", {"request_id": recheck_id, "application_id": app.id, "run_id": run_id}))
        s.flush()
        ledger.append_many(s, entries)
    return ids


def _fetched_at(request_ids: list[str]) -> dict[str, dt.datetime]:
    """When each request's sources were last fetched (requests without a batch are left out)."""
    with session() as s:
        return dict(s.execute(select(FetchBatch.request_id, func.max(FetchBatch.fetched_at))
                              .where(FetchBatch.request_id.in_(request_ids)).group_by(FetchBatch.request_id)).all())


def recheck_batch(application_ids: list[str], *, run_id: str, as_of: dt.datetime | None = None) -> dict:
    """Re-check each application's household through every stage. The households are fetched together
    (``hub.stages.pipeline.fetch_many``: the gate still decides per member, each household's agency calls are its own, made
    concurrently, and the store's work is done in bulk); the batches of all households are validated together, one
    GX run per source, and checked across sources together; then each is published. A household that fails is
    counted and the others go on: if the batch cannot be fetched together, each household is fetched on its own
    (the task log names the re-check, never a person).

    ``as_of`` is the moment the new records describe (the DAG passes its run's logical date); without it, each
    household as its agencies last answered (its latest fetch), so a retried re-check publishes the same record and
    no record's time is read from the clock."""
    out = {"rechecked": 0, "published": 0, "changed": 0, "failed": 0, "refused": 0}
    ready, pending = [], []
    try:
        ready = start_rechecks(application_ids, run_id)
        pending = pipeline.fetch_many(ready)
    except Exception as exc:  # one household's failure must not stop the others: fetch them one by one
        log.warning("re-check batch could not be fetched together (%s); household by household",
                    exc.__class__.__name__)
        ready, pending = [], []
        for app_id in application_ids:
            try:
                recheck_id = start_recheck(app_id, run_id)
                pending += pipeline.fetch_missing(recheck_id)
            except Exception as exc:
                log.warning("re-check of %s failed while fetching: %s", app_id, exc.__class__.__name__)
                out["failed"] += 1
                continue
            ready.append(recheck_id)
    pipeline.validate_batches(pending, run_id=run_id)
    pipeline.cross_check_many(ready, run_id=run_id)  # one GX run for all of them; finish() then finds it done
    fetched_at = {} if as_of is not None else _fetched_at(ready)
    for recheck_id in ready:
        try:
            result = pipeline.finish(recheck_id, run_id, as_of or fetched_at[recheck_id])
        except Exception as exc:
            log.warning("re-check %s failed: %s", recheck_id, exc.__class__.__name__)
            out["failed"] += 1
            continue
        out["rechecked"] += 1
        if result.record_id is None:
            out["refused" if result.status == "refused" else "failed"] += 1
            continue
        out["published"] += 1
        with session() as s:
            note = s.scalars(select(Notification).where(Notification.record_id == result.record_id)).first()
            if note is not None and note.kind == "record.changed" and note.payload.get("changed"):
                out["changed"] += 1
    log.info("re-checked %d households: %s", len(application_ids), out)
    return out


def active_grant(s, household_ref: str, department: str, programme: str, on: dt.date) -> bool | None:
    """Whether the department reports an active grant of ``programme`` on ``on``; None when it never reported one."""
    grants = s.scalars(select(AssistanceGrant).where(AssistanceGrant.household_ref == household_ref,
                                                     AssistanceGrant.department == department,
                                                     AssistanceGrant.programme == programme)).all()
    if not grants:
        return None
    return any(g.granted_from <= on and (g.granted_until is None or on <= g.granted_until) for g in grants)
