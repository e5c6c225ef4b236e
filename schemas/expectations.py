"""Custom Great Expectations: check characters of resident ID numbers (GB 11643) and unified social credit codes
(GB 32100). Column map expectations: each row answers yes or no; nulls are left to the not-null checks.

GX knows an expectation by the class that defines it: merely defining these classes registers them (GX's metaclass
does). Whatever reads back a stored result or suite that uses them, to validate or to render Data Docs
(schemas.docs.render), must import this module first, or GX answers "expectation not found". Each class also
declares the sentence Data Docs show for it (GX's fallback would print the raw type and its arguments).
"""

from __future__ import annotations

import pandas as pd
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import ColumnMapExpectation, render_suite_parameter_string
from great_expectations.expectations.metrics import ColumnMapMetricProvider, column_condition_partial
from great_expectations.render import LegacyRendererType, RenderedStringTemplateContent
from great_expectations.render.renderer.renderer import renderer
from great_expectations.render.util import num_to_str, substitute_none_for_missing

from schemas.codes import valid_id_mask
from schemas.uscc import is_valid_uscc


def _statement(what: str):
    """A prescriptive renderer (GX's legacy Data Docs renderer, as its own column map expectations declare it):
    "<column> values must be <what>", with "at least N % of the time" when ``mostly`` is below one."""

    @renderer(renderer_type=LegacyRendererType.PRESCRIPTIVE)
    @render_suite_parameter_string
    def prescriptive(cls, configuration=None, result=None, runtime_configuration=None, **kwargs):
        runtime_configuration = runtime_configuration or {}
        params = substitute_none_for_missing(configuration.kwargs, ["column", "mostly"])
        template = f"values must be {what}"
        if isinstance(params["mostly"], (int, float)) and params["mostly"] < 1.0:
            params["mostly_pct"] = num_to_str(params["mostly"] * 100, no_scientific=True)
            template += ", at least $mostly_pct % of the time"
        if runtime_configuration.get("include_column_name") is not False:
            template = "$column " + template
        return [RenderedStringTemplateContent(content_block_type="string_template", string_template={
            "template": template + ".", "params": params, "styling": runtime_configuration.get("styling")})]

    return classmethod(prescriptive)


class ColumnValuesValidResidentId(ColumnMapMetricProvider):
    condition_metric_name = "column_values.valid_resident_id"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, **kwargs):
        return pd.Series(valid_id_mask(column.tolist()), index=column.index)


class ExpectColumnValuesToBeValidResidentIds(ColumnMapExpectation):
    """Resident ID numbers: 18 characters, a real birth date, the GB 11643 check character."""

    map_metric = "column_values.valid_resident_id"
    success_keys = ("mostly",)
    _prescriptive_renderer = _statement("resident ID numbers with a valid GB 11643 check character")


class ColumnValuesValidUscc(ColumnMapMetricProvider):
    condition_metric_name = "column_values.valid_uscc"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, **kwargs):
        return column.map(lambda v: isinstance(v, str) and is_valid_uscc(v))


class ExpectColumnValuesToBeValidUscc(ColumnMapExpectation):
    """Unified social credit codes with the GB 32100 check character."""

    map_metric = "column_values.valid_uscc"
    success_keys = ("mostly",)
    _prescriptive_renderer = _statement("unified social credit codes with a valid GB 32100 check character")
