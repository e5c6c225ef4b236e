"""Unified social credit code (统一社会信用代码, GB 32100-2015) and the organization code inside it (GB 11714-1997).

A USCC has 18 characters: registration authority (1), organization category (1), division code (6),
organization code (9, positions 9-17, with its own GB 11714 check character) and a check character over the
first 17. Its charset is the digits and the capital letters without I, O, S, V and Z (values 0-30); the
weight of position i (1-based) is 3^(i-1) mod 31; check = (31 - sum mod 31) mod 31.

Some live codes fail the check (older registrations): callers quarantine them, they do not drop them.
"""

from __future__ import annotations

USCC_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_VALUES = {c: i for i, c in enumerate(USCC_CHARSET)}
USCC_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))  # 1 3 9 27 19 26 16 17 20 29 25 13 8 24 10 30 28

# GB 11714: body of 8 digits or capital letters (A=10 ... Z=35), check = 11 - (sum mod 11); 10 -> X, 11 -> 0
ORG_CODE_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


def uscc_check_char(first17: str) -> str:
    """The check character of a USCC from its first 17 characters (ValueError outside the charset)."""
    if len(first17) != 17:
        raise ValueError("a USCC body has 17 characters")
    try:
        total = sum(USCC_VALUES[c] * w for c, w in zip(first17, USCC_WEIGHTS))
    except KeyError:
        raise ValueError("character outside the USCC charset") from None
    return USCC_CHARSET[(31 - total % 31) % 31]


def is_valid_uscc(code: object) -> bool:
    """Length, charset and check character of a USCC (upper case only, as issued)."""
    if not isinstance(code, str) or len(code) != 18 or any(c not in USCC_VALUES for c in code):
        return False
    return code[17] == uscc_check_char(code[:17])


def _org_value(c: str) -> int:
    return int(c) if c.isdigit() else ord(c) - ord("A") + 10


def org_code_check_char(first8: str) -> str:
    """The check character of an organization code (GB 11714) from its first 8 characters."""
    if len(first8) != 8 or not all(c.isdigit() or "A" <= c <= "Z" for c in first8):
        raise ValueError("an organization code body has 8 digits or capital letters")
    c9 = 11 - sum(_org_value(c) * w for c, w in zip(first8, ORG_CODE_WEIGHTS)) % 11
    return "X" if c9 == 10 else "0" if c9 == 11 else str(c9)
