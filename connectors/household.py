"""Household registration (公安户籍): identity, household number, relation to head, status, address code."""

from __future__ import annotations

from connectors.base import Source

# agency field -> canonical field
FIELDS = {
    "sfzh": "id_number",
    "xm": "name",
    "xb": "sex_code",
    "csrq": "birth_date",
    "hh": "household_no",
    "yhzgx": "relation_code",
    "zt": "status_code",
    "dzbm": "address_code",
}


class HouseholdSource(Source):
    key = "household"
    name = "公安户籍"
    path = "api/v1/persons/query"
    auth = "api_key"
    max_batch = 100

    def build_body(self, id_numbers: list[str]) -> dict:
        return {"sfzhList": id_numbers}

    def parse(self, body: dict) -> tuple[list[dict], list[str]]:
        if body.get("code") != "0000":
            raise KeyError("code")
        rows = [{canon: rec.get(wire) for wire, canon in FIELDS.items()} for rec in body["data"]]
        return rows, list(body.get("notFound") or [])
