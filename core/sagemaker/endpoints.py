"""Serverless endpoints on SageMaker: model from a model package, endpoint config, endpoint."""

from __future__ import annotations

import contextlib
import re
import time
from typing import Any

from core import serverless
from core.errors import NotFound, UserError, one_line
from core.models import Endpoint, EndpointStatus, Invocation
from core.runtime import invoke
from core.sagemaker.answers import status_of
from core.sagemaker.aws import Clients, aws_errors
from core.sagemaker.registry import SageMakerRegistry

WAIT_SECONDS = 30 * 60.0  # serverless endpoints take minutes to create
POLL_SECONDS = 15.0
PAGE_SIZE = 100  # the most ListEndpoints returns; its default is fewer
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
        # An endpoint config and a model never change once created: described once per process, by name.
        self._configs: dict[str, dict[str, Any]] = {}
        self._models: dict[str, dict[str, Any]] = {}
        # Each listed endpoint as last drawn, with the listing's (status, LastModifiedTime) it was drawn for.
        self._listed: dict[str, tuple[tuple[Any, Any], Endpoint]] = {}

    def deploy(
        self, arn: str, name: str, memory_mb: int, max_concurrency: int, force: bool = False, wait: bool = True
    ) -> Endpoint:
        serverless.validate_endpoint_name(name)  # before the lookup: a bad name is the first thing to say
        version = self.registry.get(arn)
        serverless.check_deploy(version, name, memory_mb, max_concurrency, force)
        existing = self._describe(name)
        if existing is not None and existing["EndpointStatus"] == "Failed":
            raise UserError(
                f"endpoint {name} is Failed and SageMaker can only delete it: "
                f"housing-tui delete-endpoint {name}, then deploy again"
            )
        if existing is not None and existing["EndpointStatus"] != "InService":
            raise UserError(
                f"endpoint {name} is {existing['EndpointStatus']}; wait until it is InService, then deploy again"
            )
        resources = resource_name(name, version.version)
        previous = self._config(existing["EndpointConfigName"]) if existing is not None else None
        self._create_resources(resources, version.arn, memory_mb, max_concurrency)
        try:
            with aws_errors(who=self.role_arn):
                if existing is None:
                    self.clients.sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=resources)
                else:
                    # UpdateEndpoint keeps the old config serving until the new one is in service.
                    self.clients.sagemaker_extra.update_endpoint(EndpointName=name, EndpointConfigName=resources)
        except UserError:
            self._delete_resources(resources, [resources])  # nothing half-made stays behind
            raise
        if not wait:
            return self.get(name)
        endpoint = self.wait(name)
        if previous is not None and endpoint.status is EndpointStatus.IN_SERVICE:
            # The old config and model served until now; once the new ones are in service they are garbage.
            models = [v["ModelName"] for v in previous.get("ProductionVariants", [])]
            self._delete_resources(previous["EndpointConfigName"], models)
        return endpoint

    def _create_resources(self, resources: str, package_arn: str, memory_mb: int, max_concurrency: int) -> None:
        """The model (from the package) and a serverless endpoint config, both named `resources`."""
        sm = self.clients.sagemaker
        with aws_errors(who=self.role_arn):
            sm.create_model(
                ModelName=resources,
                PrimaryContainer={"ModelPackageName": package_arn},
                ExecutionRoleArn=self.role_arn,
            )
        try:
            with aws_errors(who=self.role_arn):
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
        except UserError:
            self._delete_resources(None, [resources])
            raise

    def _delete_resources(self, config_name: str | None, models: list[str]) -> None:
        """Best effort: a resource already gone is not an error."""
        sm = self.clients.sagemaker
        deletions: list[tuple[Any, dict[str, str]]] = []
        if config_name:
            deletions.append((sm.delete_endpoint_config, {"EndpointConfigName": config_name}))
        deletions += [(sm.delete_model, {"ModelName": model}) for model in models]
        for delete, args in deletions:
            with contextlib.suppress(NotFound), aws_errors(who=self.role_arn, missing="gone"):
                delete(**args)
        # A name may be used again for a new config or model: what was kept of the deleted ones goes.
        if config_name:
            self._configs.pop(config_name, None)
        for model in models:
            self._models.pop(model, None)

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
        """One call a poll while nothing changes: an endpoint is described again only when ListEndpoints shows
        a new status or LastModifiedTime."""
        summaries: list[dict[str, Any]] = []
        with aws_errors():
            for page in self.clients.sagemaker.get_paginator("list_endpoints").paginate(
                SortBy="Name", SortOrder="Ascending", PaginationConfig={"PageSize": PAGE_SIZE}
            ):
                summaries.extend(page["Endpoints"])
        listed: dict[str, tuple[tuple[Any, Any], Endpoint]] = {}
        for summary in summaries:
            name, seen = summary["EndpointName"], (summary.get("EndpointStatus"), summary.get("LastModifiedTime"))
            drawn = self._listed.get(name)
            if drawn is None or drawn[0] != seen:
                described = self._describe(name)
                if described is None:
                    continue  # deleted since it was listed
                drawn = (seen, self._endpoint(described))
            listed[name] = drawn
        self._listed = listed  # deleted endpoints are forgotten
        return [endpoint for _, endpoint in listed.values()]

    def delete(self, name: str) -> None:
        described = self._describe(name)
        if described is None:
            raise NotFound(f"no endpoint named {name}; `housing-tui endpoints` lists them")
        config = self._config(described["EndpointConfigName"])
        with aws_errors(who=self.role_arn):
            self.clients.sagemaker.delete_endpoint(EndpointName=name)
        models = [v["ModelName"] for v in (config or {}).get("ProductionVariants", [])]
        self._delete_resources(described["EndpointConfigName"], models)

    def invoke(
        self, name: str, body: bytes, content_type: str = "text/csv", timeout: float | None = None
    ) -> Invocation:
        endpoint = self.get(name)
        if endpoint.status not in (EndpointStatus.IN_SERVICE, EndpointStatus.UPDATING):
            why = f": {one_line(endpoint.failure_reason, 120)}" if endpoint.failure_reason else ""
            raise UserError(f"endpoint {name} is {endpoint.status}{why}; it takes requests once InService")
        runtime = self.clients.runtime
        if timeout is not None and timeout != runtime.meta.config.read_timeout:
            from botocore.config import Config

            longer = runtime.meta.config.merge(Config(read_timeout=timeout))
            runtime = self.clients.session.client("sagemaker-runtime", config=longer)
        return invoke(runtime, name, body, content_type)

    # ---- describing -----------------------------------------------------------------------------------

    def _describe(self, name: str) -> dict[str, Any] | None:
        try:
            with aws_errors(missing="gone"):
                return self.clients.sagemaker.describe_endpoint(EndpointName=name)
        except NotFound:
            return None

    def _config(self, config_name: str) -> dict[str, Any] | None:
        if config_name in self._configs:
            return self._configs[config_name]
        try:
            with aws_errors(missing="gone"):
                config = self.clients.sagemaker.describe_endpoint_config(EndpointConfigName=config_name)
        except NotFound:
            return None  # not kept: asked again next time
        self._configs[config_name] = config
        return config

    def _model(self, model_name: str) -> dict[str, Any]:
        """DescribeModel, once per model; raises as the call does (the caller decides what missing means)."""
        if model_name not in self._models:
            self._models[model_name] = self.clients.sagemaker.describe_model(ModelName=model_name)
        return self._models[model_name]

    def _endpoint(self, described: dict[str, Any]) -> Endpoint:
        config_name = described.get("EndpointConfigName")
        try:
            config = (self._config(config_name) if config_name else None) or {}
        except UserError:
            config = {}  # shown without its model and size rather than not at all; read again next time
        variant = (config.get("ProductionVariants") or [{}])[0]
        serverless_config = variant.get("ServerlessConfig", {})
        current = (described.get("ProductionVariants") or [{}])[0].get("CurrentServerlessConfig", serverless_config)
        package = ""
        if variant.get("ModelName"):
            try:
                with aws_errors(missing="gone"):
                    model = self._model(variant["ModelName"])
                package = model.get("PrimaryContainer", {}).get("ModelPackageName", "")
            except UserError:  # gone, or not readable now: the endpoint is still listed
                package = ""
        return Endpoint(
            name=described["EndpointName"],
            arn=described["EndpointArn"],
            status=STATUS.get(described["EndpointStatus"]) or status_of(EndpointStatus, described["EndpointStatus"]),
            model_package_arn=package,
            created=described["CreationTime"].timestamp(),
            last_modified=described["LastModifiedTime"].timestamp(),
            memory_mb=int(current.get("MemorySizeInMB", 0)),
            max_concurrency=int(current.get("MaxConcurrency", 0)),
            url=None,
            failure_reason=described.get("FailureReason"),
        )
