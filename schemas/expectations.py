"""Custom Great Expectations: check characters of resident ID numbers (GB 11643) and unified social credit codes
(GB 32100). Column map expectations: each row answers yes or no; nulls are left to the not-null checks."""

from __future__ import annotations

import pandas as pd
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import ColumnMapExpectation
from great_expectations.expectations.metrics import ColumnMapMetricProvider, column_condition_partial

from schemas.codes import valid_id_mask
from schemas.uscc import is_valid_uscc


class ColumnValuesValidResidentId(ColumnMapMetricProvider):
    condition_metric_name = "column_values.valid_resident_id"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, **kwargs):
        return pd.Series(valid_id_mask(column.tolist()), index=column.index)


class ExpectColumnValuesToBeValidResidentIds(ColumnMapExpectation):
    """Resident ID numbers: 18 characters, a real birth date, the GB 11643 check character."""

    map_metric = "column_values.valid_resident_id"
    success_keys = ("mostly",)


class ColumnValuesValidUscc(ColumnMapMetricProvider):
    condition_metric_name = "column_values.valid_uscc"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, **kwargs):
        return column.map(lambda v: isinstance(v, str) and is_valid_uscc(v))


class ExpectColumnValuesToBeValidUscc(ColumnMapExpectation):
    """Unified social credit codes with the GB 32100 check character."""

    map_metric = "column_values.valid_uscc"
    success_keys = ("mostly",)
