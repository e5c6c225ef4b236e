"""verify_household: one department request, from consent to a published household record.

Wiring only: every task calls a stage of hub.stages.pipeline / hub.stages.records, imported inside the task, and passes
ids (request, batch), never personal data, through XCom.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, Asset, Param, get_current_context, task

from hub.airflow.tasks import RECORDS_ASSET, agency, default_args, run_as_of

# Each task imports its stage inside its body, deliberately: parsing this file imports only airflow.sdk and
# hub.airflow.tasks, nothing heavy (a stage brings the store and whatever else it uses).

DOC = """
### 核对一户家庭 / Verify one household

Triggered with a request id (`hub verify REQUEST_ID`, or the API through Airflow's REST API).

1. **start_request** marks the request running and lists its sources.
2. **fetch_source** (one mapped task per source): the consent gate decides for each member; only allowed
   members are asked for; the answer is stored encrypted and its hash logged. A retried task finds the batch
   already fetched for its source and asks no agency again (unless consent changed meanwhile).
3. **validate_batch** (per source): the source's Great Expectations suite; failing rows go to quarantine;
   then every member must be answered or explained. The task log gives the address of each result's Data Docs.
4. **cross_check**: checks across the sources (no fact dated before the person's birth); failing rows go to
   quarantine too.
5. **publish_record**: one signed, versioned household record: members, facts with their provenance,
   discrepancies, and the assessment (income, assets, screening per programme), with the completeness of each
   source; its ledger entry and its outbox notification in the same transaction. The record describes the
   household as of the run's logical date (a manual run without one: when it was triggered).

XCom carries only ids. Logs carry no personal data.
"""


with DAG(
    dag_id="verify_household",
    description="核对一户家庭的经济状况 / verify one household's economic status",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=8,
    tags=["hub", "verification"],
    doc_md=DOC,
    params={"request_id": Param("", type="string", description="the request to verify")},
    default_args=default_args(retries=2, retry_delay_s=10),
) as dag:

    @task
    def start_request(params=None) -> list[str]:
        from hub.stages.pipeline import start_request as stage

        return stage(params["request_id"])

    @task(map_index_template="{{ source_key }}")
    def fetch_source(source: str, params=None) -> str:
        from hub.stages.pipeline import fetch_source as stage

        get_current_context()["source_key"] = source
        return stage(params["request_id"], source, **agency(source))

    @task
    def validate_batch(batch_id: str) -> dict:
        from hub.stages.pipeline import validate_batch as stage

        return stage(batch_id, run_id=get_current_context()["run_id"])

    @task
    def cross_check(validations: list[dict], params=None) -> dict:
        from hub.stages.pipeline import cross_check as stage

        return stage(params["request_id"], run_id=get_current_context()["run_id"])

    @task(outlets=[Asset(RECORDS_ASSET)])
    def publish_record(checked: dict, params=None) -> int | None:
        from hub.stages.records import publish_record as stage

        return stage(params["request_id"], as_of=run_as_of())

    batches = fetch_source.expand(source=start_request())
    publish_record(cross_check(validate_batch.expand(batch_id=batches)))
