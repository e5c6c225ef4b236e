"""Every validation suite's Data Docs page renders through the console (/console/data-docs/{run}), in a process that
has validated nothing: the hub's own expectations (resident ID and credit code check characters) must be known
wherever a page is rendered, not only where a batch was validated."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest

from agencies.server import Population
from core.store import ValidationRun, session, store_validation_texts
from hub.services.clients import create_client
from schemas.contracts import SPECS
from schemas.docs import pack
from schemas.suite import RULES, SUITE_MODULES, validate
from tests.support.console import REPO

SUITES = sorted(set(SUITE_MODULES) | set(RULES))  # every suite the hub has
CUSTOM = {"expect_column_values_to_be_valid_resident_ids": "GB 11643",
          "expect_column_values_to_be_valid_uscc": "GB 32100"}


def _flip(code: str) -> str:
    return code[:17] + ("0" if code[17:] != "0" else "1")


def rows_of(suite: str) -> list[dict]:
    """A small batch for ``suite`` with one bad row (a wrong check character where the suite has ID numbers), so
    each page shows failed expectations as well as passed ones."""
    if suite in SPECS:
        pop = Population(7, 40)
        rows = [dict(r) for i in pop.by_id for r in (pop.rows(suite, i) or [])][:20]
        rows[1]["id_number"] = _flip(rows[1]["id_number"])
        return rows
    if suite == "members":
        return [{"person_ref": "p1", "state": "rows"}, {"person_ref": "p2", "state": "silent"}]
    if suite == "cross_source":
        return [{"source": "tax", "person_ref": "p1", "fact_date": "2025-01", "birth_date": "1980-02-01"},
                {"source": "real_estate", "person_ref": "p2", "fact_date": "1970-03-01", "birth_date": "1980-02-01"}]
    if suite == "remote_registry":
        row = {"id_number": "11010519491231002X", "registry": "HUB-210300", "household_ref": "hh1",
               "record_version": 2, "record_as_of": "2026-01-01T00:00:00+00:00", "record_sha256": "a" * 64,
               "status": "normal", "relation": "head", "division_code": "210302", "income_total": 1200.0,
               "income_months": 12, "members_counted": 2, "income_per_capita": 50.0, "dibao": "no",
               "low_income": "no", "tekun": "no", "expenditure_poverty": "no"}
        return [row, {**row, "id_number": _flip(row["id_number"]), "household_ref": "hh2"}]
    raise AssertionError(f"no sample rows for the suite {suite!r}: add them here")


@pytest.fixture(scope="module")
def runs() -> dict[str, tuple[int, dict]]:
    """One stored validation run per suite, as the pipeline stores it (its scrubbed result packed): every other one
    with its results and Data Docs among the validation texts (since 0019), the others inline (as stored before)."""
    out = {}
    with session() as s:
        for n, suite in enumerate(SUITES):
            outcome = validate(suite, rows_of(suite), run_name="data-docs-test")
            assert outcome.docs and not outcome.success, suite  # the bad row fails a check
            run = ValidationRun(source=suite if suite in SPECS else None, suite=outcome.suite,
                                success=outcome.success, rows=outcome.rows, rows_failed=len(outcome.failures),
                                results=outcome.results, run_id="data-docs-test", docs=pack(outcome.docs))
            if n % 2:
                results, docs = json.dumps(run.results), run.docs
                run.results_sha256, run.docs_sha256 = (hashlib.sha256(t.encode()).hexdigest() for t in (results, docs))
                store_validation_texts(s, {run.results_sha256: results, run.docs_sha256: docs})
                run.results = run.docs = None
            s.add(run)
            s.flush()
            out[suite] = (run.id, outcome.docs)
    return out


# Run in a new interpreter: the test process has validated (so has defined the hub's expectations); the API
# process that serves the page may not have.
_RENDER = """
import json, os, sys
from fastapi.testclient import TestClient
from hub.web.app import create_app
assert "schemas.expectations" not in sys.modules
c = TestClient(create_app(), base_url="http://127.0.0.1:8000", follow_redirects=False)
assert c.post("/console/login", data={"token": os.environ["STAFF_TOKEN"]}).status_code == 303
out = {}
for run_id in json.loads(sys.argv[1]):
    resp = c.get(f"/console/data-docs/{run_id}")
    out[run_id] = [resp.status_code, resp.text]
print(json.dumps(out))
"""


def test_every_suite_renders_its_data_docs_page_in_a_fresh_process(runs):
    token = create_client("data docs staff", "staff", None)[1]
    ids = [run_id for run_id, _ in runs.values()]
    proc = subprocess.run([sys.executable, "-c", _RENDER, json.dumps(ids)], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "STAFF_TOKEN": token}, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    pages = {int(k): v for k, v in json.loads(proc.stdout.strip().splitlines()[-1]).items()}
    custom_seen = set()
    for suite, (run_id, docs) in runs.items():
        status, html = pages[run_id]
        assert status == 200, (suite, html[-2000:])
        assert f"{suite}_suite" in html and "data-docs-test" in html
        for r in docs["results"]:
            cfg = r["expectation_config"]
            kwargs = cfg["kwargs"]
            for column in [kwargs["column"]] if "column" in kwargs else kwargs.get("column_list", []):
                assert column in html, (suite, cfg["type"], column)
            if cfg["type"] in CUSTOM:  # rendered as a sentence of its own, not GX's fallback of type and arguments
                custom_seen.add(cfg["type"])
                assert CUSTOM[cfg["type"]] in html and cfg["type"] not in html, (suite, cfg["type"])
    assert custom_seen == set(CUSTOM)  # both of the hub's own expectations were on a page

