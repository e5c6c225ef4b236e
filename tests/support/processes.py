"""The processes on this machine as /proc shows them (Linux): what tests of child processes that must not outlive
their parent look at."""

from __future__ import annotations

import contextlib
from pathlib import Path


def processes() -> dict[int, tuple[str, int, int]]:
    """Every process's (state, parent, session); a zombie's state is "Z" (it has ended, not yet been reaped)."""
    found = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                state, parent, _group, session = (proc / "stat").read_text().rsplit(")", 1)[1].split()[:4]
                found[int(proc.name)] = (state, int(parent), int(session))
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` is a process that has not ended."""
    state = processes().get(pid)
    return state is not None and state[0] != "Z"
