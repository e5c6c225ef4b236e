"""A process that publishes the given requests in the given order; tests kill it with SIGKILL mid-way.

    python -m tests.support.publish_worker AS_OF REQUEST_ID...

Prints "ready" once imported and connected, then publishes; HUB_HOME and HUB_DATABASE_URL come from the environment.
"""

from __future__ import annotations

import datetime as dt
import sys


def main(argv: list[str]) -> int:
    import hub.stages.pipeline  # noqa: F401  (imported before "ready": the kill should land in the work, not in imports)
    import hub.rules.unify  # noqa: F401
    from hub.stages.records import publish_record
    from core.store import session

    with session():  # connect (and load keys) before saying ready: the kill should land in the work
        pass
    as_of = dt.datetime.fromisoformat(argv[0])
    print("ready", flush=True)
    sys.stdin.readline()  # go
    for request_id in argv[1:]:
        publish_record(request_id, as_of=as_of)
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
