"""Execution and step records in the local store, and the rule that a dead runner means Failed."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from core import spec
from core.errors import Conflict, NotFound
from core.local.processes import ProcessIdentity, boot_id, end_runner, is_alive
from core.local.store import StateError, Store, no_space_sentence
from core.models import (
    ConditionResult,
    Execution,
    ExecutionStatus,
    GateOutcome,
    StepRun,
    StepStatus,
)


class ExecutionEnded(Exception):
    """The execution ended (Failed, Stopped) while its runner was still working on it."""


RUNNER_START_GRACE = 60.0  # seconds between creating an execution and recording its runner
# The runner says it is working this often; a runner silent for HEARTBEAT_TIMEOUT (stopped with SIGSTOP,
# hung) is declared dead. Measured on CLOCK_MONOTONIC, so a machine that slept does not fail its runs.
HEARTBEAT_SECONDS = 2.0
HEARTBEAT_TIMEOUT = 30.0
DEAD_RUNNER_REASON = (
    "the local runner (pid {pid}) ended without finishing the execution: it was killed, crashed, or the "
    "machine restarted; see {log} and start a new run"
)
SILENT_RUNNER_REASON = (
    "the local runner (pid {pid}) has sent no heartbeat since {since}: it was stopped or hung, and was ended; "
    "see {log} and start a new run"
)


def _tail(path: Path, size: int = 8192) -> str:
    try:
        with open(path, "rb") as file:
            file.seek(0, 2)
            file.seek(max(0, file.tell() - size))
            return file.read().decode(errors="replace")
    except OSError:
        return ""


def _execution(row: sqlite3.Row) -> Execution:
    return Execution(
        arn=row["arn"],
        pipeline_name=row["pipeline_name"],
        status=ExecutionStatus(row["status"]),
        created=row["created"],
        last_modified=row["last_modified"],
        parameters=json.loads(row["parameters"]),
        failure_reason=row["failure_reason"],
    )


def _step(row: sqlite3.Row) -> StepRun:
    gate = None
    if row["gate"]:
        data = json.loads(row["gate"])
        gate = GateOutcome(
            passed=data["Outcome"], conditions=tuple(ConditionResult.from_dict(c) for c in data["Conditions"])
        )
    return StepRun(
        name=row["name"],
        status=StepStatus(row["status"]),
        start_time=row["start_time"],
        end_time=row["end_time"],
        failure_reason=row["failure_reason"],
        gate=gate,
        model_package_arn=row["model_package_arn"],
    )


class ExecutionRecords:
    """Reads and writes executions and their steps; every write is one transaction."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._unrecorded: dict[str, tuple[ExecutionStatus, str | None, float]] = {}

    # ---- writes -------------------------------------------------------------------------------------

    def create(
        self,
        execution_id: str,
        arn: str,
        parameters: dict[str, str],
        run_parameters: dict,
        workdir: Path,
    ) -> None:
        now = time.time()
        with self.store.transaction() as db:
            db.execute(
                "INSERT INTO executions (execution_id, arn, pipeline_name, status, created, last_modified,"
                " parameters, run_parameters, workdir) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    execution_id,
                    arn,
                    spec.PIPELINE_NAME,
                    str(ExecutionStatus.EXECUTING),
                    now,
                    now,
                    json.dumps(parameters),
                    json.dumps(run_parameters),
                    str(workdir),
                ),
            )

    def set_runner(self, arn: str, identity: ProcessIdentity) -> None:
        with self.store.transaction() as db:
            db.execute(
                "UPDATE executions SET runner_pid = ?, runner_start = ?, runner_boot = ?, heartbeat = ?,"
                " heartbeat_monotonic = ? WHERE arn = ?",
                (identity.pid, identity.start_ticks, identity.boot_id, time.time(), time.monotonic(), arn),
            )

    def heartbeat(self, arn: str) -> None:
        """The runner is working: written every HEARTBEAT_SECONDS while the execution is active."""
        with self.store.transaction() as db:
            db.execute(
                "UPDATE executions SET heartbeat = ?, heartbeat_monotonic = ? WHERE arn = ? AND status IN (?, ?)",
                (time.time(), time.monotonic(), arn, *self._active_statuses()),
            )

    def finish(
        self,
        arn: str,
        status: ExecutionStatus,
        failure_reason: str | None = None,
        db: sqlite3.Connection | None = None,
    ) -> None:
        """Record the end, unless the execution already ended (e.g. it was declared Failed meanwhile).

        `db`: inside that transaction, so the end lands with what the last step wrote."""
        with self.store.transaction() if db is None else contextlib.nullcontext(db) as db:
            db.execute(
                "UPDATE executions SET status = ?, failure_reason = ?, last_modified = ?"
                " WHERE arn = ? AND status IN (?, ?)",
                (str(status), failure_reason, time.time(), arn, *self._active_statuses()),
            )

    @contextmanager
    def while_active(self, arn: str) -> Iterator[sqlite3.Connection]:
        """One transaction that goes ahead only while the execution is still running: what it writes
        (a registered version and its step's success) lands together or not at all."""
        with self.store.transaction() as db:
            row = self._row(db, arn)
            if not ExecutionStatus(row["status"]).is_active:
                raise ExecutionEnded(f"execution {arn} already ended ({row['status']})")
            yield db

    def request_stop(self, arn: str) -> Execution:
        with self.store.transaction() as db:
            row = self._row(db, arn)
            if not ExecutionStatus(row["status"]).is_active:
                raise Conflict(f"execution {arn} has already ended ({row['status']}); there is nothing to stop")
            db.execute(
                "UPDATE executions SET status = ?, last_modified = ? WHERE arn = ?",
                (str(ExecutionStatus.STOPPING), time.time(), arn),
            )
            return _execution(self._row(db, arn))

    def start_step(self, arn: str, name: str, log_path: Path) -> None:
        now = time.time()
        with self.store.transaction() as db:
            execution_id = self._row(db, arn)["execution_id"]
            db.execute(
                "INSERT INTO steps (execution_id, position, name, status, start_time, log_path)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (execution_id, spec.STEP_NAMES.index(name), name, str(StepStatus.STARTING), now, str(log_path)),
            )
            db.execute("UPDATE executions SET last_modified = ? WHERE arn = ?", (now, arn))

    def update_step(
        self,
        arn: str,
        name: str,
        status: StepStatus,
        failure_reason: str | None = None,
        gate: GateOutcome | None = None,
        model_package_arn: str | None = None,
        db: sqlite3.Connection | None = None,
    ) -> None:
        now = time.time()
        end = None if status.is_active else now
        gate_json = None
        if gate is not None:
            gate_json = json.dumps({"Outcome": gate.passed, "Conditions": [c.to_dict() for c in gate.conditions]})
        with self.store.transaction() if db is None else contextlib.nullcontext(db) as db:
            execution_id = self._row(db, arn)["execution_id"]
            db.execute(
                "UPDATE steps SET status = ?, end_time = ?, failure_reason = ?,"
                " gate = COALESCE(?, gate), model_package_arn = COALESCE(?, model_package_arn)"
                " WHERE execution_id = ? AND name = ?",
                (str(status), end, failure_reason, gate_json, model_package_arn, execution_id, name),
            )
            db.execute("UPDATE executions SET last_modified = ? WHERE arn = ?", (now, arn))

    # ---- reads --------------------------------------------------------------------------------------

    def get(self, arn: str) -> Execution:
        self.reconcile(arn)
        with self.store.connect() as db:
            return self._verdict_applied(_execution(self._row(db, arn)))

    def list(self) -> list[Execution]:
        with self.store.connect() as db:
            active = [
                r["arn"]
                for r in db.execute("SELECT arn FROM executions WHERE status IN (?, ?)", self._active_statuses())
            ]
        for arn in active:
            self.reconcile(arn)
        with self.store.connect() as db:
            rows = db.execute("SELECT * FROM executions ORDER BY created DESC, execution_id").fetchall()
        return [self._verdict_applied(_execution(r)) for r in rows]

    def steps(self, arn: str) -> list[StepRun]:
        self.reconcile(arn)
        with self.store.connect() as db:
            execution_id = self._row(db, arn)["execution_id"]
            rows = db.execute(
                "SELECT * FROM steps WHERE execution_id = ? ORDER BY position", (execution_id,)
            ).fetchall()
        steps = [_step(r) for r in rows]
        verdict = self._unrecorded.get(arn)
        if verdict is None:
            return steps
        status, _, end = verdict
        final = StepStatus.STOPPED if status is ExecutionStatus.STOPPED else StepStatus.FAILED
        return [
            dataclasses.replace(s, status=final, end_time=max(end, s.start_time or 0)) if s.status.is_active else s
            for s in steps
        ]

    def _verdict_applied(self, execution: Execution) -> Execution:
        """A verdict the database could not take yet (a full disk) is shown all the same."""
        verdict = self._unrecorded.get(execution.arn)
        if verdict is None or not execution.status.is_active:
            self._unrecorded.pop(execution.arn, None)
            return execution
        status, reason, end = verdict
        return dataclasses.replace(execution, status=status, failure_reason=reason, last_modified=end)

    def step_log_path(self, arn: str, name: str) -> Path | None:
        with self.store.connect() as db:
            execution_id = self._row(db, arn)["execution_id"]
            row = db.execute(
                "SELECT log_path FROM steps WHERE execution_id = ? AND name = ?", (execution_id, name)
            ).fetchone()
        return Path(row["log_path"]) if row and row["log_path"] else None

    def run_parameters(self, arn: str) -> dict:
        with self.store.connect() as db:
            return json.loads(self._row(db, arn)["run_parameters"])

    def workdir(self, arn: str) -> Path:
        with self.store.connect() as db:
            return Path(self._row(db, arn)["workdir"])

    def runner(self, arn: str) -> ProcessIdentity | None:
        with self.store.connect() as db:
            row = self._row(db, arn)
        if row["runner_pid"] is None:
            return None
        return ProcessIdentity(row["runner_pid"], row["runner_start"], row["runner_boot"])

    # ---- the dead-runner rule -----------------------------------------------------------------------

    def reconcile(self, arn: str) -> None:
        """An active execution whose runner is gone becomes Failed, with its open steps, in one change.

        Checked inside the write transaction: a runner that finished just before we looked has already
        committed its final status, so it is never overwritten.
        """
        with self.store.connect() as db:
            row = self._row(db, arn)
        if not ExecutionStatus(row["status"]).is_active:
            return
        now = time.time()
        log = Path(row["workdir"]) / "runner.log"
        if row["runner_pid"] is None:
            # The starter records the runner right after spawning it; a long gap means it died first.
            if now - row["created"] < RUNNER_START_GRACE:
                return
            reason = f"the local runner never started; see {log} and start a new run"
        else:
            identity = ProcessIdentity(row["runner_pid"], row["runner_start"], row["runner_boot"])
            # The run ended at the runner's last sign of life (a heartbeat, or a step it recorded), not when
            # somebody looked.
            if row["heartbeat"] is not None:
                now = max(row["heartbeat"], row["last_modified"])
            if not is_alive(identity):
                # A runner that died of a full disk could not say so: its log and the disk can.
                reason = no_space_sentence(self.store.home, _tail(log)) or DEAD_RUNNER_REASON.format(
                    pid=identity.pid, log=log
                )
            elif self._silent(row, identity):
                since = time.strftime("%H:%M:%S", time.localtime(row["heartbeat"]))
                reason = SILENT_RUNNER_REASON.format(pid=identity.pid, since=since, log=log)
                end_runner(identity)  # declared dead: it must not write again if it ever resumes
            else:
                return
        # On a full disk the write fails: reads show the verdict all the same, and a later look records it.
        try:
            self._record_end(arn, now, reason)
            self._unrecorded.pop(arn, None)
        except StateError:
            stopped = row["status"] == ExecutionStatus.STOPPING
            final = ExecutionStatus.STOPPED if stopped else ExecutionStatus.FAILED
            self._unrecorded[arn] = (final, None if stopped else reason, now)

    def _record_end(self, arn: str, now: float, reason: str) -> None:
        with self.store.transaction() as db:
            row = self._row(db, arn)
            if not ExecutionStatus(row["status"]).is_active:
                return
            stopped = row["status"] == ExecutionStatus.STOPPING
            final = ExecutionStatus.STOPPED if stopped else ExecutionStatus.FAILED
            step_final = StepStatus.STOPPED if stopped else StepStatus.FAILED
            db.execute(
                "UPDATE executions SET status = ?, failure_reason = ?, last_modified = ? WHERE arn = ?",
                (str(final), None if stopped else reason, now, arn),
            )
            db.execute(
                # A step that started after the last heartbeat ends when it started, not before.
                "UPDATE steps SET status = ?, end_time = MAX(?, COALESCE(start_time, 0)), failure_reason = ?"
                " WHERE execution_id = ? AND status IN (?, ?, ?)",
                (
                    str(step_final),
                    now,
                    None if stopped else "the runner ended while this step was running",
                    row["execution_id"],
                    *(str(s) for s in StepStatus if s.is_active),
                ),
            )

    @staticmethod
    def _silent(row: sqlite3.Row, identity: ProcessIdentity) -> bool:
        if row["heartbeat_monotonic"] is None or identity.boot_id != boot_id():
            return False  # a runner of an older version, or a clock of another boot: only liveness counts
        return time.monotonic() - row["heartbeat_monotonic"] > HEARTBEAT_TIMEOUT

    @staticmethod
    def _active_statuses() -> tuple[str, ...]:
        return tuple(str(s) for s in ExecutionStatus if s.is_active)

    @staticmethod
    def _row(db: sqlite3.Connection, arn: str) -> sqlite3.Row:
        row = db.execute("SELECT * FROM executions WHERE arn = ?", (arn,)).fetchone()
        if row is None:
            raise NotFound(f"no execution {arn} in this home; `housing-tui executions` lists them")
        return row
