"""Rows validated per second by a source's GX suite (bank: the source with the most rows), at 100,000 and
1,000,000 rows, and the ratio to the same checks written as vectorized pandas, in the same run."""

from __future__ import annotations

# Imports inside functions below are deliberate: `hub bench` imports every benchmark to list it, and each loads
# what it measures only when it runs (some in a child process of their own, with a scratch HUB_HOME set first).
import time

import pandas as pd

SOURCE = "bank"


def _rows(n: int) -> list[dict]:
    from agencies.server import Population

    pop = Population(5, 400)
    base = [r for i in pop.by_id for r in (pop.rows(SOURCE, i) or [])]
    out = []
    tile = 0
    while len(out) < n:
        for r in base:
            out.append({**r, "account": f"{r['account']}-{tile}"})
        tile += 1
    return out[:n]


def pandas_checks(rows: list[dict]) -> int:
    """The bank suite's checks as plain vectorized pandas; returns the number of failing rows."""
    from schemas.codes import valid_id_mask
    from schemas.contracts import EXTRA, SPECS
    from schemas.rules import RULES

    spec, rules = SPECS[SOURCE], RULES[SOURCE]
    df = pd.DataFrame(rows).reindex(columns=[*spec.fields, EXTRA])
    bad = pd.Series(False, index=df.index)
    for f in rules.required:
        bad |= df[f].isna()
    bad |= ~pd.Series(valid_id_mask(df["id_number"].tolist()), index=df.index) & df["id_number"].notna()
    for f, table in spec.codes.items():
        bad |= ~df[f].isin(list(table)) & df[f].notna()
    for f in rules.non_negative:
        num = pd.to_numeric(df[f], errors="coerce")
        bad |= (num.isna() & df[f].notna()) | (num < 0)
    month = time.strftime("%Y-%m", time.gmtime())
    for f in rules.periods:
        bad |= ~df[f].astype(str).str.fullmatch(r"\d{4}-(?:0[1-9]|1[0-2])") & df[f].notna()
        bad |= df[f].astype(str) > month  # not in the future
    bad |= df.duplicated(subset=list(rules.unique), keep=False)
    bad |= df[EXTRA].notna()
    return int(bad.sum())


def run(quick: bool = False) -> dict:
    from schemas.suite import validate

    out = {}
    validate(SOURCE, _rows(100))  # build the GX context and suite outside the measurement
    for n in ((10_000, 100_000) if quick else (100_000, 1_000_000)):
        rows = _rows(n)
        t0 = time.perf_counter()
        outcome = validate(SOURCE, rows)
        gx_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        failing = pandas_checks(rows)
        pd_s = time.perf_counter() - t0
        assert failing == len(outcome.failures) == 0, (failing, len(outcome.failures))
        label = f"{n // 1000}k" if n < 1_000_000 else "1m"
        out[f"gx_rows_per_s_{label}"] = round(n / gx_s, 1)
        out[f"gx_ratio_vs_pandas_{label}"] = round(pd_s / gx_s, 3)
        print(f"validation of {n:,} {SOURCE} rows: GX {n / gx_s:,.0f} rows/s, pandas {n / pd_s:,.0f} rows/s, "
              f"ratio {pd_s / gx_s:.3f}")
    if not quick:  # the report's figures: the largest size
        out["gx_rows_per_s"], out["gx_ratio_vs_pandas"] = out["gx_rows_per_s_1m"], out["gx_ratio_vs_pandas_1m"]
    return out


if __name__ == "__main__":
    run()
