"""Validation with Great Expectations: suites built in code per source, run on a reused ephemeral context.

GX is imported only when a validation runs (never when a DAG file is parsed), inside the functions that use it
(deliberately: it is heavy). Each expectation is wrapped in a ``Check`` (schemas.checks) with a stable name and a reason staff can read (Chinese, then English); the
result maps each failing row to the checks it failed.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import logging
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pandas as pd

from schemas.checks import BATCH_KEY, Check  # noqa: F401 (re-exported: the suites' modules build on them)
from schemas.docs import COUNTS, scrub
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
    # what the store keeps of it, made once per outcome however many batches of a run share it (hub.stages.pipeline):
    # the Data Docs packed, and the results encoded by what tells one batch's apart from another's
    packed_docs: str | None = field(default=None, repr=False, compare=False)
    encoded_results: dict = field(default_factory=dict, repr=False, compare=False)


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
MEMO = True  # False: GX as it comes, every part made afresh on every read and run (tests compare the two)


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


# GX also plans every run afresh: for each expectation a copy of its configuration, a new expectation object, the
# metrics it depends on (ValidationDependencies) and the graph of the metrics those depend on, a MetricConfiguration
# each with an id made by serialising and hashing its arguments: about half of a small batch's validation, and it
# depends on nothing but the suite, the batch id (always the one dataframe asset's) and the result format. So a suite
# of ours is planned on its first run in a process and the plan is kept (``_plans``): the per-expectation graphs, the
# configurations they were planned for, the expectation object made from each and its metric dependencies. Again
# only inside a run of ours (``_memo.suite`` set, ``_validating`` held): GX used any other way plans as it does.
# tests/schemas/test_rules.py checks each suite's results after a warm-up run against GX planning afresh.
_plans: dict[tuple, tuple] = {}  # (suite, batch id, runtime configuration) -> (graphs, configurations)
_objects: dict[int, tuple] = {}  # id(a kept configuration) -> (it, its expectation object, or None until made)
_dependencies: dict[int, tuple] = {}  # id(a kept expectation object) -> (it, {runtime configuration: dependencies})


def _one_plan_per_suite(make):
    def plan(self, expectation_configurations, processed_configurations, catch_exceptions, runtime_configuration=None):
        suite = getattr(_memo, "suite", None)
        if suite is None:
            return make(self, expectation_configurations, processed_configurations, catch_exceptions,
                        runtime_configuration)
        key = (*suite, self.active_batch_id, repr(runtime_configuration))
        kept = _plans.get(key)
        if kept is None:
            graphs, failed, configurations = make(self, expectation_configurations, [], catch_exceptions,
                                                  runtime_configuration)
            processed_configurations.extend(configurations)
            if failed:  # an expectation GX could not plan: nothing kept, planned afresh on every run
                return graphs, failed, processed_configurations
            kept = _plans[key] = (graphs, configurations)
            _objects.update((id(c), (c, None)) for c in configurations)
        else:
            processed_configurations.extend(kept[1])
        return list(kept[0]), [], processed_configurations
    plan.hub_memo = True
    return plan


def _one_object_per_configuration(make):
    def to_domain_obj(self):
        kept = _objects.get(id(self)) if getattr(_memo, "suite", None) is not None else None
        if kept is None or kept[0] is not self:
            return make(self)
        if kept[1] is None:
            kept = _objects[id(self)] = (self, make(self))
            _dependencies[id(kept[1])] = (kept[1], {})
        return kept[1]
    to_domain_obj.hub_memo = True
    return to_domain_obj


def _dependencies_once(make):
    def get_validation_dependencies(self, execution_engine=None, runtime_configuration=None, **kwargs):
        kept = _dependencies.get(id(self)) if getattr(_memo, "suite", None) is not None and not kwargs else None
        if kept is None or kept[0] is not self:
            return make(self, execution_engine=execution_engine, runtime_configuration=runtime_configuration,
                        **kwargs)
        key = repr(runtime_configuration)
        if key not in kept[1]:
            kept[1][key] = make(self, execution_engine=execution_engine, runtime_configuration=runtime_configuration)
        return kept[1][key]
    get_validation_dependencies.hub_memo = True
    return get_validation_dependencies


def _patch(owner, name: str, wrap) -> None:
    """Replace ``owner.name`` by ``wrap(owner.name)`` once per process."""
    if not getattr(getattr(owner, name), "hub_memo", False):
        setattr(owner, name, wrap(getattr(owner, name)))


@contextmanager
def _run(suite_key=None):
    """One validation run of ``suite_key``'s suite: GX's shared context to ourselves (it is not thread-safe), each
    configuration made once in the run, the suite's plan kept from its first run in this process."""
    with _validating:
        _memo.configurations = {} if MEMO else None
        _memo.suite = suite_key if MEMO else None
        try:
            yield
        finally:
            _memo.configurations = None
            _memo.suite = None


def _batch_definition():
    """The ephemeral GX context and its dataframe batch definition, built once per process."""
    with _lock:
        if "bd" not in _context:
            # GX logs its own start-up at INFO line by line; staff need its results, not that.
            logging.getLogger("great_expectations").setLevel(logging.WARNING)
            import great_expectations as gx
            from great_expectations.data_context.types.base import ProgressBarsConfig
            from great_expectations.expectations.expectation import Expectation
            from great_expectations.expectations.expectation_configuration import ExpectationConfiguration
            from great_expectations.validator.validator import Validator

            if not getattr(Expectation.configuration.fget, "hub_memo", False):
                Expectation.configuration = _one_configuration_per_run(Expectation.configuration.fget)
                Expectation.configuration.fget.hub_memo = True
            _patch(Validator, "_generate_metric_dependency_subgraphs_for_each_expectation_configuration",
                   _one_plan_per_suite)
            _patch(ExpectationConfiguration, "to_domain_obj", _one_object_per_configuration)
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
                _patch(type(c.expectation), "get_validation_dependencies", _dependencies_once)
                suite.add_expectation(c.expectation)
            _context["suites"][source] = (module, ctx.suites.add(suite), dict(enumerate(checks)))
        return _context["suites"][source]


_configurations_json: dict[tuple, str] = {}  # (suite, expectation id) -> its configuration as JSON


def _configuration_json(suite, configuration) -> dict:
    """A check's configuration as GX's result gives it in JSON: converted once per process (an expectation of a
    suite of ours has an id of its own and never changes)."""
    if configuration.id is None:
        return configuration.to_json_dict()
    key = (id(suite), suite.name, configuration.id)
    found = _configurations_json.get(key)
    if found is None:
        found = _configurations_json[key] = json.dumps(configuration.to_json_dict())
    return json.loads(found)  # a dict of its own for each result


def _docs(suite, result, *, run_name: str | None, run_time: str) -> dict:
    """``scrub(result.to_json_dict(), ...)`` without converting what scrub drops: the unexpected values and indexes
    of every check (GX's conversion of a whole result was a fifth of a small batch's run), and each check's
    configuration converted once per process."""
    from great_expectations.util import convert_to_json_serializable as plain

    results = []
    for r in result.results:
        info = r.exception_info
        results.append({"success": plain(r.success),
                        "expectation_config": _configuration_json(suite, r.expectation_config),
                        "result": {k: plain(v) for k, v in (r.result or {}).items() if k in COUNTS},
                        "exception_info": info.to_json_dict() if hasattr(info, "to_json_dict") else info})
    return scrub({"success": plain(result.success), "suite_name": result.suite_name,
                  "statistics": plain(result.statistics), "results": results,
                  "meta": {"great_expectations_version": (result.meta or {}).get("great_expectations_version")}},
                 run_name=run_name, run_time=run_time)


def validate(source: str, rows: list[dict] | pd.DataFrame, *, run_name: str | None = None,
             batch_keys: list[int] | None = None) -> Outcome:
    """Validate ``rows`` with the suite named ``source``; ``run_name`` (the pipeline run) goes into the Data Docs.

    Rows of several batches may be validated in one run (GX's cost is mostly per run): ``batch_keys`` gives each
    row's batch, and checks of uniqueness hold within a batch."""
    from great_expectations.validator.v1_validator import Validator

    module, suite, checks = _suite(source)
    _, bd = _batch_definition()
    frame = pd.DataFrame(rows)
    frame[BATCH_KEY] = batch_keys if batch_keys is not None else 0
    df = module.prepare(frame).reset_index(drop=True)
    outcome = Outcome(suite=suite.name, success=True, rows=len(df),
                      must_pass_checks={c.name for c in checks.values() if c.must_pass})
    if df.empty:
        return outcome
    with _run((id(suite), suite.name)):  # GX's context and batch definition are shared and not thread-safe
        # the validator a ValidationDefinition runs, on the batch definition itself: ``bd.get_batch(...).validate``
        # would load and hash the frame twice (once for the batch, once more inside its validator)
        result = Validator(bd, result_format="COMPLETE",
                           batch_parameters={"dataframe": df}).validate_expectation_suite(suite)
    run_time = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    outcome.docs = (_docs(suite, result, run_name=run_name, run_time=run_time) if MEMO
                    else scrub(result.to_json_dict(), run_name=run_name, run_time=run_time))
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
