"""Tables for spreadsheets: CSV (UTF-8 with a byte-order mark, so Excel opens Chinese text correctly) and Excel
(.xlsx, openpyxl). A cell that a spreadsheet would run as a formula (=, +, -, @, tab, CR) is prefixed with an
apostrophe: an exported value can never execute.

Times are Beijing time (UTC+8, what the hub's users read on their clocks), and a column of times says so in its heading;
in Excel they are date-time cells, not text."""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from typing import Any, Iterable

FORMATS = {"csv": "text/csv; charset=utf-8",
           "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
_FORMULA = ("=", "+", "-", "@", "\t", "\r")
BEIJING = dt.timezone(dt.timedelta(hours=8), "CST")  # China has one time zone and no daylight saving
TZ_LABEL = ("北京时间", "Beijing time")
XLSX_TIME = "yyyy-mm-dd hh:mm:ss"


def beijing(value: dt.datetime) -> dt.datetime:
    """An aware time (a naive one is taken as UTC, as the store keeps them) in Beijing time."""
    return (value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)).astimezone(BEIJING)


@dataclass(frozen=True)
class Column:
    key: str
    zh: str
    en: str


def cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return beijing(value).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, (bool, int, float)):
        return value
    text = value if isinstance(value, str) else str(value)
    return "'" + text if text.startswith(_FORMULA) else text


def headings(rows: list[dict], columns: list[Column], lang: str) -> list[str]:
    """Each column's heading in ``lang``; a column holding times says they are Beijing time."""
    i = 1 if lang == "en" else 0
    timed = {c.key for c in columns if any(isinstance(r.get(c.key), dt.datetime) for r in rows)}
    return [(c.en if i else c.zh) + ((f" ({TZ_LABEL[i]})" if i else f"（{TZ_LABEL[i]}）") if c.key in timed else "")
            for c in columns]


def to_csv(rows: Iterable[dict], columns: list[Column], lang: str) -> bytes:
    rows = list(rows)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(headings(rows, columns, lang))
    for r in rows:
        w.writerow([cell(r.get(c.key)) for c in columns])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def to_xlsx(rows: Iterable[dict], columns: list[Column], lang: str, title: str) -> bytes:
    from openpyxl import Workbook  # deliberate: openpyxl is imported by the exports that need it, not at start-up
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    from openpyxl.styles import Font

    rows = list(rows)
    wb = Workbook()
    ws = wb.active
    ws.title = title[:31]
    heads = headings(rows, columns, lang)
    ws.append(heads)
    for c in ws[1]:
        c.font = Font(bold=True)
    widths = [len(h) * 2 for h in heads]

    def xlsx_cell(value):
        if isinstance(value, dt.datetime):  # a date-time cell (Excel keeps no zone: Beijing time, as headed)
            return beijing(value).replace(tzinfo=None)
        value = cell(value)
        # control characters (a refused lookup's text may hold any) cannot be written to .xlsx: shown as U+FFFD
        return ILLEGAL_CHARACTERS_RE.sub("\ufffd", value) if isinstance(value, str) else value

    for r in rows:
        values = [xlsx_cell(r.get(c.key)) for c in columns]
        ws.append(values)
        for c in ws[ws.max_row]:
            if isinstance(c.value, dt.datetime):
                c.number_format = XLSX_TIME
        widths = [max(w, min(60, 19 if isinstance(v, dt.datetime) else len(str(v)))) for w, v in zip(widths, values)]
    for i, w in enumerate(widths):
        ws.column_dimensions[ws.cell(row=1, column=i + 1).column_letter].width = max(8, w + 2)
    ws.freeze_panes = "A2"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
