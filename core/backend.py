"""The one interface the CLI and the TUI talk to; `local` and `sagemaker` implement it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from core import spec
from core.errors import UserError, one_line
from core.models import ApprovalStatus, Endpoint, Execution, Invocation, ModelVersion, StepRun
from core.spec import RunParameters


@dataclass(frozen=True)
class LogChunk:
    """New log text of a step since `cursor`, and the cursor to pass next time."""

    text: str
    cursor: int


@dataclass(frozen=True)
class TestRows:
    """Feature rows (8 numbers each, the endpoint's order) and the actual MedHouseVal of each."""

    features: list[list[float]]
    actuals: list[float]

    @classmethod
    def from_split(cls, lines: Iterable[str], limit: int) -> TestRows:
        """Rows of a test split as Preprocess writes it: no header, the target first, then the features."""
        features: list[list[float]] = []
        actuals: list[float] = []
        for line in lines:
            if len(actuals) >= limit:
                break
            if line.strip():
                try:
                    values = [float(v) for v in line.split(",")]
                except ValueError:
                    values = []
                if len(values) != 1 + len(spec.FEATURES):
                    shown = one_line(line, 60)
                    raise UserError(
                        f"the test split has a row that is not {1 + len(spec.FEATURES)} numbers "
                        f"({repr(shown) if shown else 'a line of markup'}); start a new run to write it again"
                    )
                actuals.append(values[0])
                features.append(values[1:])
        return cls(features, actuals)

    def to_csv(self) -> bytes:
        return "".join(",".join(repr(v) for v in row) + "\n" for row in self.features).encode()


class Backend(Protocol):
    name: str
    poll_seconds: float  # how often live views may ask for news without straining the backend

    def start_run(self, params: RunParameters) -> Execution:
        """Start an execution; the backend fills in the champion when min_improvement is set."""
        ...

    def list_executions(self, limit: int | None = None) -> list[Execution]:
        """Newest first; with `limit`, only the newest `limit` (a view that shows the first rows need not
        page through years of runs)."""
        ...

    def get_execution(self, arn: str) -> Execution: ...

    def list_steps(self, arn: str) -> list[StepRun]:
        """The steps that have started, in pipeline order."""
        ...

    def read_step_log(self, arn: str, step: str, cursor: int = 0) -> LogChunk: ...

    def stop_execution(self, arn: str) -> Execution: ...

    def test_rows(self, execution_arn: str, limit: int) -> TestRows:
        """Up to `limit` rows of the test split an execution held out, for smoke-testing its model."""
        ...

    def list_versions(self, status: ApprovalStatus | None = None) -> list[ModelVersion]:
        """The group's versions, newest first."""
        ...

    def get_version(self, arn: str) -> ModelVersion: ...

    def set_approval(self, arn: str, status: ApprovalStatus, description: str | None = None) -> ModelVersion: ...

    def champion(self) -> ModelVersion | None:
        """The newest Approved version, or None."""
        ...

    def deploy(
        self,
        model_package_arn: str,
        endpoint_name: str,
        memory_mb: int,
        max_concurrency: int,
        force: bool = False,
        wait: bool = True,
    ) -> Endpoint:
        """Serve a version: create the endpoint, or switch an existing one to it without a failed request."""
        ...

    def list_endpoints(self) -> list[Endpoint]: ...

    def get_endpoint(self, name: str) -> Endpoint: ...

    def delete_endpoint(self, name: str) -> None: ...

    def invoke_endpoint(
        self, name: str, body: bytes, content_type: str = "text/csv", timeout: float | None = None
    ) -> Invocation:
        """InvokeEndpoint: CSV rows (8 features, no header) in, one prediction per line out; `timeout`: seconds
        to wait for the answer (None: 60)."""
        ...


class RegistryAndEndpoints:
    """The registry and endpoint half of the protocol for a backend that keeps them in a `registry` and an
    `endpoints` object with the same method names (both backends do): one delegation, written once."""

    registry: Any
    endpoints: Any

    def list_versions(self, status: ApprovalStatus | None = None) -> list[ModelVersion]:
        return self.registry.versions(status)

    def get_version(self, arn: str) -> ModelVersion:
        return self.registry.get(arn)

    def set_approval(self, arn: str, status: ApprovalStatus, description: str | None = None) -> ModelVersion:
        return self.registry.set_approval(arn, status, description)

    def champion(self) -> ModelVersion | None:
        return self.registry.champion()

    def deploy(
        self,
        model_package_arn: str,
        endpoint_name: str,
        memory_mb: int,
        max_concurrency: int,
        force: bool = False,
        wait: bool = True,
    ) -> Endpoint:
        return self.endpoints.deploy(model_package_arn, endpoint_name, memory_mb, max_concurrency, force, wait)

    def list_endpoints(self) -> list[Endpoint]:
        return self.endpoints.list()

    def get_endpoint(self, name: str) -> Endpoint:
        return self.endpoints.get(name)

    def delete_endpoint(self, name: str) -> None:
        self.endpoints.delete(name)

    def invoke_endpoint(
        self, name: str, body: bytes, content_type: str = "text/csv", timeout: float | None = None
    ) -> Invocation:
        return self.endpoints.invoke(name, body, content_type, timeout)
