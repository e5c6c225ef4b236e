"""Other regions' verification platforms (``remote_registry``): the canonical row of a peer's answer about a member
and its validation suite.

One row per member a peer knows (connectors.dci_remote builds it from the peer's DCI Member record): where the
member is registered and how, the peer's record the answer comes from, the member's own income there and the
peer's household figures and screening answers. A peer is another hub, not an agency: what it says is checked like
any source before it reaches a record (well-formed, in the code tables, numbers that are numbers).
"""

from __future__ import annotations

import math
import re

import pandas as pd

from core.ids import PLATFORM
from schemas.checks import BATCH_KEY, Check
from schemas.codes import valid_id_mask
from schemas.vocabulary import ANSWERS, PERSON_STATUSES, PROGRAMMES, RELATIONS

# great_expectations is imported inside checks(), deliberately: it is heavy and needed only when a suite is built
# (a validation run), never when this module is imported (by a stage, or a DAG file at parse time).

SOURCE = "remote_registry"

COLUMNS = {
    "id_number": "the member's resident ID number (the one the hub asked about)",
    "registry": "the peer that answered: its platform code (FED-... or HUB-...)",
    "household_ref": "the household in the peer's records, by the peer's pseudonym for this hub",
    "record_version": "the version of the peer's household record",
    "record_as_of": "the moment the peer's record describes (ISO 8601)",
    "record_sha256": "SHA-256 of the peer's whole record (what its ledger vouches for)",
    "status": "registration status at the peer: normal, deceased, moved_out",
    "relation": "relation to the head of the peer's household",
    "division_code": "the peer's household's division code",
    "income_total": "the member's own income in the peer's record (yuan), over income_months months",
    "income_months": "months the member's income covers",
    "members_counted": "members the peer's household counts",
    "income_per_capita": "the peer's household's monthly income per capita (yuan)",
    "dibao": "the peer's screening answer: yes, no, needs_review",
    "low_income": "the peer's screening answer",
    "tekun": "the peer's screening answer",
    "expenditure_poverty": "the peer's screening answer",
}
REQUIRED = ("id_number", "registry", "household_ref", "record_version", "record_sha256")
_PLATFORM = re.compile(PLATFORM)
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _number(v, *, whole: bool = False, minimum: float = 0) -> bool:
    """None, or a finite number (a whole one when ``whole``) not below ``minimum``."""
    if v is None:
        return True
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return False
    try:
        return math.isfinite(v) and v >= minimum and (not whole or float(v).is_integer())
    except OverflowError:
        return False


def prepare(df: pd.DataFrame) -> pd.DataFrame:
    out = df.reindex(columns=[*COLUMNS, BATCH_KEY]).astype(object).where(lambda d: d.notna(), None)
    out["id_check_ok"] = valid_id_mask(out["id_number"].tolist())
    out["registry_ok"] = out["registry"].map(lambda v: isinstance(v, str) and bool(_PLATFORM.fullmatch(v)))
    out["reference_ok"] = out["household_ref"].map(lambda v: v is None or (isinstance(v, str) and 0 < len(v) <= 64))
    out["sha_ok"] = out["record_sha256"].map(lambda v: v is None or (isinstance(v, str) and bool(_HEX64.fullmatch(v))))
    out["version_ok"] = out["record_version"].map(lambda v: v is not None and _number(v, whole=True, minimum=1))
    out["numbers_ok"] = [all(_number(row[f]) for f in ("income_total", "income_per_capita"))
                         and all(_number(row[f], whole=True) for f in ("income_months", "members_counted"))
                         for _, row in out.iterrows()]
    for f in ("status", "relation", *PROGRAMMES, "division_code", "record_as_of"):
        out[f] = out[f].map(lambda v: v if v is None or isinstance(v, str) else repr(type(v)))
    return out


def checks() -> list[Check]:
    import great_expectations as gx

    e = gx.expectations
    return [
        *(Check(e.ExpectColumnValuesToNotBeNull(column=c), "required_field",
                f"缺少必填字段 {c} / required field {c} missing") for c in REQUIRED),
        Check(e.ExpectColumnValuesToBeInSet(column="id_check_ok", value_set=[True]), "id_check_digit",
              "身份证号校验位错误 / ID number fails its GB 11643 check character"),
        Check(e.ExpectColumnValuesToBeInSet(column="registry_ok", value_set=[True]), "known_registry",
              "应答平台代码格式错误 / the answering platform's code is malformed"),
        Check(e.ExpectColumnValuesToBeInSet(column="reference_ok", value_set=[True]), "household_reference",
              "户的标识格式错误 / the household reference is malformed"),
        Check(e.ExpectColumnValuesToBeInSet(column="sha_ok", value_set=[True]), "record_hash",
              "记录摘要不是 SHA-256 / the record hash is not a SHA-256"),
        Check(e.ExpectColumnValuesToBeInSet(column="version_ok", value_set=[True]), "record_version",
              "记录版本不是正整数 / the record version is not a positive whole number"),
        Check(e.ExpectColumnValuesToBeInSet(column="numbers_ok", value_set=[True]), "number",
              "收入或人数不是非负数 / an income or a count is not a non-negative number"),
        Check(e.ExpectColumnValuesToBeInSet(column="status", value_set=sorted(PERSON_STATUSES)),
              "known_status_code",
              "户口状态代码未知 / unknown registration status"),
        Check(e.ExpectColumnValuesToBeInSet(column="relation", value_set=sorted(RELATIONS)),
              "known_relation_code", "与户主关系代码未知 / unknown relation code"),
        *(Check(e.ExpectColumnValuesToBeInSet(column=p, value_set=list(ANSWERS)), "known_answer",
                f"{p} 认定结论未知 / unknown screening answer in {p}")
          for p in PROGRAMMES),
        Check(e.ExpectCompoundColumnsToBeUnique(column_list=["id_number", "registry", "household_ref", BATCH_KEY]),
              "unique_row", "同一批次中记录重复 / the same record appears twice in the batch"),
    ]
