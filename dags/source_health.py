"""source_health: every fifteen minutes, probe each agency and record its health and freshness.

Wiring only: the stage is hub.stages.health.probe_source, mapped per source.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, Asset, get_current_context, task

from hub.airflow.schedules import PROBE_CRON
from hub.airflow.tasks import SOURCE_HEALTH_ASSET, agency, default_args
from schemas.vocabulary import AGENCY_SOURCES

# Each task imports its stage inside its body, deliberately: parsing this file imports only airflow.sdk and
# hub.airflow.tasks, nothing heavy (a stage brings the store and whatever else it uses).
# No task passes the run's logical date: a probe records when the agency actually answered.

DOC = """
### 数据源健康检查 / Source health

**probe_source** (one mapped task per source) sends each agency a query that names nobody, through the same
connector, credential and signature as a real fetch, and records whether it answered, how fast, and the source's
last complete fetch (freshness). **summarize** fails the run when a source is down, so the failure shows in red here
and as an alert in the console.
"""

SOURCES = AGENCY_SOURCES  # the eleven agencies (schemas.vocabulary is a table of names: cheap at parse time)

with DAG(
    dag_id="source_health",
    description="各数据源连通性与数据新鲜度 / agencies' health and freshness",
    schedule=PROBE_CRON,  # the staff pages call probes stale after it (hub.stages.health.monitoring)
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    tags=["hub", "sources"],
    doc_md=DOC,
    default_args=default_args(retries=0, timeout_min=5),
) as dag:

    @task(map_index_template="{{ source_key }}")
    def probe_source(source: str) -> dict:
        from hub.stages.health import probe_source as stage

        get_current_context()["source_key"] = source
        return stage(source, **agency(source))

    @task(outlets=[Asset(SOURCE_HEALTH_ASSET)])
    def summarize(checks: list[dict]) -> dict:
        down = sorted(c["source"] for c in checks if not c["ok"])
        if down:
            raise RuntimeError(f"sources down: {', '.join(down)}")
        return {"up": len(checks)}

    summarize(probe_source.expand(source=list(SOURCES)))
