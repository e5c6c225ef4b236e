"""reverify_recipients: every night, re-check the current recipients whose authorization allows it.

Wiring only: the stages are hub.stages.reverify.due_recipients and recheck_batch; XCom carries request ids and counts.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, Asset, Param, get_current_context, task

from hub.airflow.schedules import RECHECK_BATCH
from hub.airflow.tasks import RECORDS_ASSET, default_args, run_as_of

# Each task imports its stage inside its body, deliberately: parsing this file imports only airflow.sdk and
# hub.airflow.tasks, nothing heavy (a stage brings the store and whatever else it uses).

DOC = """
### 低保等对象动态复核 / Re-check current recipients

1. **select_due** lists the households found eligible whose authorization is still valid and whose last check is
   at least the authorization's re-check interval old (`hub.stages.reverify`), at the run's logical date, in
   batches of `batch_size`.
2. **recheck_batch** (one mapped task per batch): each household is re-checked through every stage, from the
   consent gate to a new signed record version describing it as of the run's logical date (a manual run without
   one: when it was triggered); its material changes go to the outbox for the departments.
3. **summarize**: how many were re-checked, published, changed, refused or failed.
4. **notify_departments**: each material change becomes a delivery to every subscribed department that has a
   request for the household, and due deliveries are sent (signed webhooks; retried by `notify_departments`).

Params: `limit` (0 = all due), `batch_size`, `application_ids` (re-check these now instead), `every` (every
current recipient now, however recent its last check). Logs and XCom carry ids and counts only.
"""

with DAG(
    dag_id="reverify_recipients",
    description="对在保对象定期复核 / re-check current recipients",
    schedule="0 2 * * *",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    tags=["hub", "verification", "recheck"],
    doc_md=DOC,
    params={"limit": Param(0, type="integer", minimum=0, description="at most this many households (0: all due)"),
            "application_ids": Param([], type="array", description="re-check these applications now, due or not "
                                     "(staff's choice; the consent gate still decides)"),
            "every": Param(False, type="boolean", description="re-check every current recipient now, however recent "
                           "the last check (e.g. after the standards changed)"),
            "batch_size": Param(RECHECK_BATCH, type="integer", minimum=1, maximum=5000,
                                description="households per task (a task holds its rows decrypted until it ends: "
                                            "about 0.4 GB a thousand households)")},
    default_args=default_args(retries=2, retry_delay_s=60, timeout_min=120),
) as dag:

    @task
    def select_due(params=None) -> list[list[str]]:
        from hub.stages.reverify import due_recipients

        due = list(params["application_ids"]) or due_recipients(now=run_as_of(), limit=params["limit"] or None,
                                                                every=params["every"])
        size = params["batch_size"]
        return [due[i: i + size] for i in range(0, len(due), size)]

    @task(outlets=[Asset(RECORDS_ASSET)], map_index_template="{{ batch_label }}")
    def recheck_batch(application_ids: list[str]) -> dict:
        from hub.stages.reverify import recheck_batch as stage

        ctx = get_current_context()
        ctx["batch_label"] = f"{len(application_ids)} households"
        return stage(application_ids, run_id=ctx["run_id"], as_of=run_as_of(ctx))

    @task
    def summarize(results: list[dict]) -> dict:
        totals: dict[str, int] = {}
        for r in results:
            for k, v in r.items():
                totals[k] = totals.get(k, 0) + v
        return totals

    @task
    def notify_departments(_totals: dict) -> dict:
        from hub.stages.notify import deliver_pending, fan_out

        # no as_of here: whether a department may still be told, and each delivery's signed timestamp, are the
        # moment of sending, not the run's
        return {"deliveries": fan_out(), **deliver_pending()}

    notify_departments(summarize(recheck_batch.expand(application_ids=select_due())))
