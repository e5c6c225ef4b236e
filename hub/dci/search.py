"""A federated platform's search (DCI SearchRequest), item by item: what it must carry, what it may reach, and what
it gets back.

Authorization (the basis). A search item must carry, in its search criteria:

- ``authorize``: the entrustment (单位委托): ``{"@type": "Authorize", "purpose": {"code": <purpose>},
  "case_ref": <the platform's case number>}``;
- ``consent``: the person's authorization (个人授权) as the platform holds it: ``{"@type": "Consent", "purpose":
  {"code": <purpose>}, "authorization": <an authorization document, consent/authorizations.py>}``, naming the
  persons searched (by ID number), each with the sources they consented to, their signed form's hash, a guardian's
  cover for a minor, the validity window.

The hub records them as the platform's own request (kind ``federated``: department = the platform's code, purpose,
case number; the authorization with its consent receipt, pseudonyms only; ledger entries ``entrustment.received``
and ``authorization.granted``), the same request is found again for the same case, and the consent gate decides for
each person, source ``remote_registry``, purpose, platform and moment, as for any fetch (``consent.allowed`` /
``consent.refused``): the authorization must hold now, name the person, cover the purpose and the source
``remote_registry``, not be revoked (a person can withdraw it at this hub with `hub consent revoke`). No search
ranges over anyone else: an identifier query must name a person of the consent, and demographic (``predicate``) and
``expression`` queries select among the consent's persons only.

Minimization. What comes back is the access policy's rule for the platform's code and the purpose (the
``federation`` rule), cut further to the persons searched: their entry among the members, their own facts, the
household's totals and answers; persons' pseudonyms re-keyed for the platform, the household's too. The only ID
numbers in an answer are those the platform sent. A hub never passes on what other hubs told it
(``facts.remote_registrations`` is in no federation rule).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import select

from connectors import envelope as env
from consent import ledger
from consent.authorizations import check_authorization, parse_moment, store_authorization
from consent.decisions import Asker, ask
from core.store import Authorization, AuthorizationMember, Request, RequestMember, Revocation
from hub.rules import policy
from hub.stages.records import RecordNotFound, load_record
from schemas.codes import is_valid_id
from schemas.sources import SOURCE_KEYS
from schemas.vocabulary import PROGRAMMES, PURPOSES

SOURCE = "remote_registry"
ID_TYPES = ("NationalID", "UIN", "NID")
QUERY_TYPES = ("idtype-value", "predicate", "expression")
ENTITIES = ("Member", "Group")
REG_TYPES = (env.REG_TYPE, "Social")
MAX_PERSONS = 20
MAX_PAGE = 100
OPERATORS = {"eq", "gt", "lt", "ge", "le", "in"}
MONGO = {"$eq": "eq", "$gt": "gt", "$lt": "lt", "$gte": "ge", "$lte": "le", "$in": "in", "$ne": "ne"}
MEMBER_ATTRS = ("name", "sex", "birth_date", "age", "relation", "status", "address_code")
GROUP_ATTRS = ("group_size", "division", "area_type", "income_per_capita", *PROGRAMMES, "record_version")
CONTEXT = {"spdci": "https://schema.spdci.org/extensions/social/v1/", "common": "https://schema.spdci.org/common/v1/"}


class Reject(Exception):
    """An item refused with a SearchStatusReasonCode (``code``) and a message that quotes no value sent."""

    def __init__(self, code: str, message: str):
        self.code, self.message = code, message
        super().__init__(f"{code}: {message}")


def unauthorized(why: str) -> Reject:
    return Reject("rjct.search_criteria.invalid", f"err.request.unauthorized: {why}")


@dataclass
class Context:
    """One platform's message: who asks, when, and what has been recorded for it in this transaction."""

    client_id: str
    platform: str
    hub_id: str
    now: dt.datetime
    keys: object
    records: dict = field(default_factory=dict)  # household_ref -> (record, content)

    def scoped(self, ref: str) -> str:
        return self.keys.scoped(ref, f"platform:{self.platform}")


# -- the basis: entrustment and authorization ------------------------------------------------------------------
def _purpose_of(obj: dict, what: str) -> str | None:
    p = obj.get("purpose")
    if p is None:
        return None
    code = p.get("code") if isinstance(p, dict) else None
    if not isinstance(code, str) or code not in PURPOSES:
        raise unauthorized(f"{what}.purpose.code: one of {', '.join(PURPOSES)}")
    return code


def check_basis(criteria: dict, platform: str, *, consent_required: bool = True) -> tuple[str, str, dict | None]:
    """(purpose, case_ref, the authorization document) of an item's ``authorize`` (and ``consent``)."""
    authorize, consent = criteria.get("authorize"), criteria.get("consent")
    if not isinstance(authorize, dict) or (consent_required and not isinstance(consent, dict)):
        raise unauthorized("consent (the person's authorization) and authorize (the entrustment) are required")
    purpose = _purpose_of(authorize, "authorize")
    if purpose is None:
        raise unauthorized("authorize.purpose.code is required")
    case_ref = authorize.get("case_ref")
    if not env.safe_ref(case_ref) or len(case_ref) > 64:
        raise unauthorized("authorize.case_ref: the platform's case number (up to 64 letters, digits and ._:-)")
    for obj, what in ((authorize, "authorize"), (consent if isinstance(consent, dict) else {}, "consent")):
        if obj.get("ts") is not None and env.parse_ts(obj.get("ts")) is None:
            raise Reject("rjct.search_criteria.invalid", f"{what}.ts: an ISO 8601 date-time with its offset")
    if policy.rule_for(platform, purpose) is None:
        raise unauthorized("no access-policy rule grants this platform that purpose")
    if not consent_required:
        return purpose, case_ref, None
    if _purpose_of(consent, "consent") not in (None, purpose):
        raise unauthorized("consent and authorize name different purposes")
    doc = consent.get("authorization")
    if not isinstance(doc, dict) or not isinstance(doc.get("consents"), list) or not doc["consents"]:
        raise unauthorized("consent.authorization: the household's authorization document, naming the persons "
                           "searched")
    if len(doc["consents"]) > MAX_PERSONS:
        raise unauthorized(f"consent.authorization.consents: at most {MAX_PERSONS} persons")
    return purpose, case_ref, doc


def consent_ids(doc: dict, keys) -> dict[str, str]:
    """person_ref -> ID number of the persons an authorization document names (valid ID numbers only)."""
    out = {}
    for i, c in enumerate(doc["consents"]):  # the JSON array index, as in the intake's problems
        idn = c.get("id_number") if isinstance(c, dict) else None
        if not isinstance(idn, str) or not is_valid_id(idn):
            raise unauthorized(f"consent.authorization.consents[{i}].id_number: not a valid resident ID number")
        out[keys.pseudonym(idn.upper())] = idn.upper()
    return out


def _member_terms(person_ref: str, evidence_sha256: str | None, guardian_ref: str | None, sources,
                  financial_sources, financial_evidence_sha256: str | None) -> tuple:
    """One member's terms, as an authorization's fingerprint compares them."""
    return (person_ref, evidence_sha256 or "", guardian_ref or "", tuple(sorted(sources)),
            financial_evidence_sha256 or "", tuple(sorted(financial_sources)))


def _stored_terms(m: AuthorizationMember) -> tuple:
    return _member_terms(m.person_ref, m.evidence_sha256, m.guardian_ref, m.sources, m.financial_sources,
                         m.financial_evidence_sha256)


def _document_terms(c: dict, keys) -> tuple:
    """A member's terms as an authorization document states them (what store_authorization would store)."""
    fin = c.get("financial_consent") or {}
    return _member_terms(
        keys.pseudonym(c["id_number"].upper()), c.get("evidence_sha256"),
        keys.pseudonym(c["guardian_id_number"].upper()) if c.get("guardian_id_number") else None,
        dict.fromkeys(c["sources"]), fin.get("sources", []), fin.get("evidence_sha256"))


def _fingerprint(valid_from, valid_until, terms) -> tuple:
    return (valid_from, valid_until, tuple(sorted(terms)))


def record_basis(s, ctx: Context, purpose: str, case_ref: str, doc: dict, ids: dict[str, str]) -> str:
    """The platform's request for this purpose and case, with this authorization: found, or recorded now (request,
    authorization with its receipt, ledger entries). Returns the request id."""
    problems = check_authorization(doc, list(ids.values()), SOURCE_KEYS, where="consent.authorization")
    if problems:
        raise unauthorized(problems[0])
    keys = ctx.keys
    req = s.scalars(select(Request).where(Request.department == ctx.platform, Request.kind == "federated",
                                          Request.purpose == purpose, Request.case_ref == case_ref)
                    .order_by(Request.created_at).limit(1)).first()
    if req is None:
        req = Request(id=env.new_id(), department=ctx.platform, purpose=purpose, case_ref=case_ref, sources=[SOURCE],
                      status="received", client_id=ctx.client_id, kind="federated")
        s.add(req)
        s.flush()
        ledger.append(s, "entrustment.received", {"request_id": req.id, "department": ctx.platform,
                                                  "purpose": purpose, "sources": [SOURCE], "members": len(ids),
                                                  "kind": "federated", "client_id": ctx.client_id})
    wanted_from = parse_moment(doc["valid_from"], "", [])
    wanted_until = parse_moment(doc["valid_until"], "", [])
    probe = [_document_terms(c, keys) for c in doc["consents"]]
    wanted = _fingerprint(wanted_from, wanted_until, probe)
    withdrawn = set()  # (person, signed form) whose consent to this platform's case was withdrawn here
    for auth in s.scalars(select(Authorization).where(Authorization.request_id == req.id)):
        members = s.scalars(select(AuthorizationMember).where(AuthorizationMember.authorization_id == auth.id)).all()
        if _fingerprint(auth.valid_from, auth.valid_until, [_stored_terms(m) for m in members]) == wanted:
            return req.id
        revoked = s.execute(select(Revocation.person_ref, Revocation.source)
                            .where(Revocation.authorization_id == auth.id)).all()
        whole = any(ref is None for ref, _ in revoked)
        out = {ref for ref, source in revoked if ref is not None and source in (None, SOURCE)}
        withdrawn |= {(m.person_ref, m.evidence_sha256) for m in members if m.evidence_sha256 and (
            whole or m.person_ref in out)}
    if any((ref, evidence) in withdrawn for ref, evidence, *_ in probe):
        # the same signed form, sent again with other terms, does not undo a withdrawal: a new consent does
        raise unauthorized("the consent gate refuses: REVOKED")
    store_authorization(s, request_id=req.id, department=ctx.platform, purpose=purpose, case_ref=case_ref, doc=doc,
                        keys=keys)
    return req.id


def gate(s, req: Request, refs: list[str], now: dt.datetime) -> tuple[list[str], dict[str, str]]:
    """The consent gate's decision for each person of the platform's request ``req`` and the source
    remote_registry, stored and logged as for any fetch (consent.decisions): (allowed persons, refused ones'
    reasons)."""
    decided = ask(s, Asker.of(req), refs, SOURCE, now)
    return [a.person_ref for a in decided.allows], {d.person_ref: d.reason.value for d in decided.refusals}


# -- where the persons are, and what of it the platform sees -----------------------------------------------------
def households_of(s, refs: list[str]) -> dict[str, str]:
    """person_ref -> the household of their latest published record in this hub (named in a department's request,
    and a member of that record)."""
    rows = s.execute(select(RequestMember.person_ref, Request.household_ref)
                     .join(Request, Request.id == RequestMember.request_id)
                     .where(RequestMember.person_ref.in_(refs), Request.household_ref.is_not(None),
                            Request.kind != "federated")
                     .order_by(Request.created_at.desc())).all()
    out = {}
    for ref, hh in rows:
        out.setdefault(ref, hh)
    return out


def record_of(s, ctx: Context, household_ref: str):
    if household_ref not in ctx.records:
        try:
            ctx.records[household_ref] = load_record(household_ref, s=s)
        except RecordNotFound:
            ctx.records[household_ref] = None
    return ctx.records[household_ref]


def _keep(value, refs: set[str]):
    """``value`` without the entries of persons outside ``refs`` (members, facts, discrepancies, person lists)."""
    if isinstance(value, dict):
        return {k: (_keep(v, refs) if k != "persons" or not isinstance(v, list)
                    else [p for p in v if p in refs]) for k, v in value.items()}
    if isinstance(value, list):
        return [_keep(v, refs) for v in value
                if not (isinstance(v, dict) and isinstance(v.get("person_ref"), str) and v["person_ref"] not in refs)]
    return value


def view_for(ctx: Context, content: dict, rule: policy.Rule, refs: set[str]) -> dict:
    """The record as the platform may see it: the rule's cut, only the persons ``refs``, pseudonyms re-keyed."""
    view = _keep(policy.cut(content, rule), refs)
    view = policy.scope_persons(view, ctx.scoped)
    view["household_ref"] = ctx.scoped(content["household_ref"])
    return view


def group_attrs(view: dict) -> dict:
    out = {"record_version": view.get("version")}
    division = view.get("division")
    if isinstance(division, dict):
        out.update(division=division.get("code"), area_type=division.get("area_type"))
    assessment = view.get("assessment") or {}
    if "members_counted" in assessment:
        out["group_size"] = assessment["members_counted"]
    if isinstance(assessment.get("income"), dict):
        out["income_per_capita"] = assessment["income"].get("monthly_per_capita")
    screening = assessment.get("screening") if isinstance(assessment.get("screening"), dict) else None
    answers = view.get("answers") if isinstance(view.get("answers"), dict) else None
    for p in PROGRAMMES:
        if screening is not None and p in screening:
            out[p] = screening[p].get("answer")
        elif answers is not None and p in answers:
            out[p] = answers[p]
    return out


def member_attrs(member: dict | None, group: dict) -> dict:
    out = dict(group)
    if member:
        out.update({k: member.get(k) for k in MEMBER_ATTRS})
    return out


# -- queries -----------------------------------------------------------------------------------------------------
def _filter_invalid(why: str) -> Reject:
    return Reject("rjct.filter.invalid", why)


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _compare(actual, operator: str, expected) -> bool:
    if operator == "in":
        if not isinstance(expected, list) or not 1 <= len(expected) <= 100:
            raise _filter_invalid("operator in: a list of 1 to 100 values")
        return any(_compare(actual, "eq", e) for e in expected)
    if not (isinstance(expected, (str, bool)) or _number(expected)):
        raise _filter_invalid("attribute_value: a string, number or boolean")
    if actual is None:
        return operator == "ne"
    if _number(actual) != _number(expected) or isinstance(actual, str) != isinstance(expected, str):
        raise _filter_invalid("attribute_value: of the attribute's type (text, a date as YYYY-MM-DD, or a number)")
    return {"eq": actual == expected, "ne": actual != expected, "gt": actual > expected, "lt": actual < expected,
            "ge": actual >= expected, "le": actual <= expected}[operator]


def _expression(e, attrs: dict, available: set[str]) -> bool:
    if not isinstance(e, dict) or set(e) - {"attribute_name", "operator", "attribute_value"} \
            or not {"attribute_name", "operator", "attribute_value"} <= set(e):
        raise _filter_invalid("an expression is {attribute_name, operator, attribute_value}")
    name, op = e["attribute_name"], e["operator"]
    if op not in OPERATORS:
        raise _filter_invalid(f"operator: one of {', '.join(sorted(OPERATORS))}")
    if name not in available:
        raise _filter_invalid("attribute_name: not an attribute this platform may search on for that purpose "
                              f"({', '.join(sorted(available))})")
    return _compare(attrs.get(name), op, e["attribute_value"])


def parse_predicate(query) -> list[dict]:
    if not isinstance(query, list) or not 1 <= len(query) <= 10 or not all(isinstance(q, dict) for q in query):
        raise _filter_invalid("a predicate query is a list of 1 to 10 {seq_num, expression1, condition, "
                              "expression2}")
    for q in query:
        if set(q) - {"seq_num", "expression1", "condition", "expression2"} or "expression1" not in q:
            raise _filter_invalid("a predicate is {seq_num, expression1, condition, expression2}")
        if ("condition" in q) != ("expression2" in q) or q.get("condition", "and") not in ("and", "or", "not"):
            raise _filter_invalid("condition (and, or, not) goes with expression2")
        if "seq_num" in q and not _number(q["seq_num"]):
            raise _filter_invalid("seq_num: a number")
    return sorted(query, key=lambda q: q.get("seq_num", 0))


def eval_predicate(query: list[dict], attrs: dict, available: set[str]) -> bool:
    """Predicates in seq_num order, all of which must hold; within one, expression1 [and|or|not] expression2 (not:
    expression1 and not expression2)."""
    for q in query:
        first = _expression(q["expression1"], attrs, available)
        if "condition" in q:
            second = _expression(q["expression2"], attrs, available)
            first = {"and": first and second, "or": first or second, "not": first and not second}[q["condition"]]
        if not first:
            return False
    return True


def parse_expression(query) -> tuple[str, dict]:
    """(collection, query) of an expression query: {type, value: {expression: {collection, query}}}."""
    value = query.get("value") if isinstance(query, dict) else None
    expression = value.get("expression") if isinstance(value, dict) else None
    if not isinstance(expression, dict) or expression.get("collection") not in ENTITIES \
            or not isinstance(expression.get("query"), dict):
        raise _filter_invalid("an expression query is {type, value: {expression: {collection: Group or Member, "
                              "query: {...}}}}")
    _size(expression["query"], 0)
    return expression["collection"], expression["query"]


def _size(q, depth: int) -> None:
    if depth > 8:
        raise _filter_invalid("the expression is nested too deep")
    if isinstance(q, dict):
        if len(q) > 20:
            raise _filter_invalid("the expression has too many terms")
        for v in q.values():
            _size(v, depth + 1)
    elif isinstance(q, list):
        if len(q) > 20:
            raise _filter_invalid("the expression has too many terms")
        for v in q:
            _size(v, depth + 1)


def eval_expression(q: dict, attrs: dict, available: set[str]) -> bool:
    """A MongoDB-like expression: {"$and": [...]}, {"$or": [...]}, {"$not": {...}}, {attribute: value} or
    {attribute: {"$eq"|"$ne"|"$lt"|"$lte"|"$gt"|"$gte"|"$in": value}}; terms of one object must all hold."""
    if not isinstance(q, dict) or not q:
        raise _filter_invalid("an expression is a non-empty object")
    for key, value in q.items():
        if key in ("$and", "$or"):
            if not isinstance(value, list) or not value:
                raise _filter_invalid(f"{key}: a non-empty list of expressions")
            results = [eval_expression(v, attrs, available) for v in value]
            if not (all(results) if key == "$and" else any(results)):
                return False
        elif key == "$not":
            if eval_expression(value, attrs, available):
                return False
        elif key.startswith("$"):
            raise _filter_invalid("operators: $and, $or, $not, and per attribute $eq $ne $lt $lte $gt $gte $in")
        else:
            if key not in available:
                raise _filter_invalid("attribute: not one this platform may search on for that purpose "
                                      f"({', '.join(sorted(available))})")
            terms = value if isinstance(value, dict) else {"$eq": value}
            if not terms:
                raise _filter_invalid("an attribute's condition is not empty")
            for op, expected in terms.items():
                if op not in MONGO:
                    raise _filter_invalid("per attribute: $eq $ne $lt $lte $gt $gte $in")
                if not _compare(attrs.get(key), MONGO[op], expected):
                    return False
    return True


def parse_sort(sort) -> list[tuple[str, bool]]:
    if sort is None:
        return []
    if not isinstance(sort, list) or len(sort) > 5 or not all(isinstance(x, dict) for x in sort):
        raise Reject("rjct.sort.invalid", "sort: a list of {attribute_name, sort_order}")
    out = []
    for x in sort:
        if not isinstance(x.get("attribute_name"), str) or x.get("sort_order", "asc") not in ("asc", "desc") \
                or set(x) - {"attribute_name", "sort_order"}:
            raise Reject("rjct.sort.invalid", "sort: {attribute_name, sort_order: asc or desc}")
        out.append((x["attribute_name"], x.get("sort_order", "asc") == "desc"))
    return out


def parse_pagination(p) -> tuple[int, int]:
    if p is None:
        return MAX_PAGE, 1
    def whole(v) -> bool:
        return _number(v) and float(v).is_integer()

    if not isinstance(p, dict) or set(p) - {"page_size", "page_number"} or not whole(p.get("page_size")) \
            or not 1 <= p["page_size"] <= MAX_PAGE or not whole(p.get("page_number", 1)) \
            or not 1 <= p.get("page_number", 1) <= 10_000:
        raise Reject("rjct.pagination.invalid", f"pagination: page_size from 1 to {MAX_PAGE}, page_number from 1")
    return int(p["page_size"]), int(p.get("page_number", 1))


# -- one item ----------------------------------------------------------------------------------------------------
@dataclass
class Criteria:
    query_type: str
    entity: str
    collection: str  # what the query selects: Member or Group
    query: object
    sort: list[tuple[str, bool]]
    page_size: int
    page_number: int


def check_criteria(criteria) -> Criteria:
    if not isinstance(criteria, dict):
        raise Reject("rjct.search_criteria.invalid", "search_criteria: an object")
    if criteria.get("version", env.VERSION) != env.VERSION:
        raise Reject("rjct.search_criteria.invalid", f"search_criteria.version: {env.VERSION}")
    if criteria.get("reg_type", env.REG_TYPE) not in REG_TYPES:
        raise Reject("rjct.search_criteria.invalid", f"reg_type: this registry is {env.REG_TYPE}")
    qt = criteria.get("query_type")
    if qt not in QUERY_TYPES:
        raise Reject("rjct.search_criteria.invalid", f"query_type: one of {', '.join(QUERY_TYPES)}")
    if "query" not in criteria:
        raise Reject("rjct.search_criteria.invalid", "query is required")
    entity = criteria.get("response_entity", criteria.get("reg_record_type"))
    if entity is not None and entity not in ENTITIES:
        raise Reject("rjct.search_criteria.invalid", "response_entity (or reg_record_type): Member or Group")
    query, collection = criteria["query"], "Member"
    if qt == "idtype-value":
        if not isinstance(query, dict) or set(query) - {"type", "value"}:
            raise _filter_invalid("an idtype-value query is {type, value}")
        if query.get("type") not in ID_TYPES:
            raise _filter_invalid(f"query.type: {ID_TYPES[0]} (a resident ID number)")
        if not isinstance(query.get("value"), str) or not is_valid_id(query["value"]):
            raise _filter_invalid("query.value: not a valid resident ID number")
    elif qt == "predicate":
        query = parse_predicate(query)
    else:
        collection, query = parse_expression(query)
    sort = parse_sort(criteria.get("sort"))
    size, number = parse_pagination(criteria.get("pagination"))
    return Criteria(qt, entity or collection, collection, query, sort, size, number)


def member_record(ctx: Context, ref: str, idn: str, view: dict, provenance: dict) -> dict:
    member = next((m for m in view.get("members", []) if m.get("person_ref") == ctx.scoped(ref)), None)
    record = {"@context": CONTEXT, "@type": "Member",
              "member_identifier": [{"@type": "Identifier", "identifier_type": "NationalID", "identifier_value": idn},
                                    {"@type": "Identifier", "identifier_type": "PlatformPseudonym",
                                     "identifier_value": ctx.scoped(ref)}],
              "group_identifier": [{"@type": "Identifier", "identifier_type": "PlatformPseudonym",
                                    "identifier_value": view["household_ref"]}]}
    if member:
        record["demographic_info"] = {"@type": "SRPerson", "name": {"@type": "Name", "name": member.get("name")},
                                      "sex": member.get("sex"), "birth_date": member.get("birth_date"),
                                      "address": {"@type": "Address", "address_code": member.get("address_code")}}
        record["relationship_head"] = member.get("relation")
        record["registration_status"] = member.get("status")
    person_view = _keep(view, {ctx.scoped(ref)})
    return {**record, "registry_record": provenance, "hub_record": person_view}


def group_record(ctx: Context, members: list[tuple[str, str]], view: dict, provenance: dict) -> dict:
    record = {"@context": CONTEXT, "@type": "Group",
              "group_identifier": [{"@type": "Identifier", "identifier_type": "PlatformPseudonym",
                                    "identifier_value": view["household_ref"]}]}
    size = (view.get("assessment") or {}).get("members_counted")
    if size is not None:
        record["group_size"] = size
    record["member_list"] = [member_record(ctx, ref, idn, view, provenance) for ref, idn in members]
    return {**record, "registry_record": provenance, "hub_record": view}


def _provenance(ctx: Context, record, content: dict) -> dict:
    return {"registry": ctx.hub_id, "household_version": content.get("version"), "as_of": content.get("as_of"),
            "recorded_at": content.get("recorded_at"), "content_sha256": record.content_sha256}


def check_item(item, reference, seen: set) -> None:
    """What every item of a message needs: an object with a safe reference_id, unique within the message, and a
    timestamp; raises Reject with the spec's code."""
    if not isinstance(item, dict) or not env.safe_ref(reference):
        raise Reject("rjct.reference_id.invalid", "reference_id: up to 99 letters, digits and ._:@+=/-")
    if reference in seen:
        raise Reject("rjct.reference_id.duplicate", "reference_id: used twice in this message")
    seen.add(reference)
    if env.parse_ts(item.get("timestamp")) is None:
        raise Reject("rjct.timestamp.invalid", "timestamp: an ISO 8601 date-time with its offset")


def search_item(s, ctx: Context, item: dict, seen: set) -> tuple[dict, dict]:
    """(the SearchResponse item, its ledger summary) for one search_request item."""
    reference = item.get("reference_id") if isinstance(item, dict) else None
    echo = reference[:99] if isinstance(reference, str) else ""
    summary = {"reference_id": reference if env.safe_ref(reference) else None}
    try:
        check_item(item, reference, seen)
        criteria = check_criteria(item.get("search_criteria"))
        summary["query_type"] = criteria.query_type
        purpose, case_ref, doc = check_basis(item["search_criteria"], ctx.platform)
        summary["purpose"] = purpose
        ids = consent_ids(doc, ctx.keys)
        if criteria.query_type == "idtype-value":
            wanted = ctx.keys.pseudonym(criteria.query["value"].upper())
            if wanted not in ids:
                raise unauthorized("the consent does not name the person searched")
            candidates = [wanted]
        else:
            candidates = list(ids)
        request_id = record_basis(s, ctx, purpose, case_ref, doc, ids)
        summary["request_id"] = request_id
        allowed, refused = gate(s, s.get(Request, request_id), candidates, ctx.now)
        summary["persons"], summary["refused"] = allowed, refused
        if not allowed:
            raise unauthorized(f"the consent gate refuses: {sorted(set(refused.values()))[0]}")
        rule = policy.rule_for(ctx.platform, purpose)
        summary["policy_rule"], summary["fields"] = rule.name, rule.returns
        records, read = _select(s, ctx, criteria, allowed, ids, rule)
        summary["records"] = read
        for hh, version in {(r["household_ref"], r["version"]) for r in read}:
            ledger.append(s, "record.read", {"client_id": ctx.client_id, "department": ctx.platform,
                                             "purpose": purpose, "household_ref": hh, "version": version,
                                             "basis": f"request:{request_id}", "policy_rule": rule.name,
                                             "fields": rule.returns, "via": "dci"})
        total = len(records)
        start = (criteria.page_number - 1) * criteria.page_size
        page = records[start: start + criteria.page_size]
        out = {"reference_id": echo, "timestamp": env.timestamp(ctx.now), "status": "succ",
               "data": {"version": env.VERSION, "reg_type": env.REG_TYPE, "reg_record_type": criteria.entity,
                        "reg_records": page},
               "pagination": {"page_size": criteria.page_size, "page_number": criteria.page_number,
                              "total_count": total}}
        summary.update(status="succ", reason=None, returned=len(page), total=total)
    except Reject as exc:
        out = {"reference_id": echo, "timestamp": env.timestamp(ctx.now), "status": "rjct",
               "status_reason_code": exc.code, "status_reason_message": exc.message[:999]}
        summary.update(status="rjct", reason=exc.code, why=exc.message.split(":")[0][:64])
    if isinstance(item, dict) and isinstance(item.get("locale"), str) and len(item["locale"]) == 3 \
            and item["locale"].isalpha() and item["locale"].islower():
        out["locale"] = item["locale"]
    return out, summary


def _select(s, ctx: Context, criteria: Criteria, allowed: list[str], ids: dict[str, str], rule: policy.Rule):
    """The records the item selects, sorted, and what was read ([{household_ref, version}])."""
    homes = households_of(s, allowed)
    by_household: dict[str, list[str]] = {}
    for ref in allowed:
        if ref in homes:
            by_household.setdefault(homes[ref], []).append(ref)
    candidates = []  # (attrs, entity payload builder)
    read = []
    for hh, refs in by_household.items():
        found = record_of(s, ctx, hh)
        if found is None:
            continue
        record, content = found
        present = [r for r in refs if any(m.get("person_ref") == r for m in content.get("members", []))]
        if not present:
            continue
        view = view_for(ctx, content, rule, set(present))
        prov = _provenance(ctx, record, content)
        gattrs = group_attrs(view)
        available_group = {k for k in GROUP_ATTRS if k in gattrs}
        members = {r: next((m for m in view.get("members", []) if m.get("person_ref") == ctx.scoped(r)), None)
                   for r in present}
        available_member = available_group | ({k for k in MEMBER_ATTRS} if any(members.values()) else set())
        matched = []
        if criteria.collection == "Group":
            if criteria.query_type != "expression" or eval_expression(criteria.query, gattrs, available_group):
                matched = present
        else:
            for r in present:
                attrs = member_attrs(members[r], gattrs)
                if criteria.query_type == "idtype-value" or (
                        criteria.query_type == "predicate" and eval_predicate(criteria.query, attrs, available_member)
                ) or (criteria.query_type == "expression"
                      and eval_expression(criteria.query, attrs, available_member)):
                    matched.append(r)
        if not matched:
            continue
        read.append({"household_ref": hh, "version": content.get("version")})
        if criteria.entity == "Group":
            candidates.append((gattrs, available_group,
                               group_record(ctx, [(r, ids[r]) for r in matched], view, prov)))
        else:
            for r in matched:
                candidates.append((member_attrs(members[r], gattrs), available_member,
                                   member_record(ctx, r, ids[r], view, prov)))
    for name, descending in reversed(criteria.sort):
        for _attrs, available, _rec in candidates:
            if name not in available:
                raise Reject("rjct.sort.invalid", "sort.attribute_name: not an attribute of the records returned "
                             "to this platform")
        present = [c for c in candidates if c[0].get(name) is not None]
        absent = [c for c in candidates if c[0].get(name) is None]
        try:
            present.sort(key=lambda c: c[0][name], reverse=descending)
        except TypeError:
            raise Reject("rjct.sort.invalid", "sort.attribute_name: values that cannot be ordered") from None
        candidates = present + absent
    return [c[2] for c in candidates], read
