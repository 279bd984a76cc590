"""Which process does a piece of work, and is it still alive?

Work that outlives a request (an import task, an upload's temp file) records its
owner as ``{"host", "pid", "start"}``; a worker that starts later uses
``owner_alive`` to tell an orphan of a killed process from live work. The start
time tells a reused pid apart; another host's process cannot be judged here.
"""

from __future__ import annotations

import os
import socket


def _proc_stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat fields after the command name (Linux), None elsewhere or when gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            stat = fh.read()
    except OSError:
        return None
    # The command name is parenthesised and may contain spaces: split after it.
    return stat.rsplit(")", 1)[1].split()


def _process_start(pid: int) -> str | None:
    """Start time of ``pid`` in clock ticks since boot (field 22), to tell a reused pid apart."""
    fields = _proc_stat(pid)
    return fields[19] if fields else None


def current_owner() -> dict:
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "start": _process_start(pid)}


def owner_alive(owner: dict) -> bool | None:
    """True/False for a process on this host; None when it runs elsewhere (cannot tell)."""
    if owner.get("host") != socket.gethostname():
        return None
    pid = owner.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    fields = _proc_stat(pid)
    if fields and fields[0] in ("Z", "X"):
        return False  # a zombie: killed, not yet reaped by its (possibly dead) parent
    started = owner.get("start")
    return started is None or fields is None or fields[19] == started
