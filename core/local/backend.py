"""The embedded backend: runs on this machine, state in SQLite and files under the home folder."""

from __future__ import annotations

import dataclasses
import secrets
import sys
from pathlib import Path

from core import arns, spec
from core.backend import LogChunk, RegistryAndEndpoints, TestRows
from core.errors import UserError
from core.inputs import BUNDLED_DATA, check_input_file
from core.local.endpoints import LocalEndpoints
from core.local.executions import ExecutionRecords
from core.local.processes import identify, spawn_detached
from core.local.registry import LocalRegistry
from core.local.store import Store
from core.models import (
    Execution,
    ExecutionStatus,
    StepRun,
)
from core.spec import RunParameters


def _partial_utf8_tail(data: bytes) -> int:
    """How many bytes at the end start a UTF-8 character whose rest is not written yet (0 to 3).

    They are held back for the next read; anything else undecodable is shown as U+FFFD and consumed.
    """
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 == 0x80:  # a continuation byte: look further back for the lead byte
            continue
        needed = 2 if 0xC0 <= byte < 0xE0 else 3 if 0xE0 <= byte < 0xF0 else 4 if byte >= 0xF0 else 1
        return back if needed > back else 0
    return 0


class LocalBackend(RegistryAndEndpoints):
    name = "local"
    poll_seconds = 0.25  # live views and --wait: reads are local SQLite queries

    def __init__(self, home: Path, group: str = spec.DEFAULT_GROUP) -> None:
        self.home = Path(home)
        self.store = Store(self.home)
        self.executions = ExecutionRecords(self.store)
        self.registry = LocalRegistry(self.store, group)
        self.endpoints = LocalEndpoints(self.store, self.registry)

    # ---- runs ---------------------------------------------------------------------------------------

    def start_run(self, params: RunParameters) -> Execution:
        input_path = check_input_file(params.input_data) if params.input_data else BUNDLED_DATA
        champion = None
        if params.min_improvement is not None:
            best = self.registry.champion()
            if best is not None and best.metrics is not None:
                champion = spec.Champion(version=best.version, r2=best.metrics.r2)
        params = dataclasses.replace(params, input_data=str(input_path), champion=champion)

        execution_id = secrets.token_hex(6)
        arn = arns.execution_arn(spec.PIPELINE_NAME, execution_id)
        workdir = self.home / "executions" / execution_id
        workdir.mkdir(mode=0o700, parents=True)
        run_parameters = {
            **dataclasses.asdict(params),
            "approval_status": str(params.approval_status),
            "group": self.registry.group,
        }
        self.executions.create(execution_id, arn, params.as_pipeline_parameters(), run_parameters, workdir)
        try:
            process = spawn_detached(
                [sys.executable, "-m", "core.local.runner", "--home", str(self.home), "--execution-arn", arn],
                log_path=workdir / "runner.log",
                cwd=workdir,
            )
        except OSError as exc:
            self.executions.finish(arn, ExecutionStatus.FAILED, f"the local runner could not start: {exc}")
            raise UserError(f"the local runner could not start ({exc}); check that {sys.executable} runs") from None
        # Once this Popen object is dropped, the subprocess module reaps the runner when it ends, and
        # until then is_alive() treats a zombie as dead, so no run waits on a finished runner.
        self.executions.set_runner(arn, identify(process.pid))
        return self.executions.get(arn)

    def list_executions(self, limit: int | None = None) -> list[Execution]:
        executions = self.executions.list()
        return executions if limit is None else executions[:limit]

    def get_execution(self, arn: str) -> Execution:
        return self.executions.get(arns.check_execution_arn(arn))

    def list_steps(self, arn: str) -> list[StepRun]:
        return self.executions.steps(arns.check_execution_arn(arn))

    def read_step_log(self, arn: str, step: str, cursor: int = 0) -> LogChunk:
        if step not in spec.STEP_NAMES:
            raise UserError(f"step {step!r} is not one of {', '.join(spec.STEP_NAMES)}")
        path = self.executions.step_log_path(arns.check_execution_arn(arn), step)
        if path is None or not path.exists():
            return LogChunk("", cursor)
        with open(path, "rb") as log:
            log.seek(cursor)
            data = log.read()
        complete = len(data) - _partial_utf8_tail(data)
        return LogChunk(data[:complete].decode("utf-8", errors="replace"), cursor + complete)

    def stop_execution(self, arn: str) -> Execution:
        arn = arns.check_execution_arn(arn)
        self.executions.get(arn)  # reconcile first: a dead runner's run is Failed, not stoppable
        execution = self.executions.request_stop(arn)
        # The runner notices Stopping within a fraction of a second and stops its current step.
        return execution

    def test_rows(self, execution_arn: str, limit: int) -> TestRows:
        arn = arns.check_execution_arn(execution_arn)
        split = self.executions.workdir(arn) / spec.PREPROCESS / "output" / "test" / "test.csv"
        if not split.is_file():
            raise UserError(f"execution {arn} has no test split (its Preprocess step did not finish)")
        with open(split) as rows:
            return TestRows.from_split(rows, limit)
