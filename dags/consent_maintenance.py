"""consent_maintenance: every night, log expired authorizations, purge raw data past its data life, prune old logs.

Wiring only: the stages are in hub.stages.maintenance.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, task

from hub.airflow.tasks import default_args, run_as_of

# Each task imports its stage inside its body, deliberately: parsing this file imports only airflow.sdk and
# hub.airflow.tasks, nothing heavy (a stage brings the store and whatever else it uses).

DOC = """
### 授权与数据期限维护 / Consent maintenance

1. **expire_authorizations**: each authorization past its validity is logged in the ledger, once.
2. **purge_raw_data**: the raw agency answers and rows of every fetch past the authorization's data life are
   deleted; one ledger entry per purge. Published records, validation results and the ledger are kept.
3. **prune_logs**: log files older than the retention (at least 180 days, `HUB_LOG_RETENTION_DAYS`) are deleted.

Every task counts from the run's logical date (a manual run without one: when it was triggered), so a retried task
decides as the first attempt did.
"""

with DAG(
    dag_id="consent_maintenance",
    description="授权到期、数据到期清除与日志保留 / authorization expiry, data purge, log retention",
    schedule="30 1 * * *",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    tags=["hub", "consent"],
    doc_md=DOC,
    default_args=default_args(retries=2, retry_delay_s=60, timeout_min=60),
) as dag:

    @task
    def expire_authorizations() -> int:
        from hub.stages.maintenance import expire_authorizations as stage

        return stage(run_as_of())

    @task
    def purge_raw_data(_expired: int) -> dict:
        from hub.stages.maintenance import purge_raw_data as stage

        return stage(run_as_of())

    @task
    def prune_logs(_purged: dict) -> int:
        from hub.stages.maintenance import log_roots
        from hub.stages.maintenance import prune_logs as stage

        return stage(log_roots(), run_as_of())

    prune_logs(purge_raw_data(expire_authorizations()))
