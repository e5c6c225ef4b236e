"""A federated platform's subscriptions (DCI subscribe / unsubscribe) and the notifications they bring (notify).

A subscription follows one household's record for one person the platform named, and rests on the platform's own
request in this hub (recorded by an earlier search: the entrustment for the purpose and case in ``authorize``, and
the person's authorization, which the consent gate must allow now for the source ``remote_registry``). Events:
``REGISTER`` (every new version of the record) and ``NewHouseHoldMember`` (versions whose membership changed).
A notification names the household (re-keyed for the platform), the version and the names of what changed, never
a value: the platform searches to read. At every notification the gate decides again; a refused one is not sent.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from connectors import envelope as env
from consent import ledger
from core.store import DciNotification, DciSubscription, Notification, Request
from hub.dci.search import (
    ID_TYPES,
    REG_TYPES,
    Context,
    Reject,
    check_basis,
    check_item,
    gate,
    households_of,
    record_of,
    unauthorized,
)
from schemas.codes import is_valid_id

EVENTS = ("REGISTER", "NewHouseHoldMember")
RECORD_TYPES = ("Group", "Member")


def _details(why: str) -> Reject:
    return Reject("rjct.notify_details.invalid", why)


def subscribe_item(s, ctx: Context, item, seen: set) -> tuple[dict, dict]:
    """(the SubscribeResponse item, its ledger summary) for one subscribe_request item."""
    reference = item.get("reference_id") if isinstance(item, dict) else None
    echo = reference[:99] if isinstance(reference, str) else ""
    summary = {"reference_id": reference if env.safe_ref(reference) else None}
    try:
        check_item(item, reference, seen)
        crit = item.get("subscribe_criteria")
        if not isinstance(crit, dict):
            raise _details("subscribe_criteria: an object")
        if crit.get("reg_event_type") not in EVENTS:
            raise Reject("rjct.notify_types.invalid", f"reg_event_type: one of {', '.join(EVENTS)}")
        if crit.get("notify_record_type") not in RECORD_TYPES:
            raise Reject("rjct.notify_types.invalid", f"notify_record_type: one of {', '.join(RECORD_TYPES)}")
        if crit.get("reg_type", env.REG_TYPE) not in REG_TYPES or crit.get("version", env.VERSION) != env.VERSION:
            raise _details(f"reg_type {env.REG_TYPE}, version {env.VERSION}")
        if crit.get("filter_type", "idtype-value") != "idtype-value":
            raise _details("filter_type: idtype-value (a subscription follows one person's household)")
        flt = crit.get("filter")
        if not isinstance(flt, dict) or flt.get("type") not in ID_TYPES or not isinstance(flt.get("value"), str) \
                or not is_valid_id(flt["value"]):
            raise _details(f"filter: {{type: {ID_TYPES[0]}, value: a resident ID number}}")
        freq = crit.get("frequency")
        if freq is not None and not (isinstance(freq, dict) and set(freq) <= {"start_time", "end_time", "frequency"}
                                     and env.parse_ts(freq.get("start_time")) and env.parse_ts(freq.get("end_time"))
                                     and isinstance(freq.get("frequency"), str) and len(freq["frequency"]) <= 64):
            raise _details("frequency: {start_time, end_time, frequency (a cron expression)}")
        try:
            purpose, case_ref, _ = check_basis(crit, ctx.platform, consent_required=False)
        except Reject as exc:
            raise Reject("rjct.person_id.invalid", exc.message) from None
        summary["purpose"] = purpose
        ref = ctx.keys.pseudonym(flt["value"].upper())
        basis = None
        for req in s.scalars(select(Request).where(Request.department == ctx.platform, Request.kind == "federated",
                                                   Request.purpose == purpose, Request.case_ref == case_ref)):
            allowed, _refused = gate(s, req, [ref], ctx.now)
            if allowed:
                basis = req.id
                break
        if basis is None:
            raise Reject("rjct.person_id.invalid", unauthorized(
                "no request of this platform for that purpose and case names the person with an authorization that "
                "holds now (search first, with the person's consent)").message)
        summary["request_id"], summary["person_ref"] = basis, ref
        household = households_of(s, [ref]).get(ref)
        found = record_of(s, ctx, household) if household else None
        if found is None or not any(m.get("person_ref") == ref for m in found[1].get("members", [])):
            raise Reject("rjct.person_id.invalid", "err.request.not_found: no published record of this hub names "
                         "the person")
        event = crit["reg_event_type"]
        if s.scalars(select(DciSubscription.code).where(
                DciSubscription.client_id == ctx.client_id, DciSubscription.person_ref == ref,
                DciSubscription.purpose == purpose, DciSubscription.reg_event_type == event,
                DciSubscription.status == "subscribe")).first():
            raise Reject("rjct.event.already_subscribed", "this platform follows that household for that event "
                         "already")
        sub = DciSubscription(code=env.new_id(), client_id=ctx.client_id, platform=ctx.platform, request_id=basis,
                              person_ref=ref, household_ref=household, purpose=purpose, reg_event_type=event,
                              notify_record_type=crit["notify_record_type"], frequency=freq, status="subscribe",
                              created_at=ctx.now)
        s.add(sub)
        s.flush()
        ledger.append(s, "dci.subscribed", {"client_id": ctx.client_id, "platform": ctx.platform,
                                            "subscription_code": sub.code, "request_id": basis, "person_ref": ref,
                                            "household_ref": household, "purpose": purpose, "reg_event_type": event})
        info = {"version": env.VERSION, "code": sub.code, "status": "subscribe", "timestamp": env.timestamp(ctx.now),
                "reg_type": env.REG_TYPE, "reg_event_type": event, "notify_record_type": sub.notify_record_type}
        if freq is not None:
            info["frequency"] = freq
        out = {"reference_id": echo, "timestamp": env.timestamp(ctx.now), "status": "succ", "subscriptions": [info]}
        summary.update(status="succ", reason=None, subscription_code=sub.code, household_ref=household)
    except Reject as exc:
        out = {"reference_id": echo, "timestamp": env.timestamp(ctx.now), "status": "rjct",
               "status_reason_code": exc.code, "status_reason_message": exc.message[:999]}
        summary.update(status="rjct", reason=exc.code)
    return out, summary


def unsubscribe(s, ctx: Context, message: dict, correlation_id: str) -> tuple[dict, dict]:
    """(the UnSubscribeResponse, its ledger summary): every code this platform's, active, and then all end; or
    nothing changes."""
    out = {"transaction_id": message["transaction_id"], "correlation_id": correlation_id,
           "timestamp": env.timestamp(ctx.now)}
    codes = message.get("subscription_codes")
    if env.parse_ts(message.get("timestamp")) is None:
        return {**out, "status": "rjct", "status_reason_code": "rjct.timestamp.invalid",
                "status_reason_message": "timestamp: an ISO 8601 date-time with its offset"}, {"status": "rjct"}
    if not isinstance(codes, list) or not 1 <= len(codes) <= 100 or not all(env.safe_ref(c) for c in codes):
        return {**out, "status": "rjct", "status_reason_code": "rjct.subscription_code.invalid",
                "status_reason_message": "subscription_codes: 1 to 100 codes"}, {"status": "rjct"}
    subs = {x.code: x for x in s.scalars(select(DciSubscription).where(DciSubscription.code.in_(codes),
                                                                          DciSubscription.client_id == ctx.client_id))}
    if len(subs) != len(set(codes)):  # another platform's code reads as an unknown one
        return {**out, "status": "rjct", "status_reason_code": "rjct.subscription_code.invalid",
                "status_reason_message": "a subscription code is not one of this platform's"}, {"status": "rjct"}
    if any(x.status != "subscribe" for x in subs.values()):
        return {**out, "status": "rjct", "status_reason_code": "rjct.event.already_unsubscribed",
                "status_reason_message": "a subscription has ended already"}, {"status": "rjct"}
    for x in subs.values():
        x.status, x.unsubscribed_at = "unsubscribe", ctx.now
        ledger.append(s, "dci.unsubscribed", {"client_id": ctx.client_id, "platform": ctx.platform,
                                              "subscription_code": x.code, "household_ref": x.household_ref})
    return {**out, "status": "succ", "subscription_status": [{"code": c, "status": "unsubscribe"}
                                                              for c in dict.fromkeys(codes)]}, \
        {"status": "succ", "codes": sorted(subs)}


# -- notifications -----------------------------------------------------------------------------------------------
def fan_out(s, now: dt.datetime) -> int:
    """A pending DCI notification for each record event of a followed household since its subscription began."""
    done = {(n.subscription_code, n.notification_id) for n in s.scalars(select(DciNotification))}
    created = 0
    for sub in s.scalars(select(DciSubscription).where(DciSubscription.status == "subscribe")):
        for note in s.scalars(select(Notification).where(Notification.household_ref == sub.household_ref,
                                                         Notification.created_at >= sub.created_at)
                              .order_by(Notification.id)):
            if (sub.code, note.id) in done:
                continue
            if sub.reg_event_type == "NewHouseHoldMember" and "members" not in (note.payload.get("changed") or []):
                continue
            s.add(DciNotification(subscription_code=sub.code, notification_id=note.id, next_attempt_at=now,
                                  created_at=now))
            created += 1
    return created


def notify_message(sub: DciSubscription, note: Notification, delivery_id: int, scoped, now: dt.datetime) -> dict:
    """The NotifyEventRequest of one event: the household (re-keyed for the platform), the version and the names
    of what changed."""
    record = {"@type": sub.notify_record_type if sub.notify_record_type == "Group" else "Group",
              "group_identifier": [{"@type": "Identifier", "identifier_type": "PlatformPseudonym",
                                    "identifier_value": scoped(sub.household_ref)}],
              "subscription_code": sub.code, "event": note.kind, "version": note.version,
              "previous_version": note.payload.get("previous_version"),
              "changed": [c for c in note.payload.get("changed") or [] if isinstance(c, str)],
              "recorded_at": env.timestamp(note.created_at)}
    if sub.notify_record_type == "Member":
        record["member_list"] = [{"@type": "Member", "member_identifier": [{
            "@type": "Identifier", "identifier_type": "PlatformPseudonym",
            "identifier_value": scoped(sub.person_ref)}]}]
    return {"transaction_id": env.new_id(), "notify_event": [{
        "reference_id": f"notification-{delivery_id}", "timestamp": env.timestamp(now),
        "data": {"version": env.VERSION, "reg_type": env.REG_TYPE, "reg_event_type": sub.reg_event_type,
                 "reg_record_type": sub.notify_record_type, "reg_records": record}}]}
