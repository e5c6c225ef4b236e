"""notify_departments: every five minutes, fan the outbox's material changes out to subscribed departments and
send the deliveries that are due (first attempts and retries).

Wiring only: the stages are hub.stages.notify.fan_out and deliver_pending, and hub.dci.outbox.run_pending.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, task

from hub.airflow.tasks import default_args

# Each task imports its stage inside its body, deliberately: parsing this file imports only airflow.sdk and
# hub.airflow.tasks, nothing heavy (a stage brings the store and whatever else it uses).
# No task passes the run's logical date: no record is stamped here; whether a department may still be told
# (consent, at once) and each delivery's signed timestamp and back-off are the moment of sending.

DOC = """
### 变化通知 / Change notifications

1. **fan_out**: each `record.changed` notification written with a new record version becomes one delivery per
   active subscription of every department that has a request for that household.
2. **deliver**: due deliveries are POSTed to the departments' webhooks, signed (`X-Hub-Signature`) and with an
   `Idempotency-Key`; failures are retried with back-off (at least once), and given up after ten attempts.
3. **notify_platforms**: federated platforms (DCI): record events of the households they subscribed to are sent
   to their `/registry/notify` (the consent gate decides again first), and asynchronous answers not yet
   acknowledged are sent again.
"""

with DAG(
    dag_id="notify_departments",
    description="向订阅部门推送家庭状况变化 / deliver change notifications to subscribed departments",
    schedule="*/5 * * * *",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    tags=["hub", "notifications"],
    doc_md=DOC,
    default_args=default_args(retries=1, timeout_min=10),
) as dag:

    @task
    def fan_out() -> int:
        from hub.stages.notify import fan_out as stage

        return stage()

    @task
    def deliver(_created: int) -> dict:
        from hub.stages.notify import deliver_pending

        return deliver_pending()

    @task
    def notify_platforms() -> dict:
        from hub.dci.outbox import run_pending

        return run_pending()

    deliver(fan_out())
    notify_platforms()
