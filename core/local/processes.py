"""Detached processes we start and later need to recognise: runners and endpoint servers.

A pid alone is not an identity: after a crash or a reboot the number can belong to another program. We
keep (pid, start time in clock ticks, boot id) and call a process alive only when all three still match
and it is not a zombie.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProcessIdentity:
    pid: int
    start_ticks: int | None
    boot_id: str | None


def boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after its closing one.
    return raw[raw.rindex(")") + 2 :].split()


def identify(pid: int) -> ProcessIdentity:
    fields = _stat_fields(pid)
    start = int(fields[19]) if fields else None  # field 22 of stat, counted after the command name
    return ProcessIdentity(pid=pid, start_ticks=start, boot_id=boot_id())


def is_alive(identity: ProcessIdentity) -> bool:
    if identity.boot_id and boot_id() and identity.boot_id != boot_id():
        return False  # the machine restarted since the process was recorded
    fields = _stat_fields(identity.pid)
    if fields is None:
        if sys.platform.startswith("linux"):
            return False
        try:  # no /proc: fall back to a signal-0 probe
            os.kill(identity.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    if fields[0] in ("Z", "X"):
        return False
    return identity.start_ticks is None or int(fields[19]) == identity.start_ticks


def spawn_detached(
    argv: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start a process that outlives this one: own session, no terminal, output to its own log file.

    It never inherits our stdout/stderr: a caller (or CI) waiting on those pipes would hang until the
    detached process ends.
    """
    log_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # What these processes write (splits, models, logs) is private: umask 077, as the home is.
    with open(os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab") as log:
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            umask=0o077,
        )


def terminate(identity: ProcessIdentity, sig: int = signal.SIGTERM) -> bool:
    """Signal a process only if it is still the one we recorded. Returns whether a signal was sent."""
    if not is_alive(identity):
        return False
    try:
        os.kill(identity.pid, sig)
    except ProcessLookupError:
        return False
    return True


def end_runner(identity: ProcessIdentity) -> None:
    """SIGKILL a runner and its step script: it leads its own process group (see spawn_detached)."""
    if not is_alive(identity) or identity.pid in (os.getpid(), os.getpgrp()):
        return  # never ourselves: a runner run in-process (tests, a debugger) shares our process and group
    try:
        os.killpg(identity.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        terminate(identity, signal.SIGKILL)  # not a group leader (started by hand): the runner alone
