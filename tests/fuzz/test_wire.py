"""The agencies' wire formats, both ways, under hostile input.

The hub's side: ``parse_answer(spec, body, headers)`` followed by ``from_wire`` on every row is exactly what a
connector does with an agency's HTTP answer (connectors/base.py ``Source.fetch``, connectors/household.py); for
all eleven contracts it gets arbitrary bytes and answers built from the contract and then broken (mutated values,
missing and renamed fields, wrong types, huge numbers, NaN, wrong encodings, truncated bodies, deep nesting, DTDs
and entities). It returns rows or raises BadAnswer, never anything else, and no error text holds an ID number.

The agencies' side: ``agencies.wire.parse_request`` and the whole request handler of agencies/server.py (driven
over an in-memory socket, no port) answer hostile bodies and headers with a 4xx, and nothing escapes.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
import time
import traceback
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import example, given
from hypothesis import strategies as st
from requests.structures import CaseInsensitiveDict

from agencies.wire import BadRequestBody, encode_answer, parse_request
from schemas.contracts import EXTRA, SPECS, AgencySpec, from_wire
from connectors.wire import CSV_EXTRA, Answer, BadAnswer, build_request, parse_answer
from tests.support.fuzz import assert_no_ids, ci, id_numbers

ROOT = Path(__file__).resolve().parents[2]
KEYS = list(SPECS)
XML_KEYS = [k for k, s in SPECS.items() if s.wire == "xml"]

# -- values an agency may send where a field's value belongs ----------------------------------------------
NASTY_TEXT = st.sampled_from([
    "", " ", "NaN", "nan", "-NaN", "Infinity", "-Infinity", "inf", "1e999", "-1e999", "1e-999", "0x10", "1_000",
    "１２３", "٣", "²", "N/A", "null", "None", "true", "\x00", "\ufeff", "\u202e", "𠀀", "é", "\ud800x", "9" * 5000,
    "2025-13-45", "20251345", "0000-00-00", "9999-12-31", "0001-01-01", "2025-02", "202502", "-", "--", "ZZ",
])
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(-(10**400), 10**400), st.sampled_from([10**4299, -(10**4299)]),
    st.floats(allow_nan=True, allow_infinity=True), NASTY_TEXT, st.text(max_size=40), id_numbers(),
)
NESTED = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                      max_leaves=12)


def plausible(spec: AgencySpec, canon: str) -> st.SearchStrategy:
    """A value the contract allows for a canonical field, as the agency writes it."""
    if canon == "id_number" or canon.endswith("id_number"):
        return id_numbers()
    if canon in spec.codes:
        return st.sampled_from(sorted(str(v) for v in spec.codes[canon].values()))
    if canon in ("period", "birth_date", "established", "acquired", "registered", "effective", "as_of"):
        return st.dates().flatmap(lambda d: st.sampled_from(["%Y%m%d", "%Y-%m-%d", "%Y%m", "%Y-%m"]).map(d.strftime))
    if canon in ("amount", "tax", "base", "personal", "employer", "balance", "area", "share", "registered_capital",
                 "purchase_price", "market_value", "cash_value", "annual_premium", "quantity"):
        return st.one_of(st.floats(-1e9, 1e12), st.integers(-(10**12), 10**12))
    return st.text(max_size=20)


@st.composite
def wire_rows(draw, spec: AgencySpec) -> list[dict]:
    """Rows of the contract, then broken: values replaced, fields dropped, renamed or added."""
    rows = []
    for _ in range(draw(st.integers(0, 4))):
        row = {}
        for canon, wire in spec.fields.items():
            choice = draw(st.integers(0, 9))
            if choice == 0:
                continue  # missing
            if choice == 1:
                row[wire + "_v2"] = draw(plausible(spec, canon))  # renamed
            elif choice <= 3:
                row[wire] = draw(NESTED if spec.wire == "json" else SCALARS)
            else:
                row[wire] = draw(plausible(spec, canon))
        for extra in draw(st.lists(st.text(min_size=1, max_size=6), max_size=2)):
            row[extra] = draw(SCALARS)
        rows.append(row)
    return rows


def _text(value) -> str:
    return "" if value is None else str(value) if not isinstance(value, bool) else ("1" if value else "0")


def _json_body(draw, spec: AgencySpec, rows: list[dict], ids: list[str]) -> bytes:
    doc = {"code": draw(st.one_of(st.just("0000"), SCALARS)), "msg": "成功",
           "data": draw(st.one_of(st.just(rows), st.just(rows), NESTED)),
           "notFound": draw(st.one_of(st.just(ids), NESTED)),
           "pageNo": 1, "totalPages": draw(st.one_of(st.integers(1, 5), NESTED)), "total": len(rows)}
    for key in draw(st.lists(st.sampled_from(sorted(doc)), max_size=3, unique=True)):
        del doc[key]
    body = json.dumps(doc if draw(st.integers(0, 9)) else draw(NESTED), ensure_ascii=draw(st.booleans()))
    depth = draw(st.sampled_from([0, 0, 0, 50, 999, 5000, 100_000]))
    if depth:  # deeply nested JSON, inside the envelope or as the whole body
        deep = "[" * depth + "]" * depth if draw(st.booleans()) else '{"a":' * depth + "1" + "}" * depth
        body = body.replace('"msg": "', '"deep": ' + deep + ', "msg": "', 1) if draw(st.booleans()) else deep
    if draw(st.integers(0, 9)) == 0:  # a number literal beyond Python's int-from-text limit
        body = body.replace('"pageNo": 1', '"pageNo": ' + "1" * 5000)
    return body.encode(draw(st.sampled_from(["utf-8", "utf-8", "gbk", "utf-16", "latin-1"])), errors="replace")


DTDS = [
    # billion laughs
    '<!DOCTYPE response [<!ENTITY a "ha">' + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">'
                                                     for i in range(9)) + "]>",
    # external entities: a file, a URL, a parameter entity pulling an outside DTD
    '<!DOCTYPE response [<!ENTITY ext SYSTEM "file:///etc/passwd">]>',
    '<!DOCTYPE response [<!ENTITY ext SYSTEM "http://127.0.0.1:9/x">]>',
    '<!DOCTYPE response [<!ENTITY % p SYSTEM "http://127.0.0.1:9/p.dtd"> %p;]>',
    '<!DOCTYPE response SYSTEM "http://127.0.0.1:9/response.dtd">',
    # quadratic blow-up: one large entity referenced many times
    '<!DOCTYPE response [<!ENTITY big "' + "x" * 20000 + '">]>',
    # an entity that smuggles an ID number into a value
    '<!DOCTYPE response [<!ENTITY i "11010519491231002X">]>',
]
ENTITY_REFS = ["&j;", "&ext;", "&big;" * 200, "&i;", "&lt;", "&#0;", "&#x1F600;", "&#99999999;", "&undefined;"]


def _xml_body(draw, spec: AgencySpec, rows: list[dict], ids: list[str]) -> bytes:
    tag = draw(st.sampled_from(["response", "response", "Response", "query", "ns:response"]))
    root = ET.Element(tag, code=_text(draw(st.one_of(st.just("0000"), SCALARS))),
                      pages=_text(draw(st.one_of(st.integers(1, 5), SCALARS))))
    if not draw(st.integers(0, 4)):
        del root.attrib["pages"]
    records = ET.SubElement(root, "records")
    for row in rows:
        rec = ET.SubElement(records, "record")
        for k, v in row.items():
            ET.SubElement(rec, k if k.isidentifier() else "x").text = _text(v)
        if draw(st.integers(0, 5)) == 0:
            ET.SubElement(rec, "record").text = "nested"
    nf = ET.SubElement(root, "notFound")
    for i in ids:
        ET.SubElement(nf, "id").text = i
    text = ET.tostring(root, encoding="unicode")
    if draw(st.integers(0, 3)) == 0:  # entity tricks
        ref = draw(st.sampled_from(ENTITY_REFS))
        text = text.replace("</record>", f"<zz>{ref}</zz></record>", 1) if "</record>" in text else \
            text.replace(f"</{tag}>", f"<zz>{ref}</zz></{tag}>")
        text = draw(st.sampled_from(DTDS)) + text
    if draw(st.booleans()):
        text = '<?xml version="1.0" encoding="%s"?>' % draw(st.sampled_from(["UTF-8", "GBK", "UTF-16", "bogus"])) + text
    if draw(st.integers(0, 9)) == 0:
        text = text.replace("<record>", "<!-- c --><?pi x?><record><![CDATA[<x>]]>", 1)
    return text.encode(draw(st.sampled_from(["utf-8", "utf-8", "gbk", "utf-16"])), errors="replace")


def _csv_body(draw, spec: AgencySpec, rows: list[dict], ids: list[str]) -> bytes:
    buf = io.StringIO()
    header = list(dict.fromkeys(k for r in rows for k in r)) or list(spec.fields.values())
    if draw(st.integers(0, 5)) == 0:
        header = draw(st.permutations(header))[: draw(st.integers(0, len(header)))]
    writer = csv.writer(buf, lineterminator=draw(st.sampled_from(["\r\n", "\n", "\r"])),
                        quoting=draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC])))
    writer.writerow(header)
    for row in rows:
        values = [_text(row.get(k)) for k in header]
        ragged = draw(st.integers(-2, 2))
        values = values[:ragged] if ragged < 0 else values + [draw(NASTY_TEXT) for _ in range(ragged)]
        writer.writerow(values)
    text = buf.getvalue()
    if draw(st.integers(0, 9)) == 0:
        text = text.replace(",", '"', 1)  # an unbalanced quote
    return text.encode(draw(st.sampled_from(["gbk", "gbk", "utf-8", "utf-16", "big5"])), errors="replace")


@st.composite
def answers(draw, key: str | None = None) -> tuple[str, bytes, object]:
    """(source, body, headers): an answer of a contract, built by its rules and then broken."""
    key = key or draw(st.sampled_from(KEYS))
    spec = SPECS[key]
    rows = draw(wire_rows(spec))
    ids = draw(st.lists(id_numbers(), max_size=3))
    body = None
    if draw(st.integers(0, 4)) == 0:  # the agency's own encoder, as the simulated agencies send it
        try:
            body, _ = encode_answer(spec, rows, ids, page=1, pages=draw(st.integers(1, 3)), total=len(rows),
                                    encoding=draw(st.sampled_from([None, None, "utf-8", "gbk"])))
        except UnicodeEncodeError:  # a value that encoding cannot carry (the agency's problem, not the hub's)
            pass
    if body is None:
        body = {"json": _json_body, "xml": _xml_body, "csv": _csv_body}[spec.wire](draw, spec, rows, ids)
    cut = draw(st.sampled_from([None, None, None, "truncate", "flip", "insert"]))
    if cut == "truncate" and body:
        body = body[: draw(st.integers(0, len(body) - 1))]
    elif cut == "flip" and body:
        at = draw(st.integers(0, len(body) - 1))
        body = body[:at] + bytes([body[at] ^ draw(st.integers(1, 255))]) + body[at + 1:]
    elif cut == "insert":
        at = draw(st.integers(0, len(body)))
        body = body[:at] + draw(st.binary(max_size=8)) + body[at:]
    return key, body, draw(headers())


def headers() -> st.SearchStrategy:
    """What requests hands a connector (resp.headers), or what a replay passes ({})."""
    pages = st.one_of(st.integers(-5, 10**30).map(str), NASTY_TEXT.filter(lambda t: "\ud800" not in t),
                      st.text(max_size=10))
    ctype = st.sampled_from(["application/json; charset=utf-8", "application/xml; charset=utf-8",
                             "text/csv; charset=GBK", "text/html", ""])
    return st.one_of(
        st.just({}),
        st.builds(lambda p, c: CaseInsensitiveDict({"X-Total-Pages": p, "Content-Type": c}), pages, ctype),
        st.builds(lambda c: CaseInsensitiveDict({"Content-Type": c}), ctype),
    )


def read_like_a_connector(key: str, body: bytes, hdrs) -> None:
    """What Source.fetch does with one answer; the properties every answer must keep."""
    spec = SPECS[key]
    try:
        answer = parse_answer(spec, body, hdrs)
    except BadAnswer as exc:
        assert exc.kind in ("encoding", "format", "envelope")
        assert_no_ids(str(exc) + repr(exc) + "".join(traceback.format_exception(exc)), body, dict(hdrs))
        return
    assert isinstance(answer, Answer)
    assert isinstance(answer.pages, int) and not isinstance(answer.pages, bool)
    assert isinstance(answer.rows, list) and all(isinstance(r, dict) for r in answer.rows)
    assert all(isinstance(k, str) for r in answer.rows for k in r)
    assert isinstance(answer.not_found, list) and all(isinstance(i, str) for i in answer.not_found)
    set(answer.not_found)  # the connector makes sets of them
    known = set(spec.fields) | {EXTRA}
    for row in answer.rows:
        canon = from_wire(spec, row)
        assert set(canon) <= known
        assert all(isinstance(n, str) for n in canon.get(EXTRA, []))


# -- the hub reads answers --------------------------------------------------------------------------------
@ci()
@given(key=st.sampled_from(KEYS), body=st.binary(max_size=2048), hdrs=headers())
def test_arbitrary_bytes_are_rows_or_bad_answer(key, body, hdrs):
    read_like_a_connector(key, body, hdrs)


@pytest.mark.parametrize("key", KEYS)
@ci(0.5)
@given(data=st.data())
def test_broken_answers_of_each_contract_are_rows_or_bad_answer(key, data):
    read_like_a_connector(*data.draw(answers(key)))


@ci()
@given(answer=answers())
@example(answer=("tax", b'<response code="0000"/>', {"X-Total-Pages": "x"}))
@example(answer=("household", b'{"code":"0000","data":[],"totalPages":null}', {}))
@example(answer=("household", b'{"code":"0000","data":[],"totalPages":1e400}', {}))
@example(answer=("household", b'{"code":"0000","data":[],"notFound":5}', {}))
@example(answer=("household", b'{"code":"0000","data":[],"notFound":[["11010519491231002X"]]}', {}))
@example(answer=("household", b'[' * 100_000, {}))
@example(answer=("market_entity", b'{"code":"0000","data":[{"zczb":1' + b"0" * 400 + b'}]}', {}))
@example(answer=("tax", b'<response code="0000"><records><record><sre>1' + b"0" * 400 + b"</sre></record></records>"
                 b"</response>", {}))
@example(answer=("tax", b'<response code="0000"><records>' + b"<record>" * 20_000 + b"</record>" * 20_000
                 + b"</records></response>", {}))
@example(answer=("provident_fund", "证件号码,年月\r\n11010519491231002X,202501,extra,more\r\n".encode("gbk"), {}))
def test_answers_of_any_contract_are_rows_or_bad_answer(answer):
    read_like_a_connector(*answer)


@ci(0.5)
@given(answer=answers("household"), applicant=id_numbers())
@example(answer=("household", json.dumps({"code": "0000", "data": [
    {"sfzh": "11010519491231002X", "xm": "x", "xb": "1", "csrq": "19491231", "hh": "1", "yhzgx": ["01"],
     "zt": "1", "dzbm": "210302"}]}).encode(), {}), applicant="11010519491231002X")
@example(answer=("household", json.dumps({"code": "0000", "data": [
    {"sfzh": "11010519491231002X", "xm": "x", "xb": "1", "csrq": "19491231", "hh": ["1"], "yhzgx": "01",
     "zt": "1", "dzbm": "210302"}]}).encode(), {}), applicant="11010519491231002X")
def test_household_members_answers_are_members_or_unusable(answer, applicant):
    """一证通办 (hub.services.lookup): the rows of a household-members answer become members, or the answer is unusable
    (None); nothing else."""
    from hub.services.lookup import _members

    key, body, hdrs = answer
    try:
        rows = [from_wire(SPECS[key], r) for r in parse_answer(SPECS[key], body, hdrs).rows]
    except BadAnswer:
        return
    ids = [r["id_number"] for r in rows if isinstance(r.get("id_number"), str)]
    members = _members(rows, (ids[0].upper() if ids and applicant.endswith(("1", "3", "5")) else applicant))
    assert members is None or all(m.id_number and m.name for m in members)


@pytest.mark.parametrize("key", KEYS)
@ci(0.25)
@given(data=st.data())
def test_rows_of_broken_answers_are_prepared_for_validation(key, data):
    """The validation stage's first step (the derived columns its suite checks, pandas only) takes whatever rows
    an answer gave; the Great Expectations run after it is left to tests/hub/stages/test_validation*.py."""
    import pandas as pd

    from schemas.suite import BATCH_KEY, suite_module

    key, body, hdrs = data.draw(answers(key))
    try:
        rows = [from_wire(SPECS[key], r) for r in parse_answer(SPECS[key], body, hdrs).rows]
    except BadAnswer:
        return
    frame = pd.DataFrame(rows)
    frame[BATCH_KEY] = 0
    suite_module(key).prepare(frame)


def test_an_id_number_with_a_right_check_character_on_no_date_fails_the_id_check():
    """schemas.household.prepare once raised on it (birth_date_from_id), stopping the whole validation run."""
    import pandas as pd

    from schemas.codes import id_check_char
    from schemas.household import prepare

    bogus = "21030220251345001"
    bogus += id_check_char(bogus)
    spec = SPECS["household"]
    body, _ = encode_answer(spec, [{w: bogus if w == spec.id_field else "1" for w in spec.fields.values()}], [],
                            page=1, pages=1, total=1)
    rows = [from_wire(spec, r) for r in parse_answer(spec, body, {}).rows]
    assert prepare(pd.DataFrame(rows))["id_check_ok"].tolist() == [False]


@pytest.mark.parametrize("key", XML_KEYS)
@pytest.mark.parametrize("dtd", DTDS)
def test_xml_answers_with_a_dtd_are_refused_unexpanded(key, dtd):
    """No DTD is read: no entity expanded (billion laughs, quadratic blow-up), nothing fetched or read from disk."""
    body = (dtd + '<response code="0000" pages="1"><records><record><sre>&j;&ext;&big;&i;</sre></record>'
            '</records></response>').encode()
    t0 = time.monotonic()
    with pytest.raises(BadAnswer) as info:
        parse_answer(SPECS[key], body, {})
    assert info.value.kind == "format" and time.monotonic() - t0 < 5
    assert "11010519491231002X" not in str(info.value)


def test_csv_values_beyond_the_header_are_an_unexpected_field_not_a_crash():
    """csv.DictReader keeps them under the key None, which from_wire could not sort among the field names."""
    spec = SPECS["provident_fund"]
    body = ",".join(spec.fields.values()) + "\r\n" + ",".join(["11010519491231002X"] + ["1"] * 7 + ["x", "y"])
    rows = parse_answer(spec, body.encode("gbk"), {}).rows
    assert from_wire(spec, rows[0])[EXTRA] == [CSV_EXTRA]


def test_a_well_formed_answer_still_reads():
    """The fixes keep the agencies' own answers readable, in every format."""
    for key, spec in SPECS.items():
        row = {w: "1" for w in spec.fields.values()}
        body, _ = encode_answer(spec, [row], ["11010519491231002X"] if spec.wire != "csv" else [], page=1, pages=2,
                                total=1)
        answer = parse_answer(spec, body, CaseInsensitiveDict({"X-Total-Pages": "2"}))
        assert answer.rows and answer.pages == 2, key


# -- the agencies read the hub's requests -----------------------------------------------------------------
@st.composite
def request_bodies(draw, key: str) -> bytes:
    spec = SPECS[key]
    ids = draw(st.lists(id_numbers(), max_size=4))
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return draw(st.binary(max_size=512))
    if kind == 1:
        return build_request(spec, ids, draw(st.integers(1, 3)))
    if spec.wire == "xml":
        page = _text(draw(st.one_of(st.integers(), SCALARS)))
        items = "".join(f"<id>{i}</id>" for i in ids) + draw(st.sampled_from(["", "<id/>", "<id><x/></id>", "&i;"]))
        dtd = draw(st.sampled_from(["", *DTDS]))
        text = f'{dtd}<query page="{page}">{items}</query>'
        return text.encode(draw(st.sampled_from(["utf-8", "gbk", "utf-16"])), errors="replace")
    doc = {spec.ids_field: draw(st.one_of(st.just(ids), NESTED)), "pageNo": draw(st.one_of(st.integers(1, 3), NESTED))}
    body = json.dumps(doc if kind != 2 else draw(NESTED))
    if kind == 3:
        body = "[" * draw(st.sampled_from([999, 5000, 100_000]))
    return body.encode(draw(st.sampled_from(["utf-8", "utf-16", "gbk"])), errors="replace")


@pytest.mark.parametrize("key", KEYS)
@ci(0.25)
@given(data=st.data())
def test_agencies_read_any_request_body_or_refuse_it(key, data):
    body = data.draw(request_bodies(key))
    try:
        ids, page, _ = parse_request(SPECS[key], body)
    except BadRequestBody as exc:
        assert_no_ids(str(exc), body)
        return
    assert isinstance(ids, list) and all(isinstance(i, str) for i in ids)
    assert isinstance(page, int) and page >= 1


class _Socket:
    """Just enough of a connected socket for a BaseHTTPRequestHandler: the request in, the answer out."""

    def __init__(self, raw: bytes):
        self.raw, self.sent = raw, bytearray()

    def makefile(self, mode, *args, **kwargs):
        return io.BytesIO(self.raw) if "r" in mode else io.BytesIO()

    def sendall(self, data):
        self.sent += data

    def setsockopt(self, *args):
        pass

    def settimeout(self, *args):
        pass


class _Server:
    server_name, server_port = "127.0.0.1", 0


@pytest.fixture(scope="module")
def handlers():
    """The request handler of every simulated agency, with a credential and hub key of this test's own."""
    from agencies.server import Agency, Faults, Population, _handler
    from connectors.auth import Credential
    from connectors.signing import AnswerKeys, answer_keys_path
    from core.settings import settings

    hub_key = Ed25519PrivateKey.generate()
    population = Population(7, 5)
    out = {}
    for key, spec in SPECS.items():
        credential = Credential(spec.auth, f"secret-of-{key}")
        agency = Agency(spec, population, Faults(), credential, hub_key.public_key(), 7,
                        AnswerKeys(answer_keys_path(settings().home), key))
        out[key] = (_handler(agency), credential, hub_key)
    return out


HEADER_VALUE = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters="\x7f"), max_size=40)


@st.composite
def raw_requests(draw, key: str, handler_of) -> bytes:
    """A whole HTTP request to an agency: signed or not, with hostile headers and body."""
    from connectors.auth import request_headers

    spec = SPECS[key]
    _, credential, hub_key = handler_of[key]
    path = draw(st.sampled_from([f"/{key}/{spec.path}", f"/{key}/{spec.path}", f"/{key}/{spec.members_path}",
                                 "/nowhere", f"/{key}/{spec.path}?x=%00"]))
    body = draw(request_bodies(key))
    hdrs = {}
    if draw(st.integers(0, 3)):
        hdrs = request_headers(method="POST", path=path.split("?")[0], body=body, auth_ref=draw(HEADER_VALUE),
                               credential=credential, signing_key=hub_key)
    for name in draw(st.lists(st.sampled_from(["X-Api-Key", "X-Timestamp", "X-Signature", "X-Auth-Ref",
                                               "X-Auth-Sig", "Content-Length"]), max_size=2, unique=True)):
        hdrs[name] = draw(HEADER_VALUE.filter(lambda v: v == v.strip()))
    hdrs.setdefault("Content-Length", str(len(body)))
    head = f"POST {path} HTTP/1.1\r\nHost: agency\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items())
    return head.encode("latin-1") + b"\r\n" + body


@pytest.mark.parametrize("key", KEYS)
@ci(0.25)
@given(data=st.data())
def test_agencies_answer_any_request_with_a_status_and_nothing_escapes(key, data, handlers):
    raw = data.draw(raw_requests(key, handlers))
    sock = _Socket(raw)
    handlers[key][0](sock, ("127.0.0.1", 1), _Server())  # handles the request in the constructor; raises on a bug
    head, _, rest = bytes(sock.sent).partition(b"\r\n\r\n")  # the answer to the request (what http.server
    status_line = head.split(b"\r\n", 1)[0]                    # says to bytes after it is its own affair)
    assert status_line.startswith(b"HTTP/1.1 "), status_line[:40]
    status = int(status_line.split()[1])
    assert status == 200 or 400 <= status < 500, status
    if status != 200:
        length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
        assert_no_ids(rest[:length].decode("latin-1"), raw)


# -- atheris: coverage-guided, on the same entry point ----------------------------------------------------
def test_atheris_harness_on_the_wire_parser(tmp_path):
    """tests/fuzz/atheris_wire.py for a bounded number of runs (HUB_FUZZ_ATHERIS_RUNS), seeded with answers of
    every contract; it exits non-zero on any exception but BadAnswer. The RSS limit is generous: libFuzzer reads
    the peak RSS of its process, and a fork of this (large) pytest process starts from its parent's peak."""
    pytest.importorskip("atheris")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for n, (key, spec) in enumerate(SPECS.items()):
        rows = [{w: v for w, v in zip(spec.fields.values(), ["11010519491231002X", "1", "2025-01", "3.5"] * 3)}]
        body, _ = encode_answer(spec, rows, ["440524188001010014"] if spec.wire != "csv" else [], page=1, pages=1,
                                total=1)
        (corpus / f"seed-{n}").write_bytes(bytes([n, 0]) + body)
    runs = os.environ.get("HUB_FUZZ_ATHERIS_RUNS") or "20000"
    proc = subprocess.run([sys.executable, "-m", "tests.fuzz.atheris_wire", f"-runs={runs}", "-max_len=4096",
                           "-seed=1", "-rss_limit_mb=4096", f"-artifact_prefix={tmp_path}/", str(corpus)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
