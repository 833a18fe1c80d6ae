"""One deploy at a time per endpoint name: a lock row in SQLite that names the process holding it.

Not a file lock: a process that dies keeps nothing. A lock whose holder is no longer alive is taken over.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from core.errors import Conflict
from core.local.processes import ProcessIdentity, identify, is_alive
from core.local.store import Store


@contextmanager
def endpoint_lock(store: Store, name: str) -> Iterator[None]:
    """Hold the deploy lock of endpoint `name`, or say that another deploy of it is in progress."""
    me = identify(os.getpid())
    with store.transaction() as db:
        row = db.execute("SELECT * FROM endpoint_locks WHERE name = ?", (name,)).fetchone()
        if row is not None:
            holder = ProcessIdentity(row["owner_pid"], row["owner_start"], row["owner_boot"])
            if holder != me and is_alive(holder):
                raise Conflict(
                    f"another deploy of {name} is in progress (pid {holder.pid}); wait for it, then deploy again"
                )
            if holder == me:
                raise Conflict(f"another deploy of {name} is in progress in this process; wait for it")
        db.execute(
            "INSERT OR REPLACE INTO endpoint_locks (name, owner_pid, owner_start, owner_boot, acquired)"
            " VALUES (?, ?, ?, ?, ?)",
            (name, me.pid, me.start_ticks, me.boot_id, time.time()),
        )
    try:
        yield
    finally:
        with store.transaction() as db:
            db.execute(
                "DELETE FROM endpoint_locks WHERE name = ? AND owner_pid = ? AND owner_start IS ?",
                (name, me.pid, me.start_ticks),
            )
