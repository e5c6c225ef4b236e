"""Tables for spreadsheets: CSV (UTF-8 with a byte-order mark, so Excel opens Chinese text correctly) and Excel
(.xlsx, openpyxl). A cell that a spreadsheet would run as a formula (=, +, -, @, tab, CR) is prefixed with an
apostrophe: an exported value can never execute."""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from typing import Any, Iterable

FORMATS = {"csv": "text/csv; charset=utf-8",
           "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Column:
    key: str
    zh: str
    en: str


def cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    if isinstance(value, (bool, int, float)):
        return value
    text = value if isinstance(value, str) else str(value)
    return "'" + text if text.startswith(_FORMULA) else text


def to_csv(rows: Iterable[dict], columns: list[Column], lang: str) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([c.en if lang == "en" else c.zh for c in columns])
    for r in rows:
        w.writerow([cell(r.get(c.key)) for c in columns])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def to_xlsx(rows: Iterable[dict], columns: list[Column], lang: str, title: str) -> bytes:
    from openpyxl import Workbook  # deliberate: openpyxl is imported by the exports that need it, not at start-up
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    from openpyxl.styles import Font

    wb = Workbook()
    ws = wb.active
    ws.title = title[:31]
    ws.append([c.en if lang == "en" else c.zh for c in columns])
    for c in ws[1]:
        c.font = Font(bold=True)
    widths = [len(c.en if lang == "en" else c.zh) * 2 for c in columns]
    for r in rows:
        # control characters (a refused lookup's text may hold any) cannot be written to .xlsx: shown as U+FFFD
        values = [ILLEGAL_CHARACTERS_RE.sub("\ufffd", v) if isinstance(v, str) else v
                  for v in (cell(r.get(c.key)) for c in columns)]
        ws.append(values)
        widths = [max(w, min(60, len(str(v)))) for w, v in zip(widths, values)]
    for i, w in enumerate(widths):
        ws.column_dimensions[ws.cell(row=1, column=i + 1).column_letter].width = max(8, w + 2)
    ws.freeze_panes = "A2"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
