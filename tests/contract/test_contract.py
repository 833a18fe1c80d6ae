"""One suite, two backends: the same scenarios against the local backend and the SageMaker backend.

The SageMaker backend runs on moto, with tests.aws.SageMakerSimulator doing what SageMaker would do
between "execution started" and "execution ended" (it runs the same container scripts).
"""

from __future__ import annotations

import io
import tarfile
import time
from pathlib import Path
from typing import Any

import joblib
import pandas as pd
import pytest

from core.errors import NotFound, UserError
from core.models import ApprovalStatus, EndpointStatus, Execution, ExecutionStatus
from core.spec import RunParameters
from core.waiting import wait_for_execution
from tests.conftest import BUNDLED

ROWS = pd.read_csv(BUNDLED).sample(10, random_state=11).iloc[:, :8].to_numpy()
BODY = "".join(",".join(repr(float(v)) for v in row) + "\n" for row in ROWS).encode()


class LocalHarness:
    def __init__(self, backend: Any) -> None:
        self.backend = backend

    def run(self, **params: Any) -> Execution:
        execution = self.backend.start_run(RunParameters(**params))
        return wait_for_execution(self.backend, execution.arn, timeout=120)

    def running(self) -> Execution:
        return self.backend.start_run(RunParameters(r2_threshold=0.0))

    def model(self, package_arn: str) -> Any:
        url = self.backend.get_version(package_arn).model_data_url
        with tarfile.open(Path(url.removeprefix("file://"))) as tar:
            return joblib.load(io.BytesIO(tar.extractfile("model.joblib").read()))

    def expect_invocation(self, package_arn: str, body: bytes) -> None:
        """A local endpoint runs the real model: nothing to prepare."""

    def finish_stop(self, arn: str) -> Execution:
        return wait_for_execution(self.backend, arn, timeout=120)


class SageMakerHarness:
    def __init__(self, backend: Any, simulator: Any) -> None:
        self.backend = backend
        self.simulator = simulator

    def run(self, **params: Any) -> Execution:
        execution = self.backend.start_run(RunParameters(**params))
        assert execution.arn.startswith("arn:aws:sagemaker:us-east-1:123456789012:pipeline/")
        self.simulator.complete(execution.arn)
        return self.backend.get_execution(execution.arn)

    def running(self) -> Execution:
        execution = self.backend.start_run(RunParameters(r2_threshold=0.0))
        self.simulator.running(execution.arn)
        return self.backend.get_execution(execution.arn)

    def model(self, package_arn: str) -> Any:
        return self.simulator.models[package_arn]

    def expect_invocation(self, package_arn: str, body: bytes) -> None:
        self.simulator.queue_invocation(package_arn, body)

    def finish_stop(self, arn: str) -> Execution:
        return self.backend.get_execution(arn)


@pytest.fixture(params=["local", "sagemaker"])
def harness(request: pytest.FixtureRequest):
    if request.param == "local":
        from core.local.backend import LocalBackend

        backend = LocalBackend(request.getfixturevalue("home"))
        yield LocalHarness(backend)
        for endpoint in backend.list_endpoints():
            backend.delete_endpoint(endpoint.name)
    else:
        yield SageMakerHarness(request.getfixturevalue("sagemaker_backend"), request.getfixturevalue("simulator"))


def step_names(backend: Any, arn: str) -> list[str]:
    return [s.name for s in backend.list_steps(arn)]


def gate_of(backend: Any, arn: str):
    return next(s.gate for s in backend.list_steps(arn) if s.gate is not None)


def test_the_gate_registers_only_passing_runs_and_the_champion_gate_holds(harness) -> None:
    backend = harness.backend
    failed = harness.run(r2_threshold=0.9)
    assert failed.status is ExecutionStatus.SUCCEEDED
    assert step_names(backend, failed.arn) == ["Preprocess", "Train", "Evaluate", "CheckR2"]
    assert gate_of(backend, failed.arn).summary == "r2 0.6433 < threshold 0.9000 -> not registered"
    assert backend.list_versions() == []

    passed = harness.run(r2_threshold=0.5)
    assert passed.status is ExecutionStatus.SUCCEEDED
    assert step_names(backend, passed.arn) == ["Preprocess", "Train", "Evaluate", "CheckR2", "Register"]
    assert gate_of(backend, passed.arn).summary == "r2 0.6433 >= threshold 0.5000 -> registered"
    [v1] = backend.list_versions()
    assert v1.version == 1 and v1.approval_status is ApprovalStatus.PENDING
    assert v1.metrics.r2 == pytest.approx(0.643281, abs=1e-6) and v1.metrics.n_test == 4128
    assert v1.execution_arn == passed.arn and v1.parameters["R2Threshold"] == "0.5"
    register = next(s for s in backend.list_steps(passed.arn) if s.name == "Register")
    assert register.model_package_arn == v1.arn
    assert [e.arn for e in backend.list_executions()] == [passed.arn, failed.arn]

    backend.set_approval(v1.arn, ApprovalStatus.APPROVED, "r2 0.6433, baseline")
    blocked = harness.run(r2_threshold=0.5, min_improvement=0.01)
    summary = gate_of(backend, blocked.arn).summary
    assert "r2 0.6433 < " in summary and "0.6533" in summary and summary.endswith("not registered")
    better = harness.run(r2_threshold=0.5, min_improvement=0.01, split_seed=123)
    assert gate_of(backend, better.arn).passed
    versions = backend.list_versions()
    assert [v.version for v in versions] == [2, 1]
    assert versions[0].metrics.r2 == pytest.approx(0.673834, abs=1e-6)

    rejected = backend.set_approval(versions[0].arn, ApprovalStatus.REJECTED, "not this one")
    assert rejected.approval_status is ApprovalStatus.REJECTED and rejected.approval_description == "not this one"
    assert backend.get_version(v1.arn).approval_description == "r2 0.6433, baseline"
    assert [v.version for v in backend.list_versions(ApprovalStatus.APPROVED)] == [1]
    assert backend.champion().version == 1


def test_deploy_invoke_redeploy_and_delete(harness) -> None:
    backend = harness.backend
    first = harness.run(r2_threshold=0.5)
    second = harness.run(r2_threshold=0.5, split_seed=123)
    v2, v1 = backend.list_versions()
    assert (v1.execution_arn, v2.execution_arn) == (first.arn, second.arn)
    with pytest.raises(UserError, match="only Approved versions deploy"):
        backend.deploy(v1.arn, "contract-ep", 2048, 5)
    assert backend.list_endpoints() == []
    backend.set_approval(v1.arn, ApprovalStatus.APPROVED, "ok")

    endpoint = backend.deploy(v1.arn, "contract-ep", 2048, 5, wait=True)
    assert endpoint.status is EndpointStatus.IN_SERVICE and endpoint.model_package_arn == v1.arn
    assert (endpoint.memory_mb, endpoint.max_concurrency) == (2048, 5)
    harness.expect_invocation(v1.arn, BODY)
    predictions = backend.invoke_endpoint("contract-ep", BODY).predictions()
    assert predictions == pytest.approx(list(harness.model(v1.arn).predict(ROWS)), abs=1e-9)

    switched = backend.deploy(v2.arn, "contract-ep", 3072, 7, force=True, wait=True)
    assert switched.status is EndpointStatus.IN_SERVICE and switched.model_package_arn == v2.arn
    assert (switched.memory_mb, switched.max_concurrency) == (3072, 7)
    # Other rows this time: moto answers a repeated request body with the answer it gave before.
    body = b"".join(BODY.splitlines(keepends=True)[:4])
    harness.expect_invocation(v2.arn, body)
    predictions = backend.invoke_endpoint("contract-ep", body).predictions()
    assert predictions == pytest.approx(list(harness.model(v2.arn).predict(ROWS[:4])), abs=1e-9)
    assert [e.name for e in backend.list_endpoints()] == ["contract-ep"]

    backend.delete_endpoint("contract-ep")
    assert backend.list_endpoints() == []
    with pytest.raises(NotFound, match="no endpoint named contract-ep"):
        backend.get_endpoint("contract-ep")


def test_logs_and_test_rows_of_a_run(harness) -> None:
    backend = harness.backend
    execution = harness.run(r2_threshold=0.9)
    first = backend.read_step_log(execution.arn, "Preprocess")
    assert "wrote 16512 training rows" in first.text and "wrote 4128 test rows" in first.text
    assert backend.read_step_log(execution.arn, "Preprocess", first.cursor).text == ""
    assert "fitted on 16512 rows" in backend.read_step_log(execution.arn, "Train").text
    assert "not registered" in backend.read_step_log(execution.arn, "CheckR2").text
    rows = backend.test_rows(execution.arn, 5)
    assert len(rows.features) == 5 and all(len(r) == 8 for r in rows.features) and len(rows.actuals) == 5
    assert rows.to_csv().count(b"\n") == 5


def test_stopping_a_running_execution(harness) -> None:
    backend = harness.backend
    execution = harness.running()
    assert execution.status is ExecutionStatus.EXECUTING
    backend.stop_execution(execution.arn)
    deadline = time.monotonic() + 60
    final = harness.finish_stop(execution.arn)
    while final.status.is_active and time.monotonic() < deadline:
        final = backend.get_execution(execution.arn)
    assert final.status is ExecutionStatus.STOPPED
    with pytest.raises(UserError, match="has already ended"):
        backend.stop_execution(execution.arn)


def test_bad_references_are_clear_errors(harness) -> None:
    backend = harness.backend
    region = "local" if backend.name == "local" else "us-east-1"
    account = "000000000000" if backend.name == "local" else "123456789012"
    unknown = f"arn:aws:sagemaker:{region}:{account}:model-package/californiahousing/42"
    with pytest.raises(NotFound, match="no model package"):
        backend.get_version(unknown)
    with pytest.raises(NotFound, match="no model package"):
        backend.set_approval(unknown, ApprovalStatus.APPROVED)
    with pytest.raises(UserError, match="belongs to group 'othergroup'"):
        backend.get_version(f"arn:aws:sagemaker:{region}:{account}:model-package/othergroup/1")
    with pytest.raises(UserError, match="is not a model package ARN"):
        backend.get_version("CaliforniaHousing/1")
    with pytest.raises(UserError, match="is not a pipeline execution ARN"):
        backend.list_steps("not-an-arn")
    with pytest.raises(NotFound, match="no endpoint named nowhere"):
        backend.invoke_endpoint("nowhere", BODY)
