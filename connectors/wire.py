"""The hub's side of the agencies' wire formats: requests to send, answers to read (JSON, XML, GBK CSV).

Every format states its shape: a JSON answer its envelope (``code``, ``data``), an XML one its ``response`` root, a
CSV one its declared header (at least the ID column and half the declared columns: a renamed column is a row
problem for validation, an empty body or an HTML page is no answer). Which persons are unknown, and how many pages
there are, the signed manifest says (connectors.signing); the CSV agencies have no other not-found list."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from schemas.contracts import AgencySpec


class BadAnswer(ValueError):
    """An answer that cannot be read; ``kind`` says how (encoding, format, envelope). No content in the message."""

    def __init__(self, kind: str):
        self.kind = kind
        super().__init__(f"unreadable answer: {kind}")


@dataclass
class Answer:
    rows: list[dict] = field(default_factory=list)  # wire rows
    not_found: list[str] = field(default_factory=list)
    pages: int = 1


def build_request(spec: AgencySpec, ids: list[str], page: int = 1, refs: list[str] | None = None) -> bytes:
    """A query for ``ids``; with ``refs`` (one per ID number), a batch exchange naming each person's reference."""
    if spec.wire == "xml":
        root = ET.Element("query", page=str(page))
        for n, i in enumerate(ids):
            ET.SubElement(root, "id", **({"ref": refs[n]} if refs is not None else {})).text = i
        return ET.tostring(root, encoding="utf-8", xml_declaration=True)
    doc = {spec.ids_field: ids, **({spec.refs_field: refs} if refs is not None else {})}
    if spec.page_size:
        doc["pageNo"] = page
    return json.dumps(doc).encode("utf-8")


class _NoDTD(ET.TreeBuilder):
    """Agencies' XML never carries a DTD: one is refused before any entity is declared, let alone expanded
    (billion laughs, quadratic blow-up) or fetched (external entities)."""

    def doctype(self, name, pubid, system):
        raise ET.ParseError("a DTD is not allowed")


def parse_xml(text: str | bytes) -> ET.Element:
    """ET.fromstring without DTDs; raises ET.ParseError."""
    parser = ET.XMLParser(target=_NoDTD())
    parser.feed(text)
    return parser.close()


# the name under which a CSV row's values beyond its header are kept (listed as an unexpected field)
CSV_EXTRA = "_unnamed_columns"


def _pages(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):  # null, a list, NaN, Infinity, "x", 5000 digits
        raise BadAnswer("envelope") from None


def parse_answer(spec: AgencySpec, body: bytes, headers) -> Answer:
    charset = "gbk" if spec.wire == "csv" else "utf-8"
    try:
        text = body.decode(charset)
    except UnicodeDecodeError:
        raise BadAnswer("encoding") from None
    pages = _pages(headers.get("X-Total-Pages") or 1)
    try:
        if spec.wire == "json":
            doc = json.loads(text)
            if doc.get("code") != "0000" or not isinstance(doc.get("data"), list):
                raise BadAnswer("envelope")
            not_found = doc.get("notFound") or []
            if not isinstance(not_found, list) or not all(isinstance(i, str) for i in not_found):
                raise BadAnswer("envelope")
            return Answer([r for r in doc["data"] if isinstance(r, dict)], not_found,
                          _pages(doc.get("totalPages", pages)))
        if spec.wire == "xml":
            root = parse_xml(text)
            if root.tag != "response" or root.get("code") != "0000":
                raise BadAnswer("envelope")
            rows = [{c.tag: c.text for c in rec} for rec in root.iter("record")]
            return Answer(rows, [e.text or "" for e in root.iter("id")], _pages(root.get("pages", pages)))
        reader = csv.DictReader(io.StringIO(text), restkey=CSV_EXTRA)
        header = reader.fieldnames or []
        declared = list(spec.fields.values())
        if spec.id_field not in header or 2 * len(set(header) & set(declared)) < len(declared):
            raise BadAnswer("envelope")  # an empty body, an HTML page, another file: not "no records"
        return Answer([dict(r) for r in reader], [], pages)
    except (json.JSONDecodeError, ET.ParseError, csv.Error, ValueError, AttributeError, RecursionError) as exc:
        if isinstance(exc, BadAnswer):
            raise
        raise BadAnswer("format") from None
