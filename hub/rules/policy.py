"""Who may read what: the declared access policy (department x purpose -> parts of the record, or answers only)
and object-level authorization (a department reads only households it has an open case for).

The policy is data (hub/rules/access_policy.toml, or the file HUB_ACCESS_POLICY names), checked when loaded: an unknown
field, purpose or programme is an error naming the rule, not a silent grant.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from sqlalchemy import case, or_, select

from consent.authorizations import not_revoked
from core.settings import settings
from core.store import Authorization, Request
from schemas.vocabulary import PROGRAMMES, PURPOSES

DEFAULT_POLICY = Path(__file__).with_name("access_policy.toml")
FACTS = ("income", "contributions", "provident_fund", "properties", "market_entities", "vehicles_vessels",
         "deposits", "securities", "insurance_cash_value", "internet_finance", "remote_registrations")
ASSESSMENT = ("rules", "standard", "window", "members_counted", "income", "assets", "asset_test", "screening",
              "details")  # details: the cars, flats, companies and income behind the figures (hub.rules.unify)
FIELDS = frozenset(("request_id", "division", "members", "facts", "discrepancies", "assessment", "sources",
                    "authority", *(f"facts.{k}" for k in FACTS), *(f"assessment.{k}" for k in ASSESSMENT)))
IDENTITY = ("schema", "household_ref", "purpose", "as_of", "version", "recorded_at")


class PolicyError(ValueError):
    """The policy file is malformed; the message names the rule and the problem."""


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    departments: tuple[str, ...]
    purposes: tuple[str, ...]
    fields: tuple[str, ...] = ()
    answers: tuple[str, ...] = ()

    def matches(self, department: str, purpose: str) -> bool:
        return purpose in self.purposes and any(fnmatch.fnmatchcase(department, p) for p in self.departments)

    @property
    def returns(self) -> list[str]:
        """What a read under this rule returns, as the ledger records it."""
        return sorted(self.fields) if self.fields else [f"answers.{p}" for p in self.answers]


def parse(text: str) -> tuple[Rule, ...]:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"not valid TOML: {exc}") from None
    rules, names = [], set()
    if not isinstance(doc.get("rule") or [], list):
        raise PolicyError("rules are [[rule]] tables")
    for i, r in enumerate(doc.get("rule") or [], 1):
        if not isinstance(r, dict):
            raise PolicyError(f"rule {i}: a [[rule]] table")
        name = r.get("name") or f"rule {i}"
        def bad(what: str) -> PolicyError:
            return PolicyError(f"{name}: {what}")
        if not isinstance(name, str) or not isinstance(r.get("description", ""), str):
            raise PolicyError(f"rule {i}: name and description are strings")
        if name in names:
            raise bad("the name is used twice")
        names.add(name)
        unknown = set(r) - {"name", "description", "departments", "purposes", "fields", "answers"}
        if unknown:
            raise bad(f"unknown keys {sorted(unknown)}")
        for key in ("departments", "purposes", "fields", "answers"):  # a string would be read letter by letter
            if not isinstance(r.get(key, []), list) or not all(isinstance(v, str) for v in r.get(key, [])):
                raise bad(f"{key}: a list of strings")
        depts, purposes = r.get("departments") or [], r.get("purposes") or []
        fields, answers = r.get("fields") or [], r.get("answers") or []
        if not depts or not all(isinstance(d, str) and d for d in depts):
            raise bad("departments: a non-empty list of codes or prefixes like MZ-*")
        if not purposes or set(purposes) - set(PURPOSES):
            raise bad(f"purposes: a non-empty list of {', '.join(PURPOSES)}")
        if bool(fields) == bool(answers):
            raise bad("give either fields or answers")
        if set(fields) - FIELDS:
            raise bad(f"unknown fields {sorted(set(fields) - FIELDS)}")
        if set(answers) - set(PROGRAMMES):
            raise bad(f"answers: programmes among {', '.join(PROGRAMMES)}")
        rules.append(Rule(name, r.get("description", ""), tuple(depts), tuple(purposes), tuple(fields), tuple(answers)))
    if not rules:
        raise PolicyError("the policy has no [[rule]]")
    return tuple(rules)


@lru_cache(maxsize=4)
def _load(path: str) -> tuple[Rule, ...]:
    return parse(Path(path).read_text(encoding="utf-8"))


def policy() -> tuple[Rule, ...]:
    return _load(settings().access_policy or str(DEFAULT_POLICY))


def rule_for(department: str, purpose: str) -> Rule | None:
    return next((r for r in policy() if r.matches(department, purpose)), None)


def cut(content: dict, rule: Rule) -> dict:
    """The part of a record's content the rule grants: its identity, and the rule's fields or answers."""
    out = {k: content[k] for k in IDENTITY if k in content}
    if rule.answers:
        screening = content.get("assessment", {}).get("screening", {})
        out["answers"] = {p: screening.get(p, {}).get("answer") for p in rule.answers}
        return out
    for path in rule.fields:
        head, _, sub = path.partition(".")
        if head not in content:
            continue
        if not sub:
            out[head] = content[head]
        elif isinstance(content[head], dict) and sub in content[head]:
            out.setdefault(head, {})[sub] = content[head][sub]
    return out


# -- object-level authorization ---------------------------------------------------------------------------------
def case_query(department: str, household_ref: str, now: dt.datetime, purpose: str | None = None):
    """SELECT the id of a request of the department for the household (and purpose, when given) whose authorization
    holds now (valid and not revoked in full): its own first, else, for a re-check, its application's. The
    authorization must have been given to that department for that purpose. One statement, so that a read can ask
    it as a scalar subquery beside the record it reads."""
    q = (select(Request.id)
         .join(Authorization, or_(Authorization.request_id == Request.id, Authorization.request_id == Request.parent_id))
         .where(Request.household_ref == household_ref, Request.department == department,
                Authorization.department == department, Authorization.purpose == Request.purpose,
                Authorization.valid_from <= now, Authorization.valid_until > now,
                not_revoked(Authorization.id, now)))
    if purpose is not None:
        q = q.where(Request.purpose == purpose)
    return q.order_by(case((Authorization.request_id == Request.id, 0), else_=1)).limit(1)


def open_request(s, department: str, household_ref: str, now: dt.datetime, purpose: str | None = None) -> str | None:
    """The request ``case_query`` finds, or None."""
    return s.scalars(case_query(department, household_ref, now, purpose)).first()


def open_case(s, department: str, household_ref: str, purpose: str, now: dt.datetime) -> str | None:
    """Why the department may read the household for the purpose, or None: a request of its own for that household
    and purpose whose authorization holds now ("request:<id>"). Nothing else opens a case: assistance a department
    reports rests on such an authorization (hub.services.assistance.report) and opens no read of its own, so a revoked or
    expired authorization closes every read it opened at once, and no purpose opens a read for another."""
    req = open_request(s, department, household_ref, now, purpose)
    return f"request:{req}" if req is not None else None


def scope_persons(view, scoped) -> object:
    """The view with every person's pseudonym (``person_ref`` values, ``persons`` lists) replaced by ``scoped(ref)``:
    what one department reads cannot be joined with what another reads."""
    if isinstance(view, dict):
        out = {}
        for k, v in view.items():
            if k == "person_ref" and isinstance(v, str):
                out[k] = scoped(v)
            elif k == "persons" and isinstance(v, list):
                out[k] = [scoped(x) if isinstance(x, str) else x for x in v]
            else:
                out[k] = scope_persons(v, scoped)
        return out
    if isinstance(view, list):
        return [scope_persons(v, scoped) for v in view]
    return view
