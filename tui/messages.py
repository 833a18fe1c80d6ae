"""Typed messages: every backend call made in a worker comes back to the event loop as one of these."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from core.backend import LogChunk
from core.models import Endpoint, Execution, Invocation, ModelVersion, StepRun


class BackendError(Message):
    """A worker's backend call raised; the app turns this into a visible notice (and nothing else does)."""

    def __init__(self, action: str, error: BaseException) -> None:
        super().__init__()
        self.action = action
        self.error = error


# ---- runs ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogRequest:
    """Which log the runs screen asked for, so an answer for an older selection can be recognised."""

    arn: str
    step: str
    cursor: int


class RunsLoaded(Message):
    def __init__(
        self,
        executions: list[Execution],
        steps: dict[str, list[StepRun]],
        log_request: LogRequest | None,
        log: LogChunk | None,
        unavailable: dict[str, str] | None = None,
        log_error: str | None = None,
    ) -> None:
        super().__init__()
        self.executions = executions
        self.steps = steps  # only for the executions that were not settled yet
        self.log_request = log_request
        self.log = log
        # Runs whose steps could not be read this time, and why ("steps unavailable: ThrottlingException,
        # retrying"); the log's failure likewise. The rest of the answer stands.
        self.unavailable = unavailable or {}
        self.log_error = log_error


class RunStarted(Message):
    def __init__(self, execution: Execution) -> None:
        super().__init__()
        self.execution = execution


class RunStopRequested(Message):
    def __init__(self, execution: Execution) -> None:
        super().__init__()
        self.execution = execution


class ChampionLoaded(Message):
    def __init__(self, champion: ModelVersion | None) -> None:
        super().__init__()
        self.champion = champion


# ---- registry -----------------------------------------------------------------------------------------


class VersionsLoaded(Message):
    def __init__(self, versions: list[ModelVersion], elapsed: float) -> None:
        super().__init__()
        self.versions = versions
        self.elapsed = elapsed  # seconds the backend took, for the benchmark


class ApprovalSaved(Message):
    def __init__(self, version: ModelVersion) -> None:
        super().__init__()
        self.version = version


class ThresholdSaved(Message):
    def __init__(self, value: float, path: str) -> None:
        super().__init__()
        self.value = value
        self.path = path


# ---- endpoints ----------------------------------------------------------------------------------------


class EndpointsLoaded(Message):
    def __init__(self, endpoints: list[Endpoint]) -> None:
        super().__init__()
        self.endpoints = endpoints


class DeployStarted(Message):
    def __init__(self, endpoint: Endpoint, version: ModelVersion) -> None:
        super().__init__()
        self.endpoint = endpoint
        self.version = version


class EndpointDeleted(Message):
    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name


class DeployChoicesLoaded(Message):
    """The versions the deploy form offers, fetched when it is opened from the endpoints screen."""

    def __init__(self, versions: list[ModelVersion], endpoint: Endpoint | None) -> None:
        super().__init__()
        self.versions = versions
        self.endpoint = endpoint


# ---- endpoint test ------------------------------------------------------------------------------------


class SampleRowsLoaded(Message):
    def __init__(self, csv_text: str, count: int, version: ModelVersion) -> None:
        super().__init__()
        self.csv_text = csv_text
        self.count = count
        self.version = version


@dataclass(frozen=True)
class RequestResult:
    """One request the test screen sent: what came back, or the endpoint's error sentence."""

    number: int
    endpoint: str
    rows: int
    actuals: list[float] | None
    invocation: Invocation | None = None
    error: str | None = None

    @property
    def predictions(self) -> list[float]:
        return self.invocation.predictions() if self.invocation is not None else []


class RequestAnswered(Message):
    def __init__(self, result: RequestResult) -> None:
        super().__init__()
        self.result = result
