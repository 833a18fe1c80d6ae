"""Runs whose runner dies, stops or is killed, and databases of the previous version: the runs behind
each are real, so these tests sit apart from the quick ones in test_reliability.py."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

import pytest

from core.local import backend as backend_module
from core.local.backend import LocalBackend
from core.local.executions import ExecutionRecords
from core.local.processes import identify
from core.local.runner import Runner, keep_heartbeat
from core.models import ExecutionStatus, StepStatus
from core.spec import RunParameters
from core.waiting import wait_for_execution


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs, no handler catches it."""


class ThisProcess:
    pid = os.getpid()


def dead_process() -> subprocess.Popen[bytes]:
    process = subprocess.Popen(["true"])
    process.wait()
    return process


def test_a_runner_killed_after_register_commits_leaves_a_succeeded_run(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The run is started as usual but its runner is this process, so the kill lands exactly between
    # Register's commit and the runner's last word.
    monkeypatch.setattr(backend_module, "spawn_detached", lambda *args, **kwargs: ThisProcess())
    backend = LocalBackend(home)
    execution = backend.start_run(RunParameters(r2_threshold=0.5))
    original = ExecutionRecords.finish

    def killed_before_its_own_finish(self, arn, status, failure_reason=None, db=None):
        if db is None:
            raise Killed()
        return original(self, arn, status, failure_reason, db)

    monkeypatch.setattr(ExecutionRecords, "finish", killed_before_its_own_finish)
    runner = Runner(home, execution.arn)
    done = threading.Event()  # the heartbeat a runner process keeps, so a slow machine does not fail the run
    beat = threading.Thread(target=keep_heartbeat, args=(backend.executions, execution.arn, done), daemon=True)
    beat.start()
    try:
        with pytest.raises(Killed):
            runner.run()
    finally:
        done.set()
        beat.join()
    monkeypatch.setattr(ExecutionRecords, "finish", original)

    # Someone looks later: the runner is gone, and the run registered its version.
    backend.executions.set_runner(execution.arn, identify(dead_process().pid))
    final = backend.get_execution(execution.arn)
    [version] = backend.list_versions()
    assert final.status is ExecutionStatus.SUCCEEDED and final.failure_reason is None
    register = {s.name: s for s in backend.list_steps(execution.arn)}["Register"]
    assert register.status is StepStatus.SUCCEEDED and register.model_package_arn == version.arn


def wait_until(condition, what: str, timeout: float = 120.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(0.05)


def executing(backend: LocalBackend, arn: str, step: str) -> bool:
    found = {s.name: s for s in backend.list_steps(arn)}.get(step)
    return found is not None and found.status is StepStatus.EXECUTING


def test_a_stopped_runner_reads_failed_with_the_time_of_its_last_heartbeat(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import signal
    import time

    from core.local import executions

    monkeypatch.setattr(executions, "HEARTBEAT_TIMEOUT", 3.0)  # the bound, shortened for the test
    backend = LocalBackend(home)
    execution = backend.start_run(RunParameters(r2_threshold=0.0))
    wait_until(lambda: executing(backend, execution.arn, "Train"), "Train to start")
    runner = backend.executions.runner(execution.arn)
    os.kill(runner.pid, signal.SIGSTOP)  # alive, but does nothing: before, it stayed Executing forever
    stopped_at = time.time()
    wait_until(lambda: not backend.get_execution(execution.arn).status.is_active, "the verdict", timeout=60)
    final = backend.get_execution(execution.arn)
    assert final.status is ExecutionStatus.FAILED
    assert f"the local runner (pid {runner.pid}) has sent no heartbeat since " in final.failure_reason
    # It ended when it went silent (its last heartbeat), not when somebody looked, 3 s and more later.
    assert final.last_modified <= stopped_at
    train = {s.name: s for s in backend.list_steps(execution.arn)}["Train"]
    assert train.status is StepStatus.FAILED and train.end_time == final.last_modified
    # Declared dead, it was ended: it cannot resume and write over the verdict.
    wait_until(lambda: not executions.is_alive(runner), "the runner to be ended", timeout=10)


def test_a_killed_runner_ends_at_its_last_heartbeat_not_when_someone_looks(home: Path) -> None:
    import signal
    import time

    backend = LocalBackend(home)
    execution = backend.start_run(RunParameters(r2_threshold=0.0))
    wait_until(lambda: executing(backend, execution.arn, "Train"), "Train to start")
    runner = backend.executions.runner(execution.arn)
    os.killpg(runner.pid, signal.SIGKILL)
    killed_at = time.time()
    time.sleep(3.0)  # nobody looks for a while
    final = backend.get_execution(execution.arn)
    assert final.status is ExecutionStatus.FAILED and "ended without finishing" in final.failure_reason
    assert final.last_modified <= killed_at  # before: the moment of this look, 3 s later


def test_a_database_of_the_previous_version_is_migrated_after_a_backup(home: Path) -> None:
    import sqlite3

    from core.local.store import Store

    Store(home)
    with sqlite3.connect(home / "state.db") as db:  # the heartbeat columns did not exist in version 2
        db.execute("ALTER TABLE executions DROP COLUMN heartbeat_monotonic")
        db.execute("ALTER TABLE executions DROP COLUMN heartbeat")
        db.execute("PRAGMA user_version=2")
    backend = LocalBackend(home)
    with sqlite3.connect(home / "state.db.bak") as copy:
        assert copy.execute("PRAGMA user_version").fetchone()[0] == 2
    execution = backend.start_run(RunParameters(r2_threshold=0.5))
    assert wait_for_execution(backend, execution.arn, timeout=120).status is ExecutionStatus.SUCCEEDED
