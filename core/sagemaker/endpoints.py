"""Serverless endpoints on SageMaker: model from a model package, endpoint config, endpoint."""

from __future__ import annotations

import re
import time
from typing import Any

from core import serverless
from core.errors import NotFound, UserError
from core.models import ApprovalStatus, Endpoint, EndpointStatus, Invocation
from core.runtime import invoke
from core.sagemaker.aws import Clients, aws_errors
from core.sagemaker.registry import SageMakerRegistry

WAIT_SECONDS = 30 * 60.0  # serverless endpoints take minutes to create
POLL_SECONDS = 15.0
STATUS = {
    "OutOfService": EndpointStatus.FAILED,
    "Creating": EndpointStatus.CREATING,
    "Updating": EndpointStatus.UPDATING,
    "SystemUpdating": EndpointStatus.UPDATING,
    "RollingBack": EndpointStatus.UPDATING,
    "InService": EndpointStatus.IN_SERVICE,
    "Deleting": EndpointStatus.DELETING,
    "Failed": EndpointStatus.FAILED,
    "UpdateRollbackFailed": EndpointStatus.FAILED,
}


def resource_name(endpoint: str, version: int) -> str:
    """Name for the model and endpoint config of one deployment: unique, within SageMaker's 63 characters."""
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime())
    suffix = f"-v{version}-{stamp}"
    return re.sub(r"-+$", "", endpoint[: 63 - len(suffix)]) + suffix


class SageMakerEndpoints:
    def __init__(self, clients: Clients, registry: SageMakerRegistry, role_arn: str) -> None:
        self.clients = clients
        self.registry = registry
        self.role_arn = role_arn

    def deploy(
        self, arn: str, name: str, memory_mb: int, max_concurrency: int, force: bool = False, wait: bool = True
    ) -> Endpoint:
        serverless.validate_endpoint_name(name)
        serverless.validate_memory(memory_mb)
        serverless.validate_max_concurrency(max_concurrency)
        version = self.registry.get(arn)
        if version.approval_status is not ApprovalStatus.APPROVED and not force:
            raise UserError(
                f"version {version.version} is {version.approval_status}, and only Approved versions deploy; "
                f"approve it first (housing-tui approve {version.arn}) or pass --force"
            )
        existing = self._describe(name)
        if existing is not None and existing["EndpointStatus"] not in ("InService", "Failed"):
            raise UserError(
                f"endpoint {name} is {existing['EndpointStatus']}; wait until it is InService, then deploy again"
            )
        resources = resource_name(name, version.version)
        sm = self.clients.sagemaker
        with aws_errors(who=self.role_arn):
            sm.create_model(
                ModelName=resources,
                PrimaryContainer={"ModelPackageName": version.arn},
                ExecutionRoleArn=self.role_arn,
            )
            sm.create_endpoint_config(
                EndpointConfigName=resources,
                ProductionVariants=[
                    {
                        "VariantName": "AllTraffic",
                        "ModelName": resources,
                        "ServerlessConfig": {"MemorySizeInMB": memory_mb, "MaxConcurrency": max_concurrency},
                    }
                ],
            )
            if existing is None:
                sm.create_endpoint(EndpointName=name, EndpointConfigName=resources)
            else:
                # UpdateEndpoint keeps the old config serving until the new one is in service.
                self.clients.sagemaker_extra.update_endpoint(EndpointName=name, EndpointConfigName=resources)
        return self.wait(name) if wait else self.get(name)

    def wait(self, name: str, timeout: float = WAIT_SECONDS) -> Endpoint:
        deadline = time.monotonic() + timeout
        while True:
            endpoint = self.get(name)
            if endpoint.status in (EndpointStatus.IN_SERVICE, EndpointStatus.FAILED):
                return endpoint
            if time.monotonic() > deadline:
                raise UserError(f"endpoint {name} is still {endpoint.status} after {timeout / 60:.0f} minutes")
            time.sleep(POLL_SECONDS)

    def get(self, name: str) -> Endpoint:
        described = self._describe(name)
        if described is None:
            raise NotFound(f"no endpoint named {name}; `housing-tui endpoints` lists them")
        return self._endpoint(described)

    def list(self) -> list[Endpoint]:
        names: list[str] = []
        with aws_errors():
            for page in self.clients.sagemaker.get_paginator("list_endpoints").paginate(
                SortBy="Name", SortOrder="Ascending"
            ):
                names.extend(e["EndpointName"] for e in page["Endpoints"])
        found = [self._describe(n) for n in names]
        return [self._endpoint(d) for d in found if d is not None]

    def delete(self, name: str) -> None:
        described = self._describe(name)
        if described is None:
            raise NotFound(f"no endpoint named {name}; `housing-tui endpoints` lists them")
        config = self._config(described["EndpointConfigName"])
        with aws_errors(who=self.role_arn):
            self.clients.sagemaker.delete_endpoint(EndpointName=name)
            if config is not None:
                self.clients.sagemaker.delete_endpoint_config(EndpointConfigName=described["EndpointConfigName"])
                for variant in config.get("ProductionVariants", []):
                    self.clients.sagemaker.delete_model(ModelName=variant["ModelName"])

    def invoke(self, name: str, body: bytes, content_type: str = "text/csv") -> Invocation:
        endpoint = self.get(name)
        if endpoint.status not in (EndpointStatus.IN_SERVICE, EndpointStatus.UPDATING):
            why = f": {endpoint.failure_reason}" if endpoint.failure_reason else ""
            raise UserError(f"endpoint {name} is {endpoint.status}{why}; it takes requests once InService")
        return invoke(self.clients.runtime, name, body, content_type)

    # ---- describing -----------------------------------------------------------------------------------

    def _describe(self, name: str) -> dict[str, Any] | None:
        try:
            with aws_errors(missing="gone"):
                return self.clients.sagemaker.describe_endpoint(EndpointName=name)
        except NotFound:
            return None

    def _config(self, config_name: str) -> dict[str, Any] | None:
        try:
            with aws_errors(missing="gone"):
                return self.clients.sagemaker.describe_endpoint_config(EndpointConfigName=config_name)
        except NotFound:
            return None

    def _endpoint(self, described: dict[str, Any]) -> Endpoint:
        config = self._config(described["EndpointConfigName"]) or {}
        variant = (config.get("ProductionVariants") or [{}])[0]
        serverless_config = variant.get("ServerlessConfig", {})
        current = (described.get("ProductionVariants") or [{}])[0].get("CurrentServerlessConfig", serverless_config)
        package = ""
        if variant.get("ModelName"):
            try:
                with aws_errors(missing="gone"):
                    model = self.clients.sagemaker.describe_model(ModelName=variant["ModelName"])
                package = model.get("PrimaryContainer", {}).get("ModelPackageName", "")
            except NotFound:
                package = ""
        return Endpoint(
            name=described["EndpointName"],
            arn=described["EndpointArn"],
            status=STATUS.get(described["EndpointStatus"], EndpointStatus.FAILED),
            model_package_arn=package,
            created=described["CreationTime"].timestamp(),
            last_modified=described["LastModifiedTime"].timestamp(),
            memory_mb=int(current.get("MemorySizeInMB", 0)),
            max_concurrency=int(current.get("MaxConcurrency", 0)),
            url=None,
            failure_reason=described.get("FailureReason"),
        )
