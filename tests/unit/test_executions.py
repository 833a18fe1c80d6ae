"""Execution records: a registration lands with its step or not at all, and an ended run stays ended."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.local.executions import ExecutionEnded, ExecutionRecords
from core.local.registry import LocalRegistry
from core.local.store import Store
from core.models import ApprovalStatus, ExecutionStatus, StepStatus

ARN = "arn:aws:sagemaker:local:000000000000:pipeline/californiahousingpipeline/execution/abc123"
REPORT = {"regression_metrics": {"r2_score": 0.6, "mse": 0.5, "rmse": 0.7, "mae": 0.5}, "n_train": 8, "n_test": 2}


@pytest.fixture
def records(tmp_path: Path) -> ExecutionRecords:
    records = ExecutionRecords(Store(tmp_path))
    records.create("abc123", ARN, {"R2Threshold": "0.5"}, {}, tmp_path / "work")
    records.start_step(ARN, "Register", tmp_path / "Register.log")
    return records


def register(records: ExecutionRecords, db) -> str:
    version = LocalRegistry(records.store).register(
        "file:///m.tar.gz", "ab" * 32, REPORT, ARN, {}, ApprovalStatus.PENDING, db=db
    )
    records.update_step(ARN, "Register", StepStatus.SUCCEEDED, model_package_arn=version.arn, db=db)
    return version.arn


def test_a_registration_and_its_step_land_together(records: ExecutionRecords) -> None:
    with records.while_active(ARN) as db:
        arn = register(records, db)
    [version] = LocalRegistry(records.store).versions()
    assert version.arn == arn and records.steps(ARN)[0].model_package_arn == arn


def test_a_failure_inside_the_transaction_leaves_neither(records: ExecutionRecords) -> None:
    with pytest.raises(RuntimeError), records.while_active(ARN) as db:
        register(records, db)
        raise RuntimeError("killed here")
    assert LocalRegistry(records.store).versions() == []
    assert records.steps(ARN)[0].status is StepStatus.STARTING


def test_an_ended_execution_registers_nothing_and_stays_ended(records: ExecutionRecords) -> None:
    records.finish(ARN, ExecutionStatus.FAILED, "the runner died")
    with pytest.raises(ExecutionEnded), records.while_active(ARN) as db:
        register(records, db)
    assert LocalRegistry(records.store).versions() == []
    records.finish(ARN, ExecutionStatus.SUCCEEDED)  # a late runner cannot overwrite the verdict
    execution = records.get(ARN)
    assert execution.status is ExecutionStatus.FAILED and execution.failure_reason == "the runner died"
