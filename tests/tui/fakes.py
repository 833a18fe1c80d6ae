"""A small deterministic backend for looks: fixed records, fixed timestamps, no processes, no clock."""

from __future__ import annotations

import dataclasses

from core import arns, spec
from core.backend import LogChunk, TestRows
from core.errors import NotFound, UserError
from core.models import (
    ApprovalStatus,
    ConditionResult,
    Endpoint,
    EndpointStatus,
    Execution,
    ExecutionStatus,
    GateOutcome,
    Invocation,
    Metrics,
    ModelVersion,
    StepRun,
    StepStatus,
)
from core.spec import RunParameters

T0 = 1_714_564_800.0  # 2024-05-01 12:00:00 UTC
NOW = T0 + 5 * 3600 + 12.5  # the clock the app is given: 17:00:12.5


def _params(threshold: float, seed: int = 42) -> dict[str, str]:
    return RunParameters(r2_threshold=threshold, split_seed=seed).as_pipeline_parameters() | {"InputData": "bundled"}


def _metrics(r2: float, rmse: float, mae: float) -> Metrics:
    return Metrics(r2=r2, mse=round(rmse * rmse, 4), rmse=rmse, mae=mae, n_train=16512, n_test=4128)


def _gate(r2: float, threshold: float) -> GateOutcome:
    passed = r2 >= threshold
    return GateOutcome(passed, (ConditionResult("threshold", r2, threshold, passed),))


def _steps(
    start: float, upto: int, last: StepStatus = StepStatus.SUCCEEDED, extra: dict | None = None
) -> list[StepRun]:
    extra = extra or {}
    steps = []
    for i, name in enumerate(spec.STEP_NAMES[:upto]):
        begin = start + i * 1.1
        status = last if i == upto - 1 else StepStatus.SUCCEEDED
        end = None if status.is_active else begin + 0.9
        steps.append(StepRun(name, status, begin, end, **(extra.get(name) or {})))
    return steps


def execution_arn(execution_id: str) -> str:
    return arns.execution_arn(spec.PIPELINE_NAME, execution_id)


def model_arn(version: int) -> str:
    return arns.model_package_arn(spec.DEFAULT_GROUP, version)


class FakeBackend:
    """Implements core.backend.Backend over fixed, in-memory records."""

    name = "local"
    poll_seconds = 0.25

    def __init__(self, versions: int = 4) -> None:
        running = execution_arn("a1b2c3d4e5f6")
        passed = execution_arn("0f1e2d3c4b5a")
        gated = execution_arn("9a8b7c6d5e4f")
        failed = execution_arn("5e5e5e5e5e5e")
        self.executions = [
            Execution(
                running, spec.PIPELINE_NAME, ExecutionStatus.EXECUTING, T0 + 5 * 3600, T0 + 5 * 3600 + 3, _params(0.6)
            ),
            Execution(
                passed,
                spec.PIPELINE_NAME,
                ExecutionStatus.SUCCEEDED,
                T0 + 3600,
                T0 + 3600 + 4.6,
                _params(0.6, seed=123),
            ),
            Execution(gated, spec.PIPELINE_NAME, ExecutionStatus.SUCCEEDED, T0 + 1800, T0 + 1800 + 3.9, _params(0.65)),
            Execution(
                failed,
                spec.PIPELINE_NAME,
                ExecutionStatus.FAILED,
                T0 + 600,
                T0 + 600 + 1.2,
                _params(0.5),
                failure_reason="Step Preprocess failed: column Population has a non-numeric value 'lots'",
            ),
        ]
        self.steps = {
            running: _steps(T0 + 5 * 3600, 2, StepStatus.EXECUTING),
            passed: _steps(
                T0 + 3600,
                5,
                extra={"CheckR2": {"gate": _gate(0.6738, 0.6)}, "Register": {"model_package_arn": model_arn(3)}},
            ),
            gated: _steps(T0 + 1800, 4, extra={"CheckR2": {"gate": _gate(0.6433, 0.65)}}),
            failed: _steps(
                T0 + 600,
                1,
                StepStatus.FAILED,
                extra={"Preprocess": {"failure_reason": "column Population has a non-numeric value 'lots'"}},
            ),
        }
        self.logs = {
            "Preprocess": "read 20640 rows of 9 columns\ndropped 0 rows with missing values\n"
            "train 16512 rows, test 4128 rows (test_size 0.2, random_state 42)\n",
            "Train": "caps at the 95% quantile of the training rows: MedInc 7.3108, HouseAge 52, ...\n"
            "fitted on 16512 rows; training r2 0.6677\n",
            "Evaluate": "r2 0.6433, rmse 0.6837, mae 0.5029\nwrote evaluation.json\n",
            "CheckR2": "JsonGet(EvaluationReport, regression_metrics.r2_score) = 0.6433\n"
            "r2 0.6433 < threshold 0.6500 -> not registered\n",
            "Register": "",
        }
        table = [
            (1, 0.6433, 0.6837, 0.5029, ApprovalStatus.APPROVED, gated, "baseline"),
            (2, 0.6370, 0.6908, 0.5058, ApprovalStatus.REJECTED, failed, "worse than v1"),
            (3, 0.6738, 0.6586, 0.4854, ApprovalStatus.PENDING, passed, None),
            (4, 0.6559, 0.6803, 0.5029, ApprovalStatus.PENDING, passed, None),
        ]
        rows = [table[i % len(table)] for i in range(versions)]
        self.versions = [
            ModelVersion(
                arn=model_arn(i + 1),
                group=spec.DEFAULT_GROUP,
                version=i + 1,
                approval_status=status,
                created=T0 + 900 * (i + 1),
                last_modified=T0 + 900 * (i + 1),
                metrics=_metrics(r2, rmse, mae),
                approval_description=description,
                model_data_url=f"file:///home/user/.local/share/housing-tui/executions/{run[-12:]}/model.tar.gz",
                model_sha256="3b1f" + "0" * 60,
                execution_arn=run,
                parameters=_params(0.6),
            )
            for i, (_n, r2, rmse, mae, status, run, description) in enumerate(rows)
        ][::-1]
        self.endpoints = [
            Endpoint(
                "housing-prod",
                "arn:aws:sagemaker:local:000000000000:endpoint/housing-prod",
                EndpointStatus.IN_SERVICE,
                model_arn(1),
                T0 + 2000,
                T0 + 2100,
                2048,
                5,
                url="http://127.0.0.1:8123",
            ),
            Endpoint(
                "staging",
                "arn:aws:sagemaker:local:000000000000:endpoint/staging",
                EndpointStatus.FAILED,
                model_arn(2),
                T0 + 2500,
                T0 + 2600,
                1024,
                1,
                failure_reason="entry_point.model_fn could not load the model: not a joblib file",
            ),
        ]
        self.calls: list[str] = []

    # ---- runs ------------------------------------------------------------------------------------------

    def start_run(self, params: RunParameters) -> Execution:
        self.calls.append("start_run")
        execution = Execution(
            execution_arn("c0ffee000001"),
            spec.PIPELINE_NAME,
            ExecutionStatus.EXECUTING,
            NOW,
            NOW,
            params.as_pipeline_parameters(),
        )
        self.executions.insert(0, execution)
        self.steps[execution.arn] = []
        return execution

    def list_executions(self, limit: int | None = None) -> list[Execution]:
        return list(self.executions)[:limit]

    def get_execution(self, arn: str) -> Execution:
        for execution in self.executions:
            if execution.arn == arn:
                return execution
        raise NotFound(f"no execution {arn}")

    def list_steps(self, arn: str) -> list[StepRun]:
        return list(self.steps.get(arn, []))

    def read_step_log(self, arn: str, step: str, cursor: int = 0) -> LogChunk:
        data = self.logs.get(step, "").encode()
        return LogChunk(data[cursor:].decode(), len(data))

    def stop_execution(self, arn: str) -> Execution:
        execution = self.get_execution(arn)
        stopped = dataclasses.replace(execution, status=ExecutionStatus.STOPPING)
        self.executions = [stopped if e.arn == arn else e for e in self.executions]
        return stopped

    def test_rows(self, execution_arn: str, limit: int) -> TestRows:
        features = [
            [round(8.3252 - i * 0.5, 4), 41.0, 6.98, 1.02, 322.0 + i, 2.55, 37.88, -122.23] for i in range(limit)
        ]
        return TestRows(features, [round(4.526 - i * 0.3, 3) for i in range(limit)])

    # ---- registry --------------------------------------------------------------------------------------

    def list_versions(self, status: ApprovalStatus | None = None) -> list[ModelVersion]:
        return [v for v in self.versions if status is None or v.approval_status is status]

    def get_version(self, arn: str) -> ModelVersion:
        for version in self.versions:
            if version.arn == arn:
                return version
        raise NotFound(f"no model package {arn}")

    def set_approval(self, arn: str, status: ApprovalStatus, description: str | None = None) -> ModelVersion:
        version = dataclasses.replace(self.get_version(arn), approval_status=status, approval_description=description)
        self.versions = [version if v.arn == arn else v for v in self.versions]
        return version

    def champion(self) -> ModelVersion | None:
        approved = self.list_versions(ApprovalStatus.APPROVED)
        return approved[0] if approved else None

    # ---- endpoints -------------------------------------------------------------------------------------

    def deploy(self, model_package_arn, endpoint_name, memory_mb, max_concurrency, force=False, wait=True):
        raise UserError("the fake backend does not deploy")

    def list_endpoints(self) -> list[Endpoint]:
        return list(self.endpoints)

    def get_endpoint(self, name: str) -> Endpoint:
        for endpoint in self.endpoints:
            if endpoint.name == name:
                return endpoint
        raise NotFound(f"no endpoint named {name}")

    def delete_endpoint(self, name: str) -> None:
        self.endpoints = [e for e in self.endpoints if e.name != name]

    def invoke_endpoint(
        self, name: str, body: bytes, content_type: str = "text/csv", timeout: float | None = None
    ) -> Invocation:
        rows = [[float(v) for v in line.split(",")] for line in body.decode().split()]
        if any(len(row) != 8 for row in rows):
            raise UserError(f"endpoint {name} refused the request: Row 1 has {len(rows[0])} values (HTTP 400)")
        answer = "".join(f"{0.4 * row[0] + 0.01 * row[1]!r}\n" for row in rows)
        return Invocation(answer.encode(), "text/csv", 2.5)
