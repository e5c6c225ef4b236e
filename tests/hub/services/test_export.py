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
    assert rows[0] == ["类型", "内容", "时间（北京时间）"]
    # a time is a date-time cell, in Beijing time (08:00 UTC is 16:00 in Anshan)
    assert rows[1] == ["lookup_refused", "why\ufffd\ufffd: id_number", dt.datetime(2026, 12, 3, 16, 0)]
    assert sheet["C2"].is_date and sheet["C2"].number_format == "yyyy-mm-dd hh:mm:ss"
    assert rows[2][:2] == ["'=HYPERLINK(\"http://x\")", "'+1"]


def test_a_csv_download_has_a_byte_order_mark_and_the_english_headers_on_request():
    text = to_csv(ROWS, COLUMNS, "en").decode("utf-8")
    assert text.startswith("\ufeffKind,Text,Time (Beijing time)\r\n") and "'=HYPERLINK" in text
    assert ",2026-12-03 16:00:00\r\n" in text  # Beijing time, as the heading says


def test_a_naive_time_is_taken_as_utc_as_the_store_keeps_them():
    text = to_csv([{"at": dt.datetime(2026, 12, 31, 20, 0)}], [Column("at", "时间", "Time")], "zh").decode("utf-8")
    assert text == "\ufeff时间（北京时间）\r\n2027-01-01 04:00:00\r\n"
