"""The SageMaker backend behind the same Backend protocol the local one implements."""

from __future__ import annotations

import dataclasses
from functools import cached_property
from pathlib import Path

from core import arns, spec
from core.backend import LogChunk, RegistryAndEndpoints, TestRows
from core.errors import UserError
from core.models import Execution, StepRun
from core.sagemaker.aws import Clients, aws_errors, make_clients, make_session
from core.sagemaker.config import SageMakerSettings
from core.sagemaker.endpoints import SageMakerEndpoints
from core.sagemaker.registry import SageMakerRegistry
from core.sagemaker.runs import SageMakerRuns


class SageMakerBackend(RegistryAndEndpoints):
    name = "sagemaker"
    poll_seconds = 5.0  # live views and --wait: SageMaker throttles callers that poll faster

    def __init__(self, settings: SageMakerSettings, cache_dir: Path, clients: Clients | None = None) -> None:
        # Settings are checked before anything reaches AWS; clients are made on first use.
        self.settings = settings.validate()
        self.cache_dir = cache_dir
        if clients is not None:
            self.__dict__["clients"] = clients

    @cached_property
    def clients(self) -> Clients:
        return make_clients(make_session(self.settings.region, self.settings.profile))

    @cached_property
    def account(self) -> str:
        with aws_errors("sts"):
            account = self.clients.sts.get_caller_identity().get("Account")
        if not account:
            raise UserError("STS did not say which AWS account the credentials are for; set bucket in [sagemaker]")
        return account

    @cached_property
    def bucket(self) -> str:
        return self.settings.bucket or f"sagemaker-{self.clients.region}-{self.account}"

    @cached_property
    def runs(self) -> SageMakerRuns:
        return SageMakerRuns(self.clients, self.settings, self.bucket)

    @cached_property
    def registry(self) -> SageMakerRegistry:
        return SageMakerRegistry(self.clients, self.settings.model_package_group, self.cache_dir)

    @cached_property
    def endpoints(self) -> SageMakerEndpoints:
        return SageMakerEndpoints(self.clients, self.registry, self.settings.role_arn or "")

    # ---- runs -----------------------------------------------------------------------------------------

    def start_run(self, params: spec.RunParameters) -> Execution:
        if params.min_improvement is not None:
            best = self.registry.champion()
            if best is not None and best.metrics is not None:
                params = dataclasses.replace(params, champion=spec.Champion(best.version, best.metrics.r2))
        return self.runs.start(params)

    def pipeline_definition(self, champion_gate: bool = False) -> str:
        return self.runs.definition(champion_gate)

    def list_executions(self) -> list[Execution]:
        return self.runs.list()

    def get_execution(self, arn: str) -> Execution:
        return self.runs.get(arns.check_execution_arn(arn))

    def list_steps(self, arn: str) -> list[StepRun]:
        return self.runs.steps(arns.check_execution_arn(arn))

    def read_step_log(self, arn: str, step: str, cursor: int = 0) -> LogChunk:
        return self.runs.read_log(arns.check_execution_arn(arn), step, cursor)

    def stop_execution(self, arn: str) -> Execution:
        return self.runs.stop(arns.check_execution_arn(arn))

    def test_rows(self, execution_arn: str, limit: int) -> TestRows:
        return self.runs.test_rows(arns.check_execution_arn(execution_arn), limit)
