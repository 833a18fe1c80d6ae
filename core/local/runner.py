"""The local pipeline runner: one detached process per execution, `python -m core.local.runner`.

It runs the steps of core.spec in order. Preprocess, Train and Evaluate run the container scripts as
their own processes, pointed at folders of the execution's work directory the way SageMaker mounts S3
data under /opt/ml; each script's output goes to that step's log file as it is written. CheckR2 and
Register are the runner's own. Every status change is committed to the store when it happens, so any
reader (CLI, TUI) sees the run live.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tarfile
import threading
import time
import traceback
from pathlib import Path

from core import spec
from core.errors import UserError
from core.hashing import file_sha256
from core.local.executions import HEARTBEAT_SECONDS, ExecutionEnded, ExecutionRecords
from core.local.processes import identify
from core.local.registry import LocalRegistry
from core.local.store import Store, no_space_sentence
from core.models import ApprovalStatus, ExecutionStatus, StepStatus
from core.sources import ENTRY_POINT, SCRIPTS_DIR

STOP_GRACE_SECONDS = 5.0
# A step script that runs this long is stuck (the bundled data takes about a second): the step fails
# instead of holding the run at Executing forever, as SageMaker's MaxRuntimeInSeconds would.
STEP_TIMEOUT_SECONDS = 3600.0


class StepFailed(Exception):
    """A step ended unsuccessfully; the message becomes its FailureReason."""


class Stopped(Exception):
    """A stop was requested while the step ran."""


def pack_model(model_dir: Path, archive: Path) -> None:
    """Pack SM_MODEL_DIR as SageMaker does: its files at the archive's root (model.joblib, no folder)."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz") as tar:
        for item in sorted(model_dir.iterdir()):
            tar.add(item, arcname=item.name)


def repack_model(trained: Path, entry_point: Path, archive: Path) -> None:
    """What SageMaker's repack step does for RegisterModel: the trained archive plus code/entry_point.py.

    The registered version then carries the inference code it was registered with, and the endpoint
    imports it from there, as the scikit-learn container imports /opt/ml/model/code/entry_point.py.
    """
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(trained, "r:gz") as source, tarfile.open(archive, "w:gz") as tar:
        for member in source.getmembers():
            if member.name.split("/", 1)[0] == "code":
                continue  # a repack replaces any code the training job left
            tar.addfile(member, source.extractfile(member) if member.isfile() else None)
        tar.add(entry_point, arcname=f"code/{entry_point.name}")


def failure_reason(log_path: Path, returncode: int) -> str:
    """The script's own "error: ..." line if it wrote one, else the last line it printed."""
    try:
        lines = [line.strip() for line in log_path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        lines = []
    for line in reversed(lines):
        if line.startswith("error: "):
            return line.removeprefix("error: ")
    last = f": {lines[-1]}" if lines else ""
    return f"the script exited with code {returncode}{last}"


def _die_with_parent() -> None:
    # Linux only: a script whose runner is killed gets SIGKILL too instead of running on unobserved.
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class Runner:
    def __init__(self, home: Path, arn: str) -> None:
        self.store = Store(home)
        self.records = ExecutionRecords(self.store)
        self.arn = arn
        self.workdir = self.records.workdir(arn)
        raw = self.records.run_parameters(arn)
        champion = raw.get("champion")
        self.params = spec.RunParameters(
            input_data=raw["input_data"],
            test_size=raw["test_size"],
            split_seed=raw["split_seed"],
            r2_threshold=raw["r2_threshold"],
            approval_status=ApprovalStatus(raw["approval_status"]),
            min_improvement=raw["min_improvement"],
            champion=spec.Champion(**champion) if champion else None,
        )
        self.group = raw["group"]
        self.pipeline_parameters = self.records.get(arn).parameters
        self.stop_requested = False
        self.child: subprocess.Popen[bytes] | None = None

    # ---- stop handling ------------------------------------------------------------------------------

    def on_stop_signal(self, signum: int, frame: object) -> None:
        self.stop_requested = True
        if self.child is not None and self.child.poll() is None:
            self.child.terminate()

    def check_stop(self) -> None:
        status = self.records.get(self.arn).status
        if not status.is_active:
            raise ExecutionEnded(f"execution already {status}")
        if self.stop_requested or status == ExecutionStatus.STOPPING:
            raise Stopped()

    # ---- steps --------------------------------------------------------------------------------------

    def log_path(self, step: str) -> Path:
        return self.workdir / "logs" / f"{step}.log"

    def run_script(self, step: str, args: list[str], env: dict[str, str]) -> None:
        log_path = self.log_path(step)
        script = SCRIPTS_DIR / spec.STEP_SCRIPTS[step]
        child_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        with open(log_path, "ab") as log:
            self.child = subprocess.Popen(
                [sys.executable, str(script), *args],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=child_env,
                cwd=self.workdir,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )
        self.records.update_step(self.arn, step, StepStatus.EXECUTING)
        deadline = None
        give_up = time.monotonic() + STEP_TIMEOUT_SECONDS
        while True:
            try:
                code = self.child.wait(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                if time.monotonic() > give_up:
                    self.child.kill()
                    self.child.wait()
                    self.child = None
                    raise StepFailed(f"the script ran over {STEP_TIMEOUT_SECONDS:.0f} s and was stopped") from None
                if not self.stop_requested and self.records.get(self.arn).status == ExecutionStatus.STOPPING:
                    self.stop_requested = True
                    self.child.terminate()
                if self.stop_requested:
                    deadline = deadline or time.monotonic() + STOP_GRACE_SECONDS
                    if time.monotonic() > deadline:
                        self.child.kill()
        self.child = None
        if self.stop_requested:
            raise Stopped()
        if code != 0:
            raise StepFailed(failure_reason(log_path, code))

    def preprocess(self) -> None:
        out = self.workdir / spec.PREPROCESS / "output"
        self.run_script(
            spec.PREPROCESS,
            [
                "--input-path",
                self.params.input_data,
                "--test-size",
                repr(self.params.test_size),
                "--split-seed",
                str(self.params.split_seed),
                "--train-dir",
                str(out / "train"),
                "--test-dir",
                str(out / "test"),
            ],
            {},
        )

    def train(self) -> None:
        model_dir = self.workdir / spec.TRAIN / "model"
        self.run_script(
            spec.TRAIN,
            [],
            {
                "SM_MODEL_DIR": str(model_dir),
                "SM_CHANNEL_TRAIN": str(self.workdir / spec.PREPROCESS / "output" / "train"),
            },
        )
        pack_model(model_dir, self.model_archive)

    @property
    def model_archive(self) -> Path:
        return self.workdir / spec.TRAIN / "output" / "model.tar.gz"

    @property
    def evaluation_path(self) -> Path:
        return self.workdir / spec.EVALUATE / "output" / spec.PROPERTY_FILE_OUTPUT / spec.PROPERTY_FILE_PATH

    def evaluate(self) -> None:
        model_input = self.workdir / spec.EVALUATE / "input" / "model"
        model_input.mkdir(parents=True, exist_ok=True)
        # Processing inputs are copies, as SageMaker downloads them; a hard link costs nothing.
        try:
            os.link(self.model_archive, model_input / "model.tar.gz")
        except OSError:
            (model_input / "model.tar.gz").write_bytes(self.model_archive.read_bytes())
        self.run_script(
            spec.EVALUATE,
            [
                "--model-dir",
                str(model_input),
                "--test-dir",
                str(self.workdir / spec.PREPROCESS / "output" / "test"),
                "--output-dir",
                str(self.evaluation_path.parent),
            ],
            {},
        )

    def check_r2(self) -> bool:
        self.records.update_step(self.arn, spec.CHECK_R2, StepStatus.EXECUTING)
        try:
            report = json.loads(self.evaluation_path.read_text())
            outcome = spec.evaluate_gate(report, self.params)
        except (OSError, ValueError, KeyError) as exc:
            raise StepFailed(f"cannot read {spec.PROPERTY_FILE_PATH}: {exc}") from None
        with open(self.log_path(spec.CHECK_R2), "a") as log:
            log.write(f"JsonGet({spec.PROPERTY_FILE_NAME}, {spec.R2_JSON_PATH}) = {outcome.conditions[0].left!r}\n")
            log.write(f"{outcome.summary}\n")
        self.records.update_step(self.arn, spec.CHECK_R2, StepStatus.SUCCEEDED, gate=outcome)
        return outcome.passed

    def register(self) -> None:
        self.records.update_step(self.arn, spec.REGISTER, StepStatus.EXECUTING)
        report = json.loads(self.evaluation_path.read_text())
        registry = LocalRegistry(self.store, self.group)
        repacked = self.workdir / spec.REGISTER / "output" / "model.tar.gz"
        repack_model(self.model_archive, ENTRY_POINT, repacked)
        digest = file_sha256(repacked)
        # The version, the step's success and the run's (Register is the last step) in one transaction:
        # a runner killed here leaves none of them, and one killed just after leaves a Succeeded run, so
        # nobody is told to run again and register the same model twice.
        with self.records.while_active(self.arn) as db:
            version = registry.register(
                model_data_url=repacked.as_uri(),
                model_sha256=digest,
                evaluation=report,
                execution_arn=self.arn,
                parameters=self.pipeline_parameters,
                approval_status=self.params.approval_status,
                db=db,
            )
            self.records.update_step(
                self.arn, spec.REGISTER, StepStatus.SUCCEEDED, model_package_arn=version.arn, db=db
            )
            self.records.finish(self.arn, ExecutionStatus.SUCCEEDED, db=db)
        with open(self.log_path(spec.REGISTER), "a") as log:
            log.write(f"repacked {repacked} with code/{ENTRY_POINT.name}\n")
            log.write(f"registered {version.arn} ({version.approval_status})\n")

    # ---- the whole run ------------------------------------------------------------------------------

    def _evidence(self, step: str | None, said: str) -> str:
        """What the step said, with the end of its log, where a full disk shows as ENOSPC."""
        try:
            with open(self.log_path(step or ""), "rb") as log:
                log.seek(0, os.SEEK_END)
                log.seek(max(0, log.tell() - 8192))
                return said + log.read().decode(errors="replace")
        except OSError:
            return said

    def _failed(self, step: str | None, step_reason: str, reason: str) -> ExecutionStatus:
        try:
            if step:
                self.records.update_step(self.arn, step, StepStatus.FAILED, failure_reason=step_reason)
            self.records.finish(self.arn, ExecutionStatus.FAILED, reason)
        except UserError:
            # The database cannot take the verdict (a full disk): whoever looks next records it, from the log.
            print(f"could not record the failure: {reason}", file=sys.stderr, flush=True)
        return ExecutionStatus.FAILED

    def run(self) -> ExecutionStatus:
        (self.workdir / "logs").mkdir(parents=True, exist_ok=True)
        current = None
        try:
            for step in spec.STEP_NAMES:
                self.check_stop()
                current = step
                self.records.start_step(self.arn, step, self.log_path(step))
                if step == spec.PREPROCESS:
                    self.preprocess()
                elif step == spec.TRAIN:
                    self.train()
                elif step == spec.EVALUATE:
                    self.evaluate()
                elif step == spec.CHECK_R2:
                    if not self.check_r2():
                        break  # the gate's else branch is empty: nothing more runs
                    current = None
                    continue
                elif step == spec.REGISTER:
                    self.register()
                    current = None
                    continue
                self.records.update_step(self.arn, step, StepStatus.SUCCEEDED)
                current = None
        except ExecutionEnded:
            return self.records.get(self.arn).status  # declared Failed or Stopped meanwhile: nothing to add
        except Stopped:
            if current:
                self.records.update_step(self.arn, current, StepStatus.STOPPED)
            self.records.finish(self.arn, ExecutionStatus.STOPPED)
            return ExecutionStatus.STOPPED
        except StepFailed as exc:
            # A full disk is the cause, whatever the script made of it ("disk I/O error", a pandas error...).
            reason = no_space_sentence(self.store.home, self._evidence(current, str(exc))) or str(exc)
            return self._failed(current, reason, f"Step {current} failed: {reason}")
        except Exception as exc:
            traceback.print_exc()
            reason = no_space_sentence(self.store.home, str(exc)) or (
                f"the runner hit an internal error in step {current}: {exc!r}; see {self.workdir / 'runner.log'}"
            )
            return self._failed(current, reason, reason)
        self.records.finish(self.arn, ExecutionStatus.SUCCEEDED)
        return ExecutionStatus.SUCCEEDED


def keep_heartbeat(records: ExecutionRecords, arn: str, done: threading.Event) -> None:
    """Tell readers the runner is working; a stopped or hung process stops telling them."""
    while not done.wait(HEARTBEAT_SECONDS):
        try:
            records.heartbeat(arn)
        except UserError:
            continue  # the database is busy or the disk full for a moment: the next beat may get through


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run one local pipeline execution (started by housing-tui run).")
    parser.add_argument("--home", required=True, type=Path)
    parser.add_argument("--execution-arn", required=True)
    args = parser.parse_args(argv)
    runner = Runner(args.home, args.execution_arn)
    # The starter records us too, but if it died before doing so, this keeps the run from being
    # declared "never started" while we work.
    runner.records.set_runner(args.execution_arn, identify(os.getpid()))
    signal.signal(signal.SIGTERM, runner.on_stop_signal)
    signal.signal(signal.SIGINT, runner.on_stop_signal)
    done = threading.Event()
    threading.Thread(target=keep_heartbeat, args=(runner.records, args.execution_arn, done), daemon=True).start()
    status = runner.run()
    done.set()
    print(f"{args.execution_arn}: {status}", flush=True)
    return 0 if status == ExecutionStatus.SUCCEEDED else 1


if __name__ == "__main__":
    sys.exit(main())
