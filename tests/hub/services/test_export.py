"""hub.services.export: tables for spreadsheets that open as written and never run as formulas."""

from __future__ import annotations

import datetime as dt
import io

from openpyxl import load_workbook

from hub.services.export import Column, to_csv, to_xlsx

COLUMNS = [Column("kind", "类型", "Kind"), Column("text", "内容", "Text"), Column("at", "时间", "Time")]
ROWS = [{"kind": "lookup_refused", "text": "why\x00\x1b: id_number", "at": dt.datetime(2026, 12, 3, 8, 0,
                                                                                      tzinfo=dt.timezone.utc)},
        {"kind": "=HYPERLINK(\"http://x\")", "text": "+1", "at": None}]


def test_an_xlsx_download_opens_with_control_characters_replaced_and_formulas_defused():
    sheet = load_workbook(io.BytesIO(to_xlsx(ROWS, COLUMNS, "zh", "异常访问"))).active
    rows = [[c.value for c in r] for r in sheet.iter_rows()]
    assert rows[0] == ["类型", "内容", "时间"]
    assert rows[1] == ["lookup_refused", "why\ufffd\ufffd: id_number", "2026-12-03 08:00:00 UTC"]
    assert rows[2][:2] == ["'=HYPERLINK(\"http://x\")", "'+1"]


def test_a_csv_download_has_a_byte_order_mark_and_the_english_headers_on_request():
    text = to_csv(ROWS, COLUMNS, "en").decode("utf-8")
    assert text.startswith("\ufeffKind,Text,Time\r\n") and "'=HYPERLINK" in text
