"""Checks across sources, run once every source of a request is validated: the ``cross_source`` suite.

One row per valid dated fact of the economic sources, with the birth date household registration gives for
the person (the ID number's when household registration was not asked or did not answer for them):

  fact_after_birth   no income, contribution, property, company, vehicle or policy dated before the person was
                     born (a sign that the agency answered about someone else, or mistyped a date)
"""

from __future__ import annotations

import pandas as pd

from schemas.checks import Check

# great_expectations is imported inside checks(), deliberately: it is heavy and needed only when a suite is built
# (a validation run), never when this module is imported (by a stage, or a DAG file at parse time).

DATED = ("period", "acquired", "established", "registered", "effective")  # the fact's own date, where a source has one


def fact_date(row: dict) -> str | None:
    for f in DATED:
        v = row.get(f)
        if isinstance(v, str) and len(v) >= 7:
            return v
    return None


def prepare(df: pd.DataFrame) -> pd.DataFrame:
    out = df.reindex(columns=["source", "person_ref", "fact_date", "birth_date"]).copy()
    # compare at the fact's precision: a month (YYYY-MM) against the birth month, a date against the birth date
    out["fact_after_birth"] = [
        not (isinstance(f, str) and isinstance(b, str)) or f >= b[: len(f)]
        for f, b in zip(out["fact_date"], out["birth_date"])
    ]
    return out


def checks() -> list[Check]:
    import great_expectations as gx

    e = gx.expectations
    return [
        Check(e.ExpectColumnValuesToBeInSet(column="fact_after_birth", value_set=[True]), "fact_after_birth",
              "事项日期早于本人出生日期（户籍） / the fact is dated before the person was born (household registration)"),
    ]
