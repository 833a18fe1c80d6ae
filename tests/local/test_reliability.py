"""The local backend's state stays true to what happened: runners that die, databases that break."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from core.local import backend as backend_module
from core.local.backend import LocalBackend
from core.local.executions import ExecutionRecords
from core.local.processes import identify
from core.local.runner import Runner
from core.models import ExecutionStatus, StepStatus
from core.spec import RunParameters


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
    with pytest.raises(Killed):
        runner.run()
    monkeypatch.setattr(ExecutionRecords, "finish", original)

    # Someone looks later: the runner is gone, and the run registered its version.
    backend.executions.set_runner(execution.arn, identify(dead_process().pid))
    final = backend.get_execution(execution.arn)
    [version] = backend.list_versions()
    assert final.status is ExecutionStatus.SUCCEEDED and final.failure_reason is None
    register = {s.name: s for s in backend.list_steps(execution.arn)}["Register"]
    assert register.status is StepStatus.SUCCEEDED and register.model_package_arn == version.arn
