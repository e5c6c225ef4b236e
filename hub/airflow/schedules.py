"""How often and in what portions the scheduled DAGs run, where a DAG file and the hub's pages or commands need to
know it.

The source_health DAG probes every agency on PROBE_CRON; the staff pages (hub.stages.health.monitoring) call a
source's monitoring stale when its latest probe is older than PROBE_EVERY plus PROBE_GRACE. One constant, so the
two cannot drift apart. Imported by DAG files at parse time: nothing but the standard library here.
"""

from __future__ import annotations

import datetime as dt

PROBE_EVERY = dt.timedelta(minutes=15)
PROBE_CRON = f"*/{int(PROBE_EVERY.total_seconds() // 60)} * * * *"
# a run may start late and take a while (a probe waits up to the connector's timeout; the DAG's tasks up to five
# minutes): one more period before the pages call the probes stale
PROBE_GRACE = dt.timedelta(minutes=15)

# Households per re-check task (reverify_recipients' mapped batches, `hub reverify --sync`, the benchmark): a batch
# pays one GX run per source and the checks across sources once, a fixed cost that a larger batch spreads over more
# rows (the benchmark's rate at 10,000 persons: 2,295 rows/s at 500, 2,506 at 1,000), while its rows are held
# decrypted until it ends (a worker's peak resident set: 564 MB at 500, 743 MB at 1,000; the goal is 1 GB).
RECHECK_BATCH = 1000
