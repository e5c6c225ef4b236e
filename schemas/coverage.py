"""Every member a batch asked about is answered or explained: the ``members`` suite.

One row per member of the request for one source, with the member's state:

  rows         the agency returned rows for the member, at least one valid
  quarantined  the agency returned rows for the member, all quarantined (their reasons explain it)
  no_records   the agency answered and has nothing on the member (allowed where a person may have no rows)
  not_found    the agency declared it does not know the member
  refused      the consent gate did not allow asking about the member (its decision explains it)
  unanswered   the member was to be asked, but the fetch stopped before the agency answered for them
  silent       the agency answered but neither returned nor declared unknown a member it must have a row for
               (household registration has one row for every person it knows)
"""

from __future__ import annotations

import pandas as pd

from schemas.checks import Check

# great_expectations is imported inside checks(), deliberately: it is heavy and needed only when a suite is built
# (a validation run), never when this module is imported (by a stage, or a DAG file at parse time).

EXPLAINED = ("rows", "quarantined", "no_records", "not_found", "refused")
STATES = (*EXPLAINED, "unanswered", "silent")
ROW_REQUIRED = frozenset({"household"})  # sources with a row for every person they know


def state(*, asked: bool, outcome: str | None, rows: int, valid: int, source: str) -> str:
    """The state of one member (``outcome``: the fetch's answered | not_found | unanswered)."""
    if not asked:
        return "refused"
    if outcome in ("not_found", "unanswered"):
        return outcome
    if rows:
        return "rows" if valid else "quarantined"
    return "silent" if source in ROW_REQUIRED else "no_records"


def prepare(df: pd.DataFrame) -> pd.DataFrame:
    out = df.reindex(columns=["person_ref", "state"]).copy()
    out["answered"] = out["state"] != "unanswered"
    out["not_silent"] = out["state"] != "silent"
    return out


def checks() -> list[Check]:
    import great_expectations as gx

    e = gx.expectations
    return [
        Check(e.ExpectColumnValuesToBeInSet(column="state", value_set=list(STATES)), "member_state",
              "成员状态未知 / unknown member state"),
        Check(e.ExpectColumnValuesToBeInSet(column="answered", value_set=[True]), "member_answered",
              "机构未就该成员作答（查询中断） / the agency gave no answer for this member (the fetch stopped)"),
        Check(e.ExpectColumnValuesToBeInSet(column="not_silent", value_set=[True]), "member_explained",
              "应答既未包含该成员，也未声明查无此人 / the answer neither returned this member nor declared them unknown"),
    ]
