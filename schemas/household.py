"""Household registration: the canonical row and its validation suite."""

from __future__ import annotations

import pandas as pd

from schemas.checks import BATCH_KEY, Check
from schemas.codes import ANSHAN_DIVISIONS, birth_date_from_id, sex_from_id, valid_id_mask
from schemas.contracts import EXTRA
from schemas.rules import unexpected_field_check
from schemas.vocabulary import PERSON_STATUSES, RELATIONS, SEXES

# great_expectations is imported inside checks(), deliberately: it is heavy and needed only when a suite is built
# (a validation run), never when this module is imported (by a stage, or a DAG file at parse time).

SOURCE = "household"

# canonical column -> meaning (schemas.contracts maps the agency's codes to these values)
COLUMNS = {
    "id_number": "resident ID number (GB 11643)",
    "name": "name",
    "sex": "male | female (GB/T 2261.1)",
    "birth_date": "birth date, YYYY-MM-DD",
    "household_no": "household number (户号)",
    "relation": "relation to the head (GB/T 4761): head, spouse, son, daughter, grandchild, parent, other",
    "status": "registration status: normal, deceased, moved_out",
    "address_code": "address division code",
}
REQUIRED = ("id_number", "name", "sex", "birth_date", "household_no", "relation", "status")


def prepare(df: pd.DataFrame) -> pd.DataFrame:
    """Derived columns the suite checks (vectorized)."""
    out = df.reindex(columns=[*COLUMNS, EXTRA, BATCH_KEY]).copy()
    out[EXTRA] = out[EXTRA].map(lambda v: None if not isinstance(v, list) else ",".join(v))
    ids = out["id_number"].tolist()
    births = [_birth(i) if good else None for i, good in zip(ids, valid_id_mask(ids))]
    ok = [b is not None for b in births]  # the check character holds, and the birth date is one
    out["id_check_ok"] = ok
    expected_sex = [sex_from_id(i) if good else None for i, good in zip(ids, ok)]
    out["sex_matches_id"] = [e is None or e == s for e, s in zip(expected_sex, out["sex"])]
    out["birth_matches_id"] = [b is None or b == s for b, s in zip(births, out["birth_date"])]
    return out


def _birth(id_number: str) -> str | None:
    try:
        return birth_date_from_id(id_number).isoformat()
    except ValueError:  # 2025-13-45: the check character can hold on a birth date that is none
        return None


def checks() -> list[Check]:
    import great_expectations as gx

    e = gx.expectations
    return [
        *(
            Check(e.ExpectColumnValuesToNotBeNull(column=c), "required_field", f"缺少必填字段 {c} / required field {c} missing")
            for c in REQUIRED
        ),
        Check(
            e.ExpectColumnValuesToBeInSet(column="id_check_ok", value_set=[True]),
            "id_check_digit",
            "身份证号校验位错误 / ID number fails its GB 11643 check character",
        ),
        Check(
            e.ExpectColumnValuesToBeInSet(column="address_code", value_set=sorted(ANSHAN_DIVISIONS)),
            "known_division",
            "行政区划代码不在鞍山市代码表中 / address code not an Anshan division",
        ),
        Check(
            e.ExpectColumnValuesToBeInSet(column="sex", value_set=sorted(SEXES)),
            "known_sex_code",
            "性别代码未知 / unknown sex code",
        ),
        Check(
            e.ExpectColumnValuesToBeInSet(column="relation", value_set=sorted(RELATIONS)),
            "known_relation_code",
            "与户主关系代码未知 / unknown relation code",
        ),
        Check(
            e.ExpectColumnValuesToBeInSet(column="status", value_set=sorted(PERSON_STATUSES)),
            "known_status_code",
            "户口状态代码未知 / unknown registration status code",
        ),
        Check(
            e.ExpectColumnValuesToBeInSet(column="sex_matches_id", value_set=[True]),
            "sex_matches_id",
            "性别与身份证号不符 / sex does not match the ID number",
        ),
        Check(
            e.ExpectColumnValuesToBeInSet(column="birth_matches_id", value_set=[True]),
            "birth_matches_id",
            "出生日期与身份证号不符 / birth date does not match the ID number",
        ),
        unexpected_field_check(),
        Check(
            e.ExpectCompoundColumnsToBeUnique(column_list=["id_number", BATCH_KEY]),
            "unique_person",
            "同一批次中身份证号重复 / ID number repeated within the batch",
        ),
    ]
