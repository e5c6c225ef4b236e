"""The hub's vocabulary, once: purposes, programmes and screening answers, relations, statuses and sources, each
code with its names in Chinese and English (``*_NAMES``: code -> (zh, en)).

Requests, authorizations, the access policy, the suites, the assessment, the DCI API, the console and the DAGs take
their codes from here; the agencies' wire codes for them are in schemas.codes and schemas.contracts. Imports nothing
heavy: a DAG file may read it at parse time.
"""

from __future__ import annotations

from schemas.sources import (  # noqa: F401 (re-exported: the one list of sources)
    AGENCY_SOURCES,
    FEDERATED_SOURCES,
    FINANCIAL_SOURCES,
    SOURCE_KEYS,
    SOURCE_NAMES,
    SOURCES,
    Source,
)

# Purposes (用途): what a department asks for a verification for. A request, its authorization, an access rule and a
# DCI search each name one.
PURPOSE_NAMES: dict[str, tuple[str, str]] = {
    "dibao": ("最低生活保障", "minimum living guarantee"),
    "low_income": ("低收入家庭", "low-income family"),
    "tekun": ("特困人员", "persons in extreme poverty"),
    "temporary": ("临时救助", "temporary assistance"),
    "medical": ("医疗救助", "medical assistance"),
    "housing": ("住房救助", "housing assistance"),
    "education": ("教育救助", "education assistance"),
    "employment": ("就业救助", "employment assistance"),
}
PURPOSES: dict[str, str] = {k: f"{zh} / {en}" for k, (zh, en) in PURPOSE_NAMES.items()}  # code -> "zh / en"

# Programmes: what a record's assessment screens the household for (assessment.screening.<programme>), what an
# access rule may answer, what other regions' platforms answer (remote_registry).
PROGRAMME_NAMES: dict[str, tuple[str, str]] = {
    "dibao": PURPOSE_NAMES["dibao"],
    "low_income": PURPOSE_NAMES["low_income"],
    "tekun": ("特困人员供养", "support for persons in extreme poverty"),  # the programme (救助供养) of the purpose
    "expenditure_poverty": ("支出型困难家庭", "expenditure poverty"),
}
PROGRAMMES = tuple(PROGRAMME_NAMES)
# the programmes that are also purposes: assistance granted under them makes a recipient whom re-checks follow
PROGRAMME_OF_PURPOSE: dict[str, str] = {p: p for p in PROGRAMMES if p in PURPOSES}
ASSISTANCE_PROGRAMMES = tuple(PROGRAMME_OF_PURPOSE.values())

# Screening answers (assessment.screening.<programme>.answer)
YES, NO, REVIEW = "yes", "no", "needs_review"
ANSWER_NAMES: dict[str, tuple[str, str]] = {YES: ("符合", "yes"), NO: ("不符合", "no"),
                                            REVIEW: ("需人工复核", "needs review")}
ANSWERS = tuple(ANSWER_NAMES)

# Relation to the head of household: what a request names and household registration answers (schemas.codes holds
# registration's codes for them). "child" is what an applicant may write without saying son or daughter;
# registration always says which, so it has no registration code.
RELATION_NAMES: dict[str, tuple[str, str]] = {
    "head": ("户主", "head"),
    "spouse": ("配偶", "spouse"),
    "son": ("子", "son"),
    "daughter": ("女", "daughter"),
    "child": ("子女", "child"),
    "grandchild": ("孙子女", "grandchild"),
    "parent": ("父母", "parent"),
    "other": ("其他", "other"),
}
RELATIONS = tuple(RELATION_NAMES)

# Sex (schemas.codes: GB/T 2261.1 codes)
SEX_NAMES: dict[str, tuple[str, str]] = {"male": ("男", "male"), "female": ("女", "female")}
SEXES = tuple(SEX_NAMES)

# Registration status of a person (户口状态; schemas.codes: registration's codes)
PERSON_STATUS_NAMES: dict[str, tuple[str, str]] = {
    "normal": ("正常", "normal"), "deceased": ("死亡", "deceased"), "moved_out": ("迁出", "moved out"),
}
PERSON_STATUSES = tuple(PERSON_STATUS_NAMES)

# Status of a department's request (core.store.Request.status)
REQUEST_STATUS_NAMES: dict[str, tuple[str, str]] = {
    "signing": ("待成员签署", "waiting for signatures"), "received": ("已受理", "received"), "running": ("核对中", "running"), "published": ("已出具报告", "published"),
    "refused": ("未获授权", "refused"), "failed": ("失败", "failed"),
}
REQUEST_STATUSES = tuple(REQUEST_STATUS_NAMES)

# Status of one source's fetch, as a record says it: nothing partial is published as complete
SOURCE_STATUS_NAMES: dict[str, tuple[str, str]] = {
    "complete": ("完整", "complete"), "incomplete": ("不完整", "incomplete"),
    "unavailable": ("不可用", "unavailable"), "refused": ("未获授权", "refused"),
}
SOURCE_STATUSES = tuple(SOURCE_STATUS_NAMES)

# every status and answer by its code, as the console labels them
STATUS_NAMES: dict[str, tuple[str, str]] = {**PERSON_STATUS_NAMES, **REQUEST_STATUS_NAMES, **SOURCE_STATUS_NAMES,
                                            **ANSWER_NAMES}
