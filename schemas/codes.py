"""Code tables and check characters used across sources.

Resident identity number (GB 11643-1999): 6-digit address code, birth date YYYYMMDD, 3-digit sequence
(odd = male), check character over the first 17 digits.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK_CHARS = "10X98765432"

# Anshan (鞍山市) county-level divisions: code -> (name, urban or rural)
ANSHAN_DIVISIONS: dict[str, tuple[str, str]] = {
    "210302": ("铁东区", "urban"),
    "210303": ("铁西区", "urban"),
    "210304": ("立山区", "urban"),
    "210311": ("千山区", "urban"),
    "210321": ("台安县", "rural"),
    "210323": ("岫岩满族自治县", "rural"),
    "210381": ("海城市", "rural"),
}
CITY = ("210300", "鞍山市", "Anshan")
DIVISIONS_EN = {"210302": "Tiedong District", "210303": "Tiexi District", "210304": "Lishan District",
                "210311": "Qianshan District", "210321": "Tai'an County", "210323": "Xiuyan Manchu Autonomous County",
                "210381": "Haicheng City"}
# Departments' codes are <agency>-<division> (MZ-210302: the civil-affairs bureau of 铁东区)
AGENCY_NAMES: dict[str, tuple[str, str]] = {
    "MZ": ("民政局", "Civil Affairs Bureau"), "YB": ("医疗保障局", "Healthcare Security Bureau"),
    "ZJ": ("住房和城乡建设局", "Housing and Urban-Rural Development Bureau"), "JY": ("教育局", "Education Bureau"),
    "RS": ("人力资源和社会保障局", "Human Resources and Social Security Bureau"),
}


def division_name(code: str | None) -> tuple[str, str] | None:
    """A division's name in Chinese and English (the city's own code too), None for a code not of Anshan."""
    if code == CITY[0]:
        return CITY[1], CITY[2]
    return (ANSHAN_DIVISIONS[code][0], DIVISIONS_EN[code]) if code in ANSHAN_DIVISIONS else None


def department_name(code: str | None) -> tuple[str, str] | None:
    """A department's name in Chinese and English from its code, when its agency and division are known (e.g.
    MZ-210302: 鞍山市铁东区民政局, Civil Affairs Bureau, Tiedong District, Anshan); None otherwise."""
    agency, _, division = (code or "").partition("-")
    if agency not in AGENCY_NAMES or division not in ANSHAN_DIVISIONS:
        return None
    zh, en = AGENCY_NAMES[agency]
    return f"{CITY[1]}{ANSHAN_DIVISIONS[division][0]}{zh}", f"{en}, {DIVISIONS_EN[division]}, {CITY[2]}"


# Registration's codes for the vocabulary's names (schemas.vocabulary: RELATIONS, PERSON_STATUSES, SEXES)

# Relation to the head of household (GB/T 4761 family-relation codes, the subset the hub uses; the vocabulary's
# "child" has none: registration always says son or daughter)
RELATIONS: dict[str, str] = {
    "02": "head",
    "10": "spouse",
    "20": "son",
    "30": "daughter",
    "40": "grandchild",
    "50": "parent",
    "99": "other",
}
RELATION_CODES = {v: k for k, v in RELATIONS.items()}

# Household-registration status (户口状态)
PERSON_STATUS: dict[str, str] = {"1": "normal", "2": "deceased", "3": "moved_out"}

# Sex (GB/T 2261.1)
SEX: dict[str, str] = {"1": "male", "2": "female"}


def id_check_char(first17: str) -> str:
    total = sum(int(c) * w for c, w in zip(first17, ID_WEIGHTS))
    return ID_CHECK_CHARS[total % 11]


def is_valid_id(value: str) -> bool:
    """Format, birth date and check character of a resident ID number."""
    if not isinstance(value, str) or len(value) != 18 or not value.isascii() or not value[:17].isdigit():
        return False
    try:
        dt.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return False
    return value[17].upper() == id_check_char(value[:17])


def valid_id_mask(values) -> np.ndarray:
    """Vectorized check-character test over a sequence of strings (True where the check character holds).

    Works on the bytes of the IDs with numpy; anything not 18 ASCII characters with 17 leading digits is False.
    """
    arr = np.asarray([v if isinstance(v, str) else "" for v in values], dtype="U18")
    ok_len = np.char.str_len(arr) == 18
    raw = np.char.encode(np.where(ok_len, arr, "0" * 18), "ascii", errors="replace")
    codes = np.frombuffer(raw.astype("S18").tobytes(), dtype=np.uint8).reshape(-1, 18) if len(arr) else np.zeros((0, 18), np.uint8)
    digits = codes[:, :17].astype(np.int64) - ord("0")
    ok_digits = ((digits >= 0) & (digits <= 9)).all(axis=1)
    sums = (np.clip(digits, 0, 9) * np.asarray(ID_WEIGHTS)).sum(axis=1) % 11
    expected = np.frombuffer(ID_CHECK_CHARS.encode(), dtype=np.uint8)[sums]
    last = codes[:, 17].copy()
    last[last == ord("x")] = ord("X")
    return ok_len & ok_digits & (last == expected)


def sex_from_id(value: str) -> str:
    return "male" if int(value[16]) % 2 == 1 else "female"


def birth_date_from_id(value: str) -> dt.date:
    return dt.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))


def mask_id(value: str) -> str:
    """An ID number as shown to people who may see that it exists but not what it is."""
    return value[:4] + "*" * 10 + value[14:] if len(value) == 18 else "*" * len(value)
