"""Validation with Great Expectations: suites built in code per source, run on a reused ephemeral context.

GX is imported only when a validation runs (never when a DAG file is parsed), inside the functions that use it
(deliberately: it is heavy). Each expectation is wrapped in a ``Check`` (schemas.checks) with a stable name and a reason staff can read (Chinese, then English); the
result maps each failing row to the checks it failed.
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pandas as pd

from schemas.checks import BATCH_KEY, Check  # noqa: F401 (re-exported: the suites' modules build on them)
from schemas.docs import scrub
from schemas.rules import RULES, checks_for, prepare_for

# suites with a module of their own; the other sources' suites are declared in schemas.rules
SUITE_MODULES = {"household": "schemas.household", "members": "schemas.coverage", "cross_source": "schemas.cross",
                 "remote_registry": "schemas.remote_registry"}


def suite_module(source: str):
    """An object with ``prepare(df)`` and ``checks()`` for the source."""
    if source in SUITE_MODULES:
        return importlib.import_module(SUITE_MODULES[source])
    if source not in RULES:
        raise UnknownSuite(f"no validation suite for source {source!r}")
    return SimpleNamespace(prepare=prepare_for(source), checks=checks_for(source))


def has_suite(source: str) -> bool:
    return source in SUITE_MODULES or source in RULES


@dataclass
class Outcome:
    suite: str
    success: bool
    rows: int
    failures: dict[int, list[tuple[str, str]]] = field(default_factory=dict)  # row position -> [(check, reason)]
    results: list[dict] = field(default_factory=list)  # per check, no personal data
    must_pass_failed: list[str] = field(default_factory=list)  # reasons of failed must-pass checks
    must_pass_checks: set[str] = field(default_factory=set)  # names of the suite's must-pass checks
    docs: dict | None = None  # the GX validation result without any value from the data (schemas.docs.scrub)


class UnknownSuite(KeyError):
    pass


_lock = threading.Lock()
_validating = threading.Lock()
_context: dict[str, Any] = {}


# GX 1.x rebuilds an expectation's configuration (a pydantic .dict(), a regex over the class name, a new object)
# each time its ``configuration`` property is read, about 65 times per expectation per run, while deciding which
# metrics the expectation needs: some 40% of a small batch's validation (bench.bench_request's profile). Within one
# validation run the expectation objects GX made for it do not change, so each one's configuration is made once per
# run: ``_one_configuration_per_run`` replaces the property, and only the thread running a run of ours (holding
# ``_validating``) keeps a memo, emptied when the run ends; any other reader gets GX's own property. tests/schemas/
# test_rules.py checks that every suite's results are the same with it.
_memo = threading.local()  # .configurations: id(expectation) -> (expectation, its configuration), during a run
MEMO = True  # False: GX's own property on every read (tests compare the two)


def _one_configuration_per_run(make):
    def configuration(self):
        configurations = getattr(_memo, "configurations", None)
        if configurations is None:
            return make(self)
        found = configurations.get(id(self))
        if found is None or found[0] is not self:
            found = configurations[id(self)] = (self, make(self))
        return found[1]
    return property(configuration)


@contextmanager
def _run():
    """One validation run: GX's shared context to ourselves (it is not thread-safe), configurations made once."""
    with _validating:
        _memo.configurations = {} if MEMO else None
        try:
            yield
        finally:
            _memo.configurations = None


def _batch_definition():
    """The ephemeral GX context and its dataframe batch definition, built once per process."""
    with _lock:
        if "bd" not in _context:
            # GX logs its own start-up at INFO line by line; staff need its results, not that.
            logging.getLogger("great_expectations").setLevel(logging.WARNING)
            import great_expectations as gx
            from great_expectations.data_context.types.base import ProgressBarsConfig
            from great_expectations.expectations.expectation import Expectation

            if not getattr(Expectation.configuration.fget, "hub_memo", False):
                Expectation.configuration = _one_configuration_per_run(Expectation.configuration.fget)
                Expectation.configuration.fget.hub_memo = True

            ctx = gx.get_context(mode="ephemeral")
            ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
            asset = ctx.data_sources.add_pandas("hub").add_dataframe_asset("rows")
            _context.update(ctx=ctx, bd=asset.add_batch_definition_whole_dataframe("batch"), suites={})
        return _context["ctx"], _context["bd"]


def _suite(source: str):
    ctx, bd = _batch_definition()
    with _lock:
        if source not in _context["suites"]:
            import great_expectations as gx

            module = suite_module(source)
            checks = module.checks()
            suite = gx.ExpectationSuite(name=f"{source}_suite")
            for i, c in enumerate(checks):
                c.expectation.meta = {"check": i}
                suite.add_expectation(c.expectation)
            _context["suites"][source] = (module, ctx.suites.add(suite), dict(enumerate(checks)))
        return _context["suites"][source]




def validate(source: str, rows: list[dict] | pd.DataFrame, *, run_name: str | None = None,
             batch_keys: list[int] | None = None) -> Outcome:
    """Validate ``rows`` with the suite named ``source``; ``run_name`` (the pipeline run) goes into the Data Docs.

    Rows of several batches may be validated in one run (GX's cost is mostly per run): ``batch_keys`` gives each
    row's batch, and checks of uniqueness hold within a batch."""
    module, suite, checks = _suite(source)
    _, bd = _batch_definition()
    frame = pd.DataFrame(rows)
    frame[BATCH_KEY] = batch_keys if batch_keys is not None else 0
    df = module.prepare(frame).reset_index(drop=True)
    outcome = Outcome(suite=suite.name, success=True, rows=len(df),
                      must_pass_checks={c.name for c in checks.values() if c.must_pass})
    if df.empty:
        return outcome
    with _run():  # GX's context and batch definition are shared and not thread-safe
        result = bd.get_batch(batch_parameters={"dataframe": df}).validate(suite, result_format="COMPLETE")
    outcome.docs = scrub(result.to_json_dict(), run_name=run_name,
                         run_time=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    for r in result.results:
        check = checks[r.expectation_config.meta["check"]]
        bad = r.result.get("unexpected_index_list") or []
        outcome.results.append(
            {
                "check": check.name,
                "expectation": r.expectation_config.type,
                "column": r.expectation_config.kwargs.get("column"),
                "success": bool(r.success),
                "must_pass": check.must_pass,
                "reason": check.reason,
                "unexpected": len(bad),
            }
        )
        if not r.success:
            outcome.success = False
            if check.must_pass:
                outcome.must_pass_failed.append(check.reason)
            if not bad:  # a failure GX could not pin to rows fails the whole batch
                bad = list(range(len(df)))
            for i in bad:
                outcome.failures.setdefault(int(i), []).append((check.name, check.reason))
    return outcome
