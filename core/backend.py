"""The one interface the CLI and the TUI talk to; `local` and `sagemaker` implement it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from core.models import ApprovalStatus, Execution, ModelVersion, StepRun
from core.spec import RunParameters


@dataclass(frozen=True)
class LogChunk:
    """New log text of a step since `cursor`, and the cursor to pass next time."""

    text: str
    cursor: int


class Backend(Protocol):
    name: str

    def start_run(self, params: RunParameters) -> Execution:
        """Start an execution; the backend fills in the champion when min_improvement is set."""
        ...

    def list_executions(self) -> list[Execution]:
        """Newest first."""
        ...

    def get_execution(self, arn: str) -> Execution: ...

    def list_steps(self, arn: str) -> list[StepRun]:
        """The steps that have started, in pipeline order."""
        ...

    def read_step_log(self, arn: str, step: str, cursor: int = 0) -> LogChunk: ...

    def stop_execution(self, arn: str) -> Execution: ...

    def list_versions(self, status: ApprovalStatus | None = None) -> list[ModelVersion]:
        """The group's versions, newest first."""
        ...

    def get_version(self, arn: str) -> ModelVersion: ...

    def set_approval(self, arn: str, status: ApprovalStatus, description: str | None = None) -> ModelVersion: ...

    def champion(self) -> ModelVersion | None:
        """The newest Approved version, or None."""
        ...
