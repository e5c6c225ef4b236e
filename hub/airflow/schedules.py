"""How often the scheduled DAGs run, where both a DAG file and the hub's pages need to know it.

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
