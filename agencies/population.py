"""A deterministic synthetic population of Anshan households.

Household ``k`` of seed ``s`` depends only on (s, k), so any household can be regenerated alone (for
``hub agencies sample-request``) and a population streams in bounded memory.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from typing import Iterator

from schemas.codes import ANSHAN_DIVISIONS, id_check_char

SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰志红建国文斌辉鹏宇浩然欣怡子涵梓轩雨桐佳琪博"

REFERENCE_DATE = dt.date(2026, 1, 1)  # ages are computed against this date, so data never drift


@dataclass(frozen=True)
class Person:
    id_number: str
    name: str
    sex: str  # male|female
    birth_date: dt.date
    relation: str  # head, spouse, son, daughter, grandchild, parent
    status: str  # normal, deceased, moved_out
    address_code: str


@dataclass(frozen=True)
class Household:
    index: int
    household_no: str
    division: str
    area_type: str  # urban|rural
    members: list[Person] = field(default_factory=list)


def _id_number(rng: random.Random, address: str, birth: dt.date, sex: str) -> str:
    seq = rng.randrange(0, 500) * 2 + (1 if sex == "male" else 0)
    first17 = f"{address}{birth:%Y%m%d}{seq:03d}"
    return first17 + id_check_char(first17)


def _birth(rng: random.Random, age_low: int, age_high: int) -> dt.date:
    age_days = rng.randrange(age_low * 365 + 1, age_high * 365 + 364)
    return REFERENCE_DATE - dt.timedelta(days=age_days)


def _name(rng: random.Random, surname: str) -> str:
    return surname + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))


def household(seed: int, k: int) -> Household:
    rng = random.Random(f"hub-population:{seed}:{k}")
    division = rng.choice(sorted(ANSHAN_DIVISIONS))
    area_type = ANSHAN_DIVISIONS[division][1]
    surname = rng.choice(SURNAMES)
    plan: list[tuple[str, str, int, int]] = []  # relation, sex, age range
    head_sex = rng.choice(("male", "female"))
    plan.append(("head", head_sex, 22, 85))
    if rng.random() < 0.7:
        plan.append(("spouse", "female" if head_sex == "male" else "male", 22, 85))
    for _ in range(rng.choice((0, 0, 1, 1, 1, 2, 2, 3))):
        sex = rng.choice(("male", "female"))
        plan.append(("son" if sex == "male" else "daughter", sex, 0, 30))
    if rng.random() < 0.2:
        for sex in rng.sample(("male", "female"), rng.choice((1, 2))):
            plan.append(("parent", sex, 60, 95))
    if rng.random() < 0.1:
        plan.append(("grandchild", rng.choice(("male", "female")), 0, 10))
    plan = plan[:7]

    members = []
    head_age = None
    for relation, sex, lo, hi in plan:
        if relation == "head":
            birth = _birth(rng, lo, hi)
            head_age = (REFERENCE_DATE - birth).days // 365
        elif relation in ("son", "daughter"):
            birth = _birth(rng, 0, max(1, min(hi, (head_age or 40) - 20)))
        elif relation == "parent":
            birth = _birth(rng, max(lo, (head_age or 40) + 18), max(hi, (head_age or 40) + 20))
        else:
            birth = _birth(rng, lo, hi)
        status = "normal"
        if relation != "head":
            roll = rng.random()
            status = "deceased" if roll < 0.02 else "moved_out" if roll < 0.05 else "normal"
        member_surname = surname if relation in ("head", "son", "daughter", "grandchild") else rng.choice(SURNAMES)
        members.append(
            Person(
                id_number=_id_number(rng, division, birth, sex),
                name=_name(rng, member_surname),
                sex=sex,
                birth_date=birth,
                relation=relation,
                status=status,
                address_code=division,
            )
        )
    household_no = f"{division}{k:09d}"
    return Household(index=k, household_no=household_no, division=division, area_type=area_type, members=members)


def households(seed: int, n: int) -> Iterator[Household]:
    for k in range(n):
        yield household(seed, k)
