"""ledger_checkpoint: every ten minutes, sign a checkpoint of the ledger and verify the whole ledger.

Wiring only: the stages are consent.tree.sign_checkpoint_stage and verify_stage.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, Asset, AssetOrTimeSchedule, CronTriggerTimetable, task

from hub.airflow.tasks import RECORDS_ASSET, default_args

# Each task imports its stage inside its body, deliberately: parsing this file imports only airflow.sdk and
# hub.airflow.tasks, nothing heavy (a stage brings the store and whatever else it uses).
# No task passes the run's logical date: a checkpoint is signed, and the ledger verified, at the moment they
# happen (runs triggered by the records asset have no logical date).

DOC = """
### 账本检查点 / Ledger checkpoint

Runs every ten minutes, and as soon as household records were published (the `hub://household-records` asset).

1. **sign_checkpoint** integrates the entries appended since the last checkpoint into the Merkle tree (RFC 6962)
   and signs the new tree head (C2SP tlog-checkpoint, Ed25519), after proving it consistent with the previous one.
2. **verify_ledger** checks every checkpoint signature, consistency between checkpoints, every leaf against its
   stored event, and the records and authorizations the ledger vouches for. It fails, naming what was altered,
   when anything does not match: auditors are to be told at once.
"""

with DAG(
    dag_id="ledger_checkpoint",
    description="签署账本检查点并校验 / sign a ledger checkpoint and verify the ledger",
    # every ten minutes, and at once when records were published
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("*/10 * * * *", timezone="UTC"),
                                 assets=[Asset(RECORDS_ASSET)]),
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    tags=["hub", "audit"],
    doc_md=DOC,
    default_args=default_args(retries=1, retry_delay_s=60, timeout_min=30),
) as dag:

    @task
    def sign_checkpoint() -> dict:
        from consent.tree import sign_checkpoint_stage

        return sign_checkpoint_stage()

    @task
    def verify_ledger(_checkpoint: dict) -> dict:
        from consent.tree import verify_stage

        return verify_stage()

    verify_ledger(sign_checkpoint())
