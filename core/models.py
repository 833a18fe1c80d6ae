"""Plain records shared by both backends, the CLI and the TUI. Statuses use SageMaker's spellings.

Each record knows how to render itself as the JSON that the AWS CLI prints for the matching SageMaker
call (`to_summary`, `to_description`, `to_aws`), so `jq` written against `aws sagemaker ...` reads
`housing-tui ... --json` unchanged. What SageMaker does not report (the gate's numbers, metrics inline, a
local endpoint's URL) goes under one key of ours, `OURS`, and nowhere else.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from core.errors import UserError, one_line

# The one key under which `--json` output carries what is not in the AWS operation's output shape.
OURS = "HousingTui"


class ExecutionStatus(StrEnum):
    EXECUTING = "Executing"
    STOPPING = "Stopping"
    STOPPED = "Stopped"
    FAILED = "Failed"
    SUCCEEDED = "Succeeded"

    @property
    def is_active(self) -> bool:
        return self in (ExecutionStatus.EXECUTING, ExecutionStatus.STOPPING)


class StepStatus(StrEnum):
    STARTING = "Starting"
    EXECUTING = "Executing"
    STOPPING = "Stopping"
    STOPPED = "Stopped"
    FAILED = "Failed"
    SUCCEEDED = "Succeeded"

    @property
    def is_active(self) -> bool:
        return self in (StepStatus.STARTING, StepStatus.EXECUTING, StepStatus.STOPPING)


class EndpointStatus(StrEnum):
    CREATING = "Creating"
    UPDATING = "Updating"
    IN_SERVICE = "InService"
    DELETING = "Deleting"
    FAILED = "Failed"


class ApprovalStatus(StrEnum):
    PENDING = "PendingManualApproval"
    APPROVED = "Approved"
    REJECTED = "Rejected"


def _finite_or_none(value: float | None) -> float | None:
    # JSON has no NaN or infinity (jq refuses them): a value that is not a number is written as null.
    return value if value is not None and math.isfinite(value) else None


def iso_time(epoch: float | None) -> str | None:
    """Render a timestamp as the AWS CLI does: ISO 8601 with microseconds and a UTC offset."""
    if epoch is None:
        return None
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class Metrics:
    """The regression metrics of one evaluation.json."""

    r2: float
    mse: float
    rmse: float
    mae: float
    n_train: int | None = None
    n_test: int | None = None

    @classmethod
    def from_report(cls, report: dict[str, Any]) -> Metrics:
        values = report["regression_metrics"]
        return cls(
            r2=float(values["r2_score"]),
            mse=float(values["mse"]),
            rmse=float(values["rmse"]),
            mae=float(values["mae"]),
            n_train=report.get("n_train"),
            n_test=report.get("n_test"),
        )

    def to_report(self) -> dict[str, Any]:
        return {
            "regression_metrics": {"r2_score": self.r2, "mse": self.mse, "rmse": self.rmse, "mae": self.mae},
            "n_train": self.n_train,
            "n_test": self.n_test,
        }


@dataclass(frozen=True)
class ConditionResult:
    """One comparison the CheckR2 gate made, with the numbers it compared."""

    label: str  # "threshold" or "champion"
    left: float  # the run's r2
    right: float | None  # what it had to reach; None: nothing to compare with (no champion yet)
    passed: bool
    detail: str = ""  # e.g. "champion v3 0.6100 + 0.0100 = 0.6200"

    def describe(self) -> str:
        if self.right is None:
            return self.detail
        sign = ">=" if self.passed else "<"
        what = self.detail or f"{self.label} {self.right:.4f}"
        return f"r2 {self.left:.4f} {sign} {what}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "Label": self.label,
            "LeftValue": _finite_or_none(self.left),
            "RightValue": _finite_or_none(self.right),
            "Outcome": self.passed,
            "Detail": self.detail,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConditionResult:
        return cls(
            label=data["Label"],
            left=float("nan") if data["LeftValue"] is None else float(data["LeftValue"]),
            right=None if data["RightValue"] is None else float(data["RightValue"]),
            passed=bool(data["Outcome"]),
            detail=data.get("Detail", ""),
        )


@dataclass(frozen=True)
class GateOutcome:
    """What CheckR2 decided and why; `summary` is the sentence users see."""

    passed: bool
    conditions: tuple[ConditionResult, ...]

    @property
    def summary(self) -> str:
        parts = "; ".join(c.describe() for c in self.conditions)
        return f"{parts} -> {'registered' if self.passed else 'not registered'}"


@dataclass(frozen=True)
class StepRun:
    """One step of one execution, as ListPipelineExecutionSteps reports it."""

    name: str
    status: StepStatus
    start_time: float | None = None
    end_time: float | None = None
    failure_reason: str | None = None
    gate: GateOutcome | None = None  # CheckR2 only
    model_package_arn: str | None = None  # Register only

    @property
    def duration(self) -> float | None:
        if self.start_time is None or self.end_time is None:
            return None
        return self.end_time - self.start_time

    def to_aws(self) -> dict[str, Any]:
        record: dict[str, Any] = {"StepName": self.name, "StepStatus": str(self.status)}
        if self.start_time is not None:
            record["StartTime"] = iso_time(self.start_time)
        if self.end_time is not None:
            record["EndTime"] = iso_time(self.end_time)
        if self.failure_reason:
            record["FailureReason"] = self.failure_reason
        metadata: dict[str, Any] = {}
        if self.gate is not None:
            metadata["Condition"] = {"Outcome": "True" if self.gate.passed else "False"}
            # The numbers behind the outcome, which SageMaker does not report.
            record[OURS] = {
                "GateDetails": {"Summary": self.gate.summary, "Conditions": [c.to_dict() for c in self.gate.conditions]}
            }
        if self.model_package_arn:
            metadata["RegisterModel"] = {"Arn": self.model_package_arn}
        if metadata:
            record["Metadata"] = metadata
        return record


@dataclass(frozen=True)
class Execution:
    """One pipeline execution with the parameters it was started with."""

    arn: str
    pipeline_name: str
    status: ExecutionStatus
    created: float
    last_modified: float
    parameters: dict[str, str] = field(default_factory=dict)
    failure_reason: str | None = None
    display_name: str | None = None

    @property
    def execution_id(self) -> str:
        return self.arn.rsplit("/", 1)[-1]

    def _parameters(self) -> list[dict[str, str]]:
        return [{"Name": k, "Value": v} for k, v in self.parameters.items()]

    def to_summary(self) -> dict[str, Any]:
        """A PipelineExecutionSummary, as ListPipelineExecutions lists it."""
        record: dict[str, Any] = {
            "PipelineExecutionArn": self.arn,
            "StartTime": iso_time(self.created),
            "PipelineExecutionStatus": str(self.status),
            "PipelineExecutionDisplayName": self.display_name or self.execution_id,
        }
        if self.failure_reason:
            record["PipelineExecutionFailureReason"] = self.failure_reason
        record[OURS] = {"LastModifiedTime": iso_time(self.last_modified), "PipelineParameters": self._parameters()}
        return record

    def to_description(self, steps: list[StepRun] | None = None) -> dict[str, Any]:
        """DescribePipelineExecution's output; the parameters (ListPipelineParametersForExecution's) and,
        when given, the steps (ListPipelineExecutionSteps') under our key."""
        record: dict[str, Any] = {
            "PipelineArn": self.arn.split("/execution/")[0],
            "PipelineExecutionArn": self.arn,
            "PipelineExecutionDisplayName": self.display_name or self.execution_id,
            "PipelineExecutionStatus": str(self.status),
            "CreationTime": iso_time(self.created),
            "LastModifiedTime": iso_time(self.last_modified),
        }
        if self.failure_reason:
            record["FailureReason"] = self.failure_reason
        ours: dict[str, Any] = {"PipelineParameters": self._parameters()}
        if steps is not None:
            ours["PipelineExecutionSteps"] = [s.to_aws() for s in steps]
        record[OURS] = ours
        return record


@dataclass(frozen=True)
class ModelVersion:
    """One model package (a version in the group) with what it was trained on and how it scored."""

    arn: str
    group: str
    version: int
    approval_status: ApprovalStatus
    created: float
    last_modified: float
    metrics: Metrics | None
    approval_description: str | None = None
    model_data_url: str | None = None
    model_sha256: str | None = None
    execution_arn: str | None = None
    parameters: dict[str, str] = field(default_factory=dict)
    unavailable: str | None = None  # why only the listing's fields are known ("details unavailable: ...")

    def to_summary(self) -> dict[str, Any]:
        """A ModelPackageSummary, as ListModelPackages lists it; the rest of DescribeModelPackage's answer
        that users want in a listing (approval note, artifact, metrics, parameters) under our key."""
        record: dict[str, Any] = {
            "ModelPackageGroupName": self.group,
            "ModelPackageVersion": self.version,
            "ModelPackageArn": self.arn,
            "CreationTime": iso_time(self.created),
            "ModelPackageStatus": "Completed",
            "ModelApprovalStatus": str(self.approval_status),
        }
        ours: dict[str, Any] = {"LastModifiedTime": iso_time(self.last_modified)}
        if self.approval_description is not None:
            ours["ApprovalDescription"] = self.approval_description
        if self.model_data_url:
            ours["ModelDataUrl"] = self.model_data_url
        if self.execution_arn:
            ours["GeneratedBy"] = self.execution_arn
        if self.metrics is not None:
            ours["EvaluationReport"] = self.metrics.to_report()
        if self.model_sha256:
            ours["ModelSha256"] = self.model_sha256
        if self.parameters:
            ours["TrainingParameters"] = dict(self.parameters)
        if self.unavailable:
            ours["Unavailable"] = self.unavailable
        record[OURS] = ours
        return record


@dataclass(frozen=True)
class Endpoint:
    """A serverless endpoint serving one model package version."""

    name: str
    arn: str
    status: EndpointStatus
    model_package_arn: str
    created: float
    last_modified: float
    memory_mb: int
    max_concurrency: int
    url: str | None = None
    failure_reason: str | None = None

    def _ours(self) -> dict[str, Any]:
        # What the endpoint serves, and where (local endpoints only): SageMaker reports neither.
        ours: dict[str, Any] = {"ModelPackageArn": self.model_package_arn}
        if self.url:
            ours["Url"] = self.url
        return ours

    def to_summary(self) -> dict[str, Any]:
        """An EndpointSummary, as ListEndpoints lists it."""
        record: dict[str, Any] = {
            "EndpointName": self.name,
            "EndpointArn": self.arn,
            "CreationTime": iso_time(self.created),
            "LastModifiedTime": iso_time(self.last_modified),
            "EndpointStatus": str(self.status),
        }
        ours = self._ours()
        ours["ServerlessConfig"] = {"MemorySizeInMB": self.memory_mb, "MaxConcurrency": self.max_concurrency}
        if self.failure_reason:
            ours["FailureReason"] = self.failure_reason
        record[OURS] = ours
        return record

    def to_description(self) -> dict[str, Any]:
        """DescribeEndpoint's output."""
        record: dict[str, Any] = {
            "EndpointName": self.name,
            "EndpointArn": self.arn,
            "ProductionVariants": [
                {
                    "VariantName": "AllTraffic",
                    "CurrentServerlessConfig": {
                        "MemorySizeInMB": self.memory_mb,
                        "MaxConcurrency": self.max_concurrency,
                    },
                }
            ],
            "EndpointStatus": str(self.status),
            "CreationTime": iso_time(self.created),
            "LastModifiedTime": iso_time(self.last_modified),
        }
        if self.failure_reason:
            record["FailureReason"] = self.failure_reason
        record[OURS] = self._ours()
        return record


@dataclass(frozen=True)
class Invocation:
    """One answer of an endpoint: the body as returned, and how long the round trip took."""

    body: bytes
    content_type: str
    latency_ms: float
    endpoint: str = ""  # the endpoint's name, for the sentence about an answer that is not numbers

    def predictions(self) -> list[float]:
        """The CSV answer as numbers, one per line; anything else is a UserError that quotes its start."""
        try:
            numbers = [float(line) for line in self.body.decode().splitlines() if line.strip()]
        except ValueError:  # UnicodeDecodeError included
            numbers = []
        if not numbers:
            who = f"endpoint {self.endpoint}" if self.endpoint else "the endpoint"
            said = one_line(self.body.decode(errors="replace"), 60)
            raise UserError(
                f"{who} answered something that is not one number per line: {said!r}; "
                "check which model it serves with `housing-tui endpoints`"
            )
        return numbers
