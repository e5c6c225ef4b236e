"""assistance_review: daily, and as soon as records were published, the review of who is missed and who is
over-assisted (精准评估), and how the city's assistance moves.

Wiring only: the stage is hub.stages.review.run_review; the departments are told by notify_departments (the outbox).
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, Asset, AssetOrTimeSchedule, CronTriggerTimetable, Param, task

from hub.airflow.tasks import RECORDS_ASSET, REVIEW_ASSET, default_args, run_as_of

# The task imports its stage inside its body, deliberately: parsing this file imports only airflow.sdk and
# hub.airflow.tasks, nothing heavy (a stage brings the store and whatever else it uses).

DOC = """
### 精准评估 / Assistance review

Runs every day at 02:00 Beijing time, and as soon as household records were published (`hub://household-records`).

**review** reads every household's latest record and every grant the departments reported, as of the run's date and
under the standards in force then, and keeps:
- 应救未救: households that screen *yes* for a programme with no active grant (and *needs review* ones apart);
- 过度救助: households with an active grant that screen *no*, with the reasons and since which re-check;
- movement per month and county, coverage, and the share of re-checks that changed an answer.

Each run is a ledger entry; a household that entered either list is announced to its departments through the outbox
(`notify_departments`). Nothing ends assistance by itself: people decide. Staff see the results in the console under
**精准评估** (`/console/review`). A manual run may set `as_of` (YYYY-MM-DD).
"""

with DAG(
    dag_id="assistance_review",
    description="应救未救与过度救助、救助动态 / who is missed, who is over-assisted, how assistance moves",
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("0 2 * * *", timezone="Asia/Shanghai"),
                                 assets=[Asset(RECORDS_ASSET)]),
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    tags=["hub", "review"],
    doc_md=DOC,
    params={"as_of": Param(None, type=["null", "string"], format="date",
                           description="the day reviewed (default: the run's date)")},
    default_args=default_args(retries=1, retry_delay_s=60, timeout_min=60),
) as dag:

    @task(outlets=[Asset(REVIEW_ASSET)])
    def review(params: dict | None = None) -> dict:
        from hub.stages.review import review_stage

        return review_stage((params or {}).get("as_of"), run_as_of())

    review()
