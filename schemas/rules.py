"""Validation rules of the ten economic sources, declared; the suites are built from them in code.

Every source also gets, from its contract: the resident ID check on ``id_number``, value sets for every coded
field (its canonical vocabulary), and a check that no field came that the contract does not know (a renamed field).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import pandas as pd

from schemas.checks import BATCH_KEY, Check
from schemas.contracts import EXTRA, SPECS

# great_expectations (and schemas.expectations, which subclasses its classes) is imported inside the functions that
# build checks, deliberately: it is heavy and needed only when a suite is built, never when this module is imported.


@dataclass(frozen=True)
class Rules:
    required: tuple[str, ...]
    non_negative: tuple[str, ...] = ()
    positive: tuple[str, ...] = ()
    fractions: tuple[str, ...] = ()  # in (0, 1]
    past_dates: tuple[str, ...] = ()  # YYYY-MM-DD, not after today
    periods: tuple[str, ...] = ()  # YYYY-MM
    uscc: tuple[str, ...] = ()  # unified social credit codes, where present
    unique: tuple[str, ...] = ()  # natural key within a batch


RULES: dict[str, Rules] = {
    "tax": Rules(("id_number", "period", "income_type", "amount"), non_negative=("amount", "tax"), periods=("period",),
                 uscc=("withholder_uscc",), unique=("id_number", "period", "income_type", "withholder_uscc")),
    "social_insurance": Rules(("id_number", "period", "kind", "insurance_type", "amount"),
                              non_negative=("amount", "base"), periods=("period",),
                              unique=("id_number", "period", "kind", "insurance_type")),
    "provident_fund": Rules(("id_number", "period", "base", "personal", "employer", "balance"),
                            non_negative=("base", "personal", "employer", "balance"), periods=("period",),
                            uscc=("employer_uscc",), unique=("id_number", "period", "employer_uscc")),
    "real_estate": Rules(("id_number", "cert_no", "use", "area", "share", "location_code", "acquired"),
                         positive=("area",), fractions=("share",), past_dates=("acquired",),
                         unique=("id_number", "cert_no")),
    "market_entity": Rules(("id_number", "uscc", "name", "role", "status"), non_negative=("registered_capital",),
                           fractions=("share",),
                           past_dates=("established",), uscc=("uscc",), unique=("id_number", "uscc", "role")),
    "vehicles_vessels": Rules(("id_number", "kind", "plate", "type", "status"), non_negative=("purchase_price",),
                              past_dates=("registered",), unique=("id_number", "plate")),
    "bank": Rules(("id_number", "bank", "account", "product", "period", "balance"), non_negative=("balance",),
                  periods=("period",), unique=("id_number", "account", "period")),
    "securities": Rules(("id_number", "firm", "account", "security_code", "quantity", "market_value"),
                        non_negative=("quantity", "market_value"), past_dates=("as_of",),
                        unique=("id_number", "account", "security_code")),
    "commercial_insurance": Rules(("id_number", "insurer", "policy_no", "type", "cash_value"),
                                  non_negative=("cash_value", "annual_premium"), past_dates=("effective",),
                                  unique=("id_number", "policy_no")),
    "internet_finance": Rules(("id_number", "platform", "product", "balance"), non_negative=("balance",),
                              past_dates=("as_of",), unique=("id_number", "platform", "product")),
}


def unexpected_field_check() -> Check:
    """Schema drift (a renamed or added field) makes the whole answer untrustworthy: a must-pass check."""
    import great_expectations as gx

    return Check(gx.expectations.ExpectColumnValuesToBeNull(column=EXTRA), "unexpected_field",
                 "出现接口未约定的字段（字段改名？），整批拒收 / a field the interface does not define (renamed?): "
                 "the whole batch is rejected", must_pass=True)


def _numeric(v) -> bool:
    """None or a finite number: not NaN, not infinite ("1e999" on the wire), not an integer beyond any float (an
    integer of 400 digits in a JSON answer, which pandas cannot take)."""
    if v is None:
        return True
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return False
    try:
        return math.isfinite(v)
    except OverflowError:
        return False


def _not_future(v, today: str) -> bool:
    if v is None:
        return True
    try:
        return dt.date.fromisoformat(str(v)).isoformat() <= today
    except ValueError:
        return False


def _month_not_future(v, month: str) -> bool:
    """A YYYY-MM month not after ``month``; other shapes are left to the period check."""
    return not (isinstance(v, str) and len(v) == 7 and v[4] == "-" and v > month)


def prepare_for(source: str):
    spec, rules = SPECS[source], RULES[source]

    def prepare(df: pd.DataFrame) -> pd.DataFrame:
        out = df.reindex(columns=[*spec.fields, EXTRA, BATCH_KEY]).astype(object).where(lambda d: d.notna(), None)
        today = dt.date.today().isoformat()
        for f in (*rules.non_negative, *rules.positive, *rules.fractions):
            out[f"{f}__is_number"] = out[f].map(_numeric)
            out[f"{f}__number"] = pd.to_numeric(out[f].map(lambda v: v if _numeric(v) else None), errors="coerce")
        for f in rules.past_dates:
            out[f"{f}__not_future"] = out[f].map(lambda v: _not_future(v, today))
        for f in rules.periods:
            out[f"{f}__not_future"] = out[f].map(lambda v: _month_not_future(v, today[:7]))
        out[EXTRA] = out[EXTRA].map(lambda v: None if v is None or v != v else ",".join(v))
        return out

    return prepare


def checks_for(source: str):
    def checks() -> list[Check]:
        import great_expectations as gx

        from schemas.expectations import ExpectColumnValuesToBeValidResidentIds, ExpectColumnValuesToBeValidUscc

        e, spec, rules = gx.expectations, SPECS[source], RULES[source]
        out = [Check(e.ExpectColumnValuesToNotBeNull(column=f), "required_field",
                     f"缺少必填字段 {f} / required field {f} missing") for f in rules.required]
        out.append(Check(ExpectColumnValuesToBeValidResidentIds(column="id_number"), "id_check_digit",
                         "身份证号校验位错误 / ID number fails its GB 11643 check character"))
        out += [Check(ExpectColumnValuesToBeValidUscc(column=f), "uscc_check_digit",
                      f"统一社会信用代码校验位错误 ({f}) / {f} fails its GB 32100 check character") for f in rules.uscc]
        out += [Check(e.ExpectColumnValuesToBeInSet(column=f, value_set=list(table)), "known_code",
                      f"{f} 代码未知 / unknown code in {f}") for f, table in spec.codes.items()]
        for f in (*rules.non_negative, *rules.positive, *rules.fractions):
            out.append(Check(e.ExpectColumnValuesToBeInSet(column=f"{f}__is_number", value_set=[True]), "number",
                             f"{f} 不是数字 / {f} is not a number"))
        out += [Check(e.ExpectColumnValuesToBeBetween(column=f"{f}__number", min_value=0), "non_negative",
                      f"{f} 为负数 / {f} is negative") for f in rules.non_negative]
        out += [Check(e.ExpectColumnValuesToBeBetween(column=f"{f}__number", min_value=0, strict_min=True),
                      "positive", f"{f} 应大于零 / {f} must be above zero") for f in rules.positive]
        out += [Check(e.ExpectColumnValuesToBeBetween(column=f"{f}__number", min_value=0, max_value=1, strict_min=True),
                      "fraction", f"{f} 应在 0 到 1 之间 / {f} must be a share in (0, 1]") for f in rules.fractions]
        out += [Check(e.ExpectColumnValuesToBeInSet(column=f"{f}__not_future", value_set=[True]), "not_future",
                      f"{f} 不是有效日期或在未来 / {f} is not a date or lies in the future") for f in rules.past_dates]
        out += [Check(e.ExpectColumnValuesToMatchRegex(column=f, regex=r"^\d{4}-(?:0[1-9]|1[0-2])$"), "period",
                      f"{f} 不是有效年月 / {f} is not a YYYY-MM month") for f in rules.periods]
        out += [Check(e.ExpectColumnValuesToBeInSet(column=f"{f}__not_future", value_set=[True]), "not_future",
                      f"{f} 在未来 / {f} lies in the future") for f in rules.periods]
        if rules.unique:
            out.append(Check(e.ExpectCompoundColumnsToBeUnique(column_list=[*rules.unique, BATCH_KEY]), "unique_row",
                             "同一批次中记录重复 / the same record appears twice in the batch"))
        out.append(unexpected_field_check())
        return out

    return checks
