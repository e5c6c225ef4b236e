"""Wire formats of the simulated agencies: JSON, XML and GBK-encoded CSV, requests and answers."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET

from connectors.wire import parse_xml
from schemas.contracts import AgencySpec


class BadRequestBody(ValueError):
    pass


def parse_request(spec: AgencySpec, body: bytes) -> tuple[list[str], int, list[str] | None]:
    """(ID numbers, page number, the persons' references of a batch exchange or None) from a request body; page 1
    when the agency does not paginate."""
    try:
        if spec.wire == "xml":
            root = parse_xml(body)  # no DTD, hence no entity expanded or fetched
            found = list(root.iter("id"))
            ids = [e.text or "" for e in found]
            refs = [e.get("ref") for e in found] if any(e.get("ref") is not None for e in found) else None
            page = int(root.get("page", "1"))
        else:
            doc = json.loads(body.decode("utf-8"))
            ids, page, refs = doc.get(spec.ids_field), int(doc.get("pageNo", 1)), doc.get(spec.refs_field)
    except (ET.ParseError, UnicodeDecodeError, json.JSONDecodeError, ValueError, AttributeError, TypeError,
            OverflowError, RecursionError) as exc:  # TypeError: "pageNo": null; OverflowError: 1e400
        raise BadRequestBody(f"request body is not valid {spec.wire if spec.wire == 'xml' else 'json'}") from exc
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise BadRequestBody(f"{spec.ids_field if spec.wire != 'xml' else 'id'}: a list of ID numbers is required")
    if refs is not None and (not isinstance(refs, list) or len(refs) != len(ids)
                             or not all(isinstance(r, str) and r for r in refs)):
        raise BadRequestBody(f"{spec.refs_field if spec.wire != 'xml' else 'ref'}: one reference per ID number")
    if page < 1:
        raise BadRequestBody("page numbers start at 1")
    return ids, page, refs


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def encode_answer(spec: AgencySpec, rows: list[dict], not_found: list[str], *, page: int, pages: int, total: int,
                  encoding: str | None = None) -> tuple[bytes, str]:
    """(body, content type). ``encoding`` overrides the body's real encoding (the dirty profile's wrong encoding)
    while the declared charset stays the agency's usual one."""
    if spec.wire == "json":
        doc = {"code": "0000", "msg": "成功", "data": rows, "notFound": not_found}
        if spec.page_size:
            doc.update(pageNo=page, pageSize=spec.page_size, totalPages=pages, total=total)
        text = json.dumps(doc, ensure_ascii=False)
        return text.encode(encoding or "utf-8"), "application/json; charset=utf-8"
    if spec.wire == "xml":
        root = ET.Element("response", code="0000", page=str(page), pages=str(pages), total=str(total))
        records = ET.SubElement(root, "records")
        for row in rows:
            rec = ET.SubElement(records, "record")
            for k, v in row.items():
                ET.SubElement(rec, k).text = _text(v)
        nf = ET.SubElement(root, "notFound")
        for i in not_found:
            ET.SubElement(nf, "id").text = i
        text = ET.tostring(root, encoding="unicode")
        return ('<?xml version="1.0" encoding="UTF-8"?>' + text).encode(encoding or "utf-8"), \
            "application/xml; charset=utf-8"
    buf = io.StringIO()
    header = list(rows[0].keys()) if rows else list(spec.fields.values())
    writer = csv.DictWriter(buf, fieldnames=header, lineterminator="\r\n", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _text(v) for k, v in row.items()})
    return buf.getvalue().encode(encoding or "gbk", errors="replace"), "text/csv; charset=GBK"
