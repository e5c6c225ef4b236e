"""A scan for personal data where it must not be: the store's files, the hub's logs, Airflow's task logs and its
metadata database (XCom included). The needles are the ID numbers and names of the people a run handled; each is
looked for as UTF-8 bytes and as it appears inside JSON (``\\uXXXX`` escapes), case-insensitively for the ID
number's final X. A finding names the file and the kind of needle, never the needle itself.

The encrypted store holds ID numbers and names only as AES-GCM ciphertexts, so a hit anywhere is a leak.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

SKIP_SUFFIXES = {".pyc", ".png"}


@dataclass(frozen=True)
class Finding:
    path: str
    kind: str  # id_number | name
    person: int  # the index of the person in the needles (not who they are)


def forms(text: str) -> set[bytes]:
    """The byte forms a text takes in files: UTF-8, JSON with ASCII escapes (lower and upper hex), and for an ID
    number ending in X, its lower-case spelling."""
    out = {text.encode("utf-8"), json.dumps(text)[1:-1].encode("ascii")}
    out.add(json.dumps(text)[1:-1].upper().replace("\\U", "\\u").encode("ascii"))
    if text[-1:] in "Xx":
        out |= {text.lower().encode(), text.upper().encode()}
    return out


def files_under(*roots: Path) -> list[Path]:
    found = []
    for root in roots:
        if root.is_file():
            found.append(root)
        elif root.is_dir():
            found += [p for p in root.rglob("*") if p.is_file() and p.suffix not in SKIP_SUFFIXES]
    return sorted(found)


def scan(paths: list[Path], people: list[tuple[str, str]]) -> list[Finding]:
    """Every place an ID number or a name of ``people`` ((id_number, name) pairs) appears in ``paths``."""
    needles = [(i, kind, form) for i, (idn, name) in enumerate(people)
               for kind, text in (("id_number", idn), ("name", name)) if text for form in forms(text)]
    findings = set()
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError:
            continue
        for i, kind, form in needles:
            if form in data:
                findings.add(Finding(str(path), kind, i))
    return sorted(findings, key=lambda f: (f.path, f.kind, f.person))
