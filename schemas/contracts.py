"""The interfaces of the eleven agencies: the contract the simulated agencies serve and the hub's connectors
read. Wire format, credential scheme, batch limit, paging, field names and code tables. Real agencies differ; so
do these (pinyin abbreviations, Chinese CSV headers, camelCase, amounts in 10,000 yuan, dates with and without
dashes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from schemas.codes import PERSON_STATUS, RELATION_CODES, SEX


def _inv(table: dict[str, str]) -> dict[str, str]:
    return {v: k for k, v in table.items()}


def _compact_date(value: str) -> str:  # 2025-01-31 -> 20250131, 2025-01 -> 202501
    return value.replace("-", "")


def _wan(value: float) -> float:  # yuan -> 10,000 yuan (万元)
    return round(value / 10000.0, 4)


def _dashed(value: str) -> str:  # 20250131 -> 2025-01-31, 202501 -> 2025-01
    return f"{value[:4]}-{value[4:6]}-{value[6:8]}" if len(value) == 8 else f"{value[:4]}-{value[4:6]}"


def _yuan(value: float) -> float:  # 10,000 yuan -> yuan
    return round(value * 10000.0, 2)


# a transform on the wire and its inverse for reading
INVERSE = {_compact_date: _dashed, _wan: _yuan}


@dataclass(frozen=True)
class AgencySpec:
    key: str
    name: str
    wire: str  # json | xml | csv (csv is GBK-encoded)
    auth: str  # api_key | hmac
    max_batch: int
    fields: dict[str, str]  # canonical field -> wire field (the first is the ID number)
    codes: dict[str, dict[str, str]] = field(default_factory=dict)  # canonical field -> value -> wire code
    transforms: dict[str, Callable] = field(default_factory=dict)  # canonical field -> value transform
    page_size: int | None = None  # rows per page when the agency paginates
    ids_field: str = "ids"  # name of the ID list in a JSON request
    path: str = "query"  # relative to the agency's base URL
    members_path: str | None = None  # household registration only: every member of a person's household (户成员查询)
    # the largest answer (one call, one page) the hub reads; a larger one is TOO_LARGE. At least 40 times the largest
    # full batch of the simulated population (1,000 households: bank 102 KB, tax 34 KB, the others under 23 KB)
    max_answer_bytes: int = 1 << 20
    # a batch exchange (批量核对): the request names each person's authorization reference beside their ID number
    # (JSON: the list ``refs_field`` parallel to ``ids_field``; XML: a ``ref`` attribute on each ``id``), and every
    # answered row carries its person's reference in ``ref_field`` (a column of its own in CSV)
    refs_field: str = "sqbhList"
    ref_field: str = "sqbh"

    @property
    def id_field(self) -> str:
        return next(iter(self.fields.values()))


SPECS: dict[str, AgencySpec] = {
    s.key: s
    for s in [
        AgencySpec(
            key="household", name="公安户籍", wire="json", auth="api_key", max_batch=100, ids_field="sfzhList",
            path="api/v1/persons/query", members_path="api/v1/household/members",
            fields={"id_number": "sfzh", "name": "xm", "sex": "xb", "birth_date": "csrq", "household_no": "hh",
                    "relation": "yhzgx", "status": "zt", "address_code": "dzbm"},
            codes={"sex": _inv(SEX), "relation": RELATION_CODES, "status": _inv(PERSON_STATUS)},
            transforms={"birth_date": _compact_date},
        ),
        AgencySpec(
            key="tax", name="税务", wire="xml", auth="hmac", max_batch=50, max_answer_bytes=2 << 20,
            fields={"id_number": "nsrsbh", "period": "ssq", "income_type": "sdxm", "amount": "sre", "tax": "ynse",
                    "withholder_uscc": "kjywrdm"},
            codes={"income_type": {"wages": "0101", "labour": "0102", "business": "0103", "property_lease": "0104"}},
        ),
        AgencySpec(
            key="social_insurance", name="人社社保", wire="json", auth="api_key", max_batch=100, page_size=200,
            ids_field="aac002List",
            fields={"id_number": "aac002", "period": "aae002", "kind": "lx", "insurance_type": "aae140",
                    "base": "aae180", "amount": "je"},
            codes={"kind": {"contribution": "1", "benefit": "2"},
                   "insurance_type": {"pension": "110", "medical": "310", "unemployment": "210"}},
            transforms={"period": _compact_date},
        ),
        AgencySpec(
            key="provident_fund", name="住房公积金中心", wire="csv", auth="api_key", max_batch=200, ids_field="zjhm",
            ref_field="授权编号",
            fields={"id_number": "证件号码", "period": "年月", "base": "缴存基数", "personal": "个人缴存额",
                    "employer": "单位缴存额", "balance": "账户余额", "employer_name": "单位名称",
                    "employer_uscc": "单位统一社会信用代码"},
        ),
        AgencySpec(
            key="real_estate", name="不动产登记中心", wire="xml", auth="hmac", max_batch=20,
            fields={"id_number": "qlrzjh", "cert_no": "bdcqzh", "use": "ghyt", "area": "jzmj", "share": "gyfe",
                    "location_code": "xzqdm", "address": "zl", "acquired": "djsj", "mortgaged": "dyzt"},
            codes={"use": {"residential": "10", "commercial": "20", "parking": "30", "other": "90"},
                   "mortgaged": {True: "1", False: "0"}},
        ),
        AgencySpec(
            key="market_entity", name="市场监管", wire="json", auth="api_key", max_batch=100, page_size=100,
            ids_field="zjhmList",
            fields={"id_number": "zjhm", "uscc": "tyshxydm", "name": "qymc", "role": "js",
                    "registered_capital": "zczb", "share": "cgbl", "status": "djzt", "established": "clrq"},
            codes={"role": {"legal_rep": "01", "shareholder": "02", "operator": "03"},
                   "status": {"active": "1", "revoked": "2", "cancelled": "3"}},
            transforms={"registered_capital": _wan, "established": _compact_date},
        ),
        AgencySpec(
            key="vehicles_vessels", name="公安交管与海事", wire="csv", auth="hmac", max_batch=100, ref_field="授权编号",
            fields={"id_number": "证件号码", "kind": "类别", "plate": "号牌号码", "type": "车船类型",
                    "purchase_price": "购置价格", "registered": "登记日期", "status": "状态",
                    "disability_adapted": "残疾人专用"},
            codes={"kind": {"vehicle": "1", "vessel": "2"},
                   "type": {"car": "K33", "motorcycle": "M21", "truck": "H11", "fishing_vessel": "C01",
                            "cargo_vessel": "C02"},
                   "status": {"normal": "A", "scrapped": "E", "seized": "H"},
                   "disability_adapted": {True: "是", False: "否"}},
        ),
        AgencySpec(
            key="bank", name="银行", wire="json", auth="hmac", max_batch=50, max_answer_bytes=4 << 20,
            fields={"id_number": "zjhm", "bank": "yhmc", "account": "zh", "product": "cplx", "period": "ny",
                    "balance": "ye"},
            codes={"product": {"demand": "01", "time_deposit": "02", "wealth": "03"}},
            transforms={"period": _compact_date},
        ),
        AgencySpec(
            key="securities", name="证券公司", wire="xml", auth="api_key", max_batch=50,
            fields={"id_number": "zjhm", "firm": "qsmc", "account": "zjzh", "security_code": "zqdm",
                    "security_name": "zqmc", "quantity": "cysl", "market_value": "sz", "as_of": "rq"},
        ),
        AgencySpec(
            key="commercial_insurance", name="商业保险公司", wire="csv", auth="api_key", max_batch=100, page_size=100,
            ref_field="授权编号",
            fields={"id_number": "证件号码", "insurer": "保险公司", "policy_no": "保单号", "product": "产品名称",
                    "type": "险种", "cash_value": "现金价值", "annual_premium": "年缴保费", "effective": "生效日期"},
            codes={"type": {"life": "1", "annuity": "2", "health": "3", "accident": "4"}},
        ),
        AgencySpec(
            key="internet_finance", name="互联网金融平台", wire="json", auth="hmac", max_batch=100, ids_field="idNos",
            fields={"id_number": "idNo", "platform": "platform", "product": "productName", "balance": "balance",
                    "as_of": "asOf"},
        ),
    ]
}


_PLANS: dict[tuple[str, int], tuple] = {}  # (what, id of the contract) -> (the contract, its plan)


def _plan(what: str, spec: AgencySpec, make: Callable[[AgencySpec], tuple]) -> tuple:
    """``make(spec)``, worked out once per contract (kept with the contract, so that an id used again by another
    contract is not taken for it)."""
    cached = _PLANS.get((what, id(spec)))
    if cached is None or cached[0] is not spec:
        cached = _PLANS[(what, id(spec))] = (spec, make(spec))
    return cached[1]


def _writers(spec: AgencySpec) -> tuple:
    """Per field: (canonical, wire, transform or None, code table or None): an agency writes every row of every
    answer with them."""
    return _plan("write", spec, lambda c: tuple((canon, wire, c.transforms.get(canon), c.codes.get(canon))
                                                for canon, wire in c.fields.items()))


def to_wire(spec: AgencySpec, row: dict) -> dict:
    """A canonical row as the agency writes it."""
    out = {}
    for canon, wire, transform, codes in _writers(spec):
        value = row.get(canon)
        if value is not None:
            if transform is not None:
                value = transform(value)
            if codes is not None:
                value = codes.get(value, value)
        out[wire] = value
    return out


# canonical fields that hold numbers (XML and CSV carry them as text)
NUMBERS = frozenset({"amount", "tax", "base", "personal", "employer", "balance", "area", "share", "registered_capital",
                     "purchase_price", "market_value", "cash_value", "annual_premium"})
INTEGERS = frozenset({"quantity"})
EXTRA = "_unexpected_fields"  # names (never values) of wire fields the contract does not know


def _number(value, integer: bool):
    try:
        return int(value) if integer else float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an integer beyond any float (10**400)
        return value  # left as it came: validation says what is wrong with it


def _readers(spec: AgencySpec) -> tuple:
    """Per field: (canonical, wire, inverse code table or None, inverse transform or None, number kind or None)."""
    def make(c: AgencySpec) -> tuple:
        out = []
        for canon, wire in c.fields.items():
            codes = {str(v): k for k, v in c.codes[canon].items()} if canon in c.codes else None
            kind = "int" if canon in INTEGERS else "float" if canon in NUMBERS else None
            out.append((canon, wire, codes, c.transforms.get(canon), kind))
        return tuple(out)

    return _plan("read", spec, make)


def from_wire(spec: AgencySpec, row: dict) -> dict:
    """An agency's row as a canonical row: codes to values, units and dates to canonical form, text to numbers.

    Nothing is dropped silently: a value that cannot be read stays as it came, a missing field is None, and the
    names of fields the contract does not know are listed under EXTRA."""
    out = {}
    for canon, wire, codes, forward, kind in _readers(spec):
        value = row.get(wire)
        if value == "" or value is None:
            out[canon] = None
            continue
        if codes is not None:
            value = codes.get(str(value), value)
        elif forward is not None:
            if forward is _wan:
                value = _number(value, False)
            if isinstance(value, (str, float, int)) and not isinstance(value, bool):
                try:
                    value = INVERSE[forward](value)
                except (TypeError, ValueError, IndexError, OverflowError):
                    pass
        elif kind is not None and isinstance(value, str):
            value = _number(value, kind == "int")
        out[canon] = value
    if len(row) == len(spec.fields) and all(w in row for w in spec.fields.values()):
        return out
    extra = sorted(set(row) - set(spec.fields.values()))
    if extra:
        out[EXTRA] = extra
    return out
