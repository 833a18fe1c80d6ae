"""The SageMaker backend behind the same Backend protocol the local one implements."""

from __future__ import annotations

import dataclasses
from functools import cached_property
from pathlib import Path

from core import arns, serverless, spec
from core.backend import LogChunk, RegistryAndEndpoints, TestRows
from core.errors import UserError
from core.models import Endpoint, Execution, StepRun
from core.sagemaker import s3
from core.sagemaker.aws import Clients, aws_errors, make_clients, make_session
from core.sagemaker.cache import RecordCache
from core.sagemaker.config import SageMakerSettings, role_account
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
        self._bucket_checked = False
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
        return SageMakerRuns(self.clients, self.settings, self.bucket, RecordCache(self.cache_dir / "records"))

    @cached_property
    def registry(self) -> SageMakerRegistry:
        return SageMakerRegistry(self.clients, self.settings.model_package_group, self.cache_dir)

    @cached_property
    def endpoints(self) -> SageMakerEndpoints:
        return SageMakerEndpoints(self.clients, self.registry, self.settings.role_arn or "")

    # ---- checks that read, before anything is created ----------------------------------------------------

    def check_role_account(self) -> None:
        """IAM lets a caller pass only roles of its own account to SageMaker: say so before creating anything."""
        role = self.settings.role_arn or ""
        if role_account(role) != self.account:
            raise UserError(
                f"role {role} belongs to account {role_account(role)}, but the credentials are of account "
                f"{self.account}, and SageMaker can only be given a role of the caller's account: set role_arn to "
                f"a role of {self.account}"
            )

    def check_bucket(self) -> None:
        """SageMaker jobs read and write S3 in their own region only: a bucket elsewhere fails mid-run."""
        if self._bucket_checked:
            return
        missing = (
            f"bucket {self.bucket} does not exist; create it (aws s3 mb s3://{self.bucket} --region "
            f"{self.clients.region}) or set bucket"
        )
        with aws_errors("s3", who=self.settings.role_arn, missing=missing):
            region = s3.bucket_region(self.clients.s3, self.bucket) or "us-east-1"
        if region != self.clients.region:
            raise UserError(
                f"bucket {self.bucket} is in {region}, but SageMaker runs in {self.clients.region} and reads S3 only "
                f"in its own region: use a bucket in {self.clients.region}, or set region to {region}"
            )
        self._bucket_checked = True

    # ---- runs -----------------------------------------------------------------------------------------

    def start_run(self, params: spec.RunParameters) -> Execution:
        self.check_role_account()
        self.check_bucket()
        if params.min_improvement is not None:
            best = self.registry.champion()
            if best is not None and best.metrics is not None:
                params = dataclasses.replace(params, champion=spec.Champion(best.version, best.metrics.r2))
        return self.runs.start(params)

    def deploy(
        self,
        model_package_arn: str,
        endpoint_name: str,
        memory_mb: int,
        max_concurrency: int,
        force: bool = False,
        wait: bool = True,
    ) -> Endpoint:
        serverless.validate_endpoint_name(endpoint_name)  # a bad name is the first thing to say
        self.check_role_account()  # the model is created with the role
        return super().deploy(model_package_arn, endpoint_name, memory_mb, max_concurrency, force, wait)

    def pipeline_definition(self, champion_gate: bool = False) -> str:
        return self.runs.definition(champion_gate)

    def list_executions(self, limit: int | None = None) -> list[Execution]:
        return self.runs.list(limit)

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
