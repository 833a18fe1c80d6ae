"""End to end on the local backend: the real runner process, the real scripts, the real store."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

from core.local.backend import LocalBackend
from core.models import ApprovalStatus, ExecutionStatus, StepStatus
from core.sources import ENTRY_POINT
from core.spec import RunParameters
from core.waiting import wait_for_execution

RUN_TIMEOUT = 120


def run(backend: LocalBackend, **kwargs):
    execution = backend.start_run(RunParameters(**kwargs))
    return wait_for_execution(backend, execution.arn, timeout=RUN_TIMEOUT)


def steps_by_name(backend: LocalBackend, arn: str):
    return {s.name: s for s in backend.list_steps(arn)}


def test_a_passing_run_registers_version_1_with_its_evaluation(backend: LocalBackend, home: Path) -> None:
    final = run(backend, r2_threshold=0.5)
    assert final.status is ExecutionStatus.SUCCEEDED
    steps = steps_by_name(backend, final.arn)
    assert list(steps) == ["Preprocess", "Train", "Evaluate", "CheckR2", "Register"]
    assert all(s.status is StepStatus.SUCCEEDED and s.duration is not None for s in steps.values())
    assert steps["CheckR2"].gate.passed
    [version] = backend.list_versions()
    assert version.version == 1 and version.arn == steps["Register"].model_package_arn
    assert version.approval_status is ApprovalStatus.PENDING
    evaluation = json.loads(
        (home / "executions" / final.execution_id / "Evaluate/output/evaluation/evaluation.json").read_text()
    )
    assert version.metrics.to_report() == evaluation
    assert version.metrics.r2 == pytest.approx(0.643281, abs=1e-6)
    assert version.execution_arn == final.arn
    assert version.parameters["R2Threshold"] == "0.5" and version.parameters["SplitSeed"] == "42"
    archive = Path(urlparse(version.model_data_url).path)
    import hashlib
    import tarfile

    assert hashlib.sha256(archive.read_bytes()).hexdigest() == version.model_sha256
    # Repacked as SageMaker's repack step leaves it: the model, and the entry point it is served with.
    with tarfile.open(archive) as tar:
        assert sorted(tar.getnames()) == ["code/entry_point.py", "model.joblib"]
        assert tar.extractfile("code/entry_point.py").read() == ENTRY_POINT.read_bytes()
    assert "repacked" in backend.read_step_log(final.arn, "Register").text


def test_a_failing_gate_succeeds_without_registering(backend: LocalBackend) -> None:
    final = run(backend, r2_threshold=0.9)
    assert final.status is ExecutionStatus.SUCCEEDED
    steps = steps_by_name(backend, final.arn)
    assert "Register" not in steps
    gate = steps["CheckR2"].gate
    assert not gate.passed
    assert gate.summary == "r2 0.6433 < threshold 0.9000 -> not registered"
    assert backend.list_versions() == []
    log = backend.read_step_log(final.arn, "CheckR2").text
    assert "not registered" in log and "JsonGet(EvaluationReport, regression_metrics.r2_score)" in log


def test_the_champion_gate_blocks_a_run_that_does_not_beat_the_approved_version(backend: LocalBackend) -> None:
    # No Approved version yet: the champion gate lets a passing run through.
    first = run(backend, r2_threshold=0.5, min_improvement=0.3)
    assert steps_by_name(backend, first.arn)["CheckR2"].gate.passed
    [v1] = backend.list_versions()
    backend.set_approval(v1.arn, ApprovalStatus.APPROVED, "baseline")
    # Same data and split: r2 equals the champion's, which is not 0.01 better.
    same = run(backend, r2_threshold=0.5, min_improvement=0.01)
    gate = steps_by_name(backend, same.arn)["CheckR2"].gate
    assert not gate.passed and "champion v1 0.6433 + 0.0100 = 0.6533" in gate.summary
    # Split seed 123 scores 0.6738: it beats 0.6433 + 0.01 and is registered as version 2.
    better = run(backend, r2_threshold=0.5, min_improvement=0.01, split_seed=123)
    assert steps_by_name(backend, better.arn)["CheckR2"].gate.passed
    assert [v.version for v in backend.list_versions()] == [2, 1]
    assert better.parameters["ChampionR2Floor"] == repr(v1.metrics.r2 + 0.01)


def test_two_runs_started_together_register_consecutive_versions(backend: LocalBackend) -> None:
    started = [backend.start_run(RunParameters(r2_threshold=0.5, split_seed=seed)) for seed in (1, 2)]
    finals = [wait_for_execution(backend, e.arn, timeout=RUN_TIMEOUT) for e in started]
    assert all(f.status is ExecutionStatus.SUCCEEDED for f in finals)
    versions = backend.list_versions()
    assert sorted(v.version for v in versions) == [1, 2]
    assert {v.execution_arn for v in versions} == {e.arn for e in started}


def _wait_for_step(backend: LocalBackend, arn: str, name: str, status: StepStatus) -> None:
    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline:
        step = steps_by_name(backend, arn).get(name)
        if step is not None and step.status is status:
            return
        time.sleep(0.05)
    raise AssertionError(f"{name} never reached {status}")


def test_a_killed_runner_reads_as_failed_and_registers_nothing(backend: LocalBackend, home: Path) -> None:
    execution = backend.start_run(RunParameters(r2_threshold=0.0))
    _wait_for_step(backend, execution.arn, "Train", StepStatus.EXECUTING)
    runner = backend.executions.runner(execution.arn)
    os.kill(runner.pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while backend.get_execution(execution.arn).status.is_active and time.monotonic() < deadline:
        time.sleep(0.05)
    final = backend.get_execution(execution.arn)
    assert final.status is ExecutionStatus.FAILED
    assert f"the local runner (pid {runner.pid}) ended without finishing" in final.failure_reason
    train = steps_by_name(backend, execution.arn)["Train"]
    assert train.status is StepStatus.FAILED and train.end_time is not None
    # The step script died with its runner, so nothing can register later either.
    time.sleep(1.0)
    assert backend.list_versions() == []
    assert "Register" not in steps_by_name(backend, execution.arn)


def test_stopping_a_run_stops_its_current_step(backend: LocalBackend) -> None:
    execution = backend.start_run(RunParameters(r2_threshold=0.0))
    _wait_for_step(backend, execution.arn, "Preprocess", StepStatus.EXECUTING)
    assert backend.stop_execution(execution.arn).status is ExecutionStatus.STOPPING
    final = wait_for_execution(backend, execution.arn, timeout=RUN_TIMEOUT)
    assert final.status is ExecutionStatus.STOPPED
    stopped = [s for s in backend.list_steps(execution.arn) if s.status is StepStatus.STOPPED]
    assert len(stopped) == 1
    assert backend.list_versions() == []


def test_bad_rows_fail_the_preprocess_step_with_its_reason(backend: LocalBackend, tmp_path: Path) -> None:
    source = tmp_path / "bad.csv"
    header = "MedInc,HouseAge,AveRooms,AveBedrms,Population,AveOccup,Latitude,Longitude,MedHouseVal"
    source.write_text(
        header + "\n" + "8.3,41,7,1,322,2.5,37.9,-122.2,4.5\n" * 5 + "8.3,41,7,1,lots,2.5,37.9,-122.2,4.5\n"
    )
    final = run(backend, input_data=str(source), r2_threshold=0.0)
    assert final.status is ExecutionStatus.FAILED
    assert final.failure_reason.startswith("Step Preprocess failed: column Population has a non-numeric value 'lots'")
    assert list(steps_by_name(backend, final.arn)) == ["Preprocess"]
    assert backend.list_versions() == []
