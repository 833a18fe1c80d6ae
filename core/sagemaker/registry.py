"""The SageMaker Model Registry: versions with their ModelQuality statistics, approval."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from core import arns
from core.errors import UserError
from core.models import ApprovalStatus, Metrics, ModelVersion
from core.sagemaker import s3
from core.sagemaker.aws import Clients, aws_errors


class SageMakerRegistry:
    def __init__(self, clients: Clients, group: str, cache_dir: Path) -> None:
        self.clients = clients
        self.group = group
        self.cache_dir = cache_dir

    def versions(self, status: ApprovalStatus | None = None) -> list[ModelVersion]:
        args: dict[str, Any] = {
            "ModelPackageGroupName": self.group,
            "SortBy": "CreationTime",
            "SortOrder": "Descending",
        }
        if status is not None:
            args["ModelApprovalStatus"] = str(status)
        summaries: list[dict[str, Any]] = []
        with aws_errors(missing=f"model package group {self.group} does not exist yet; a passing run creates it"):
            for page in self.clients.sagemaker.get_paginator("list_model_packages").paginate(**args):
                summaries.extend(page["ModelPackageSummaryList"])
        with ThreadPoolExecutor(max_workers=8) as pool:
            versions = list(pool.map(lambda s: self.get(s["ModelPackageArn"]), summaries))
        return sorted(versions, key=lambda v: v.version, reverse=True)

    def get(self, arn: str) -> ModelVersion:
        self._check_group(arn)
        with aws_errors(missing=f"no model package {arn}; `housing-tui versions` lists them"):
            package = self.clients.sagemaker.describe_model_package(ModelPackageName=arn)
        containers = package.get("InferenceSpecification", {}).get("Containers", [{}])
        created = package["CreationTime"].timestamp()
        return ModelVersion(
            arn=package["ModelPackageArn"],
            group=package.get("ModelPackageGroupName", self.group),
            version=int(package.get("ModelPackageVersion") or arn.rsplit("/", 1)[-1]),
            approval_status=ApprovalStatus(package["ModelApprovalStatus"]),
            created=created,
            last_modified=package.get("LastModifiedTime", package["CreationTime"]).timestamp(),
            metrics=self._metrics(package),
            approval_description=package.get("ApprovalDescription"),
            model_data_url=containers[0].get("ModelDataUrl") if containers else None,
            execution_arn=package.get("MetadataProperties", {}).get("GeneratedBy"),
            parameters=self._parameters(package.get("MetadataProperties", {}).get("GeneratedBy")),
        )

    def champion(self) -> ModelVersion | None:
        approved = self.versions(ApprovalStatus.APPROVED)
        return approved[0] if approved else None

    def set_approval(self, arn: str, status: ApprovalStatus, description: str | None) -> ModelVersion:
        self._check_group(arn)
        args: dict[str, Any] = {"ModelPackageArn": arn, "ModelApprovalStatus": str(status)}
        if description is not None:
            args["ApprovalDescription"] = description
        with aws_errors(missing=f"no model package {arn}; `housing-tui versions` lists them"):
            self.clients.sagemaker.update_model_package(**args)
        return self.get(arn)

    def _metrics(self, package: dict[str, Any]) -> Metrics | None:
        """ModelQuality statistics (the run's evaluation.json), fetched once per version and kept on disk."""
        uri = package.get("ModelMetrics", {}).get("ModelQuality", {}).get("Statistics", {}).get("S3Uri")
        if not uri:
            return None
        cache = self.cache_dir / "metrics" / (package["ModelPackageArn"].replace(":", "_").replace("/", "_") + ".json")
        if cache.exists():
            return Metrics.from_report(json.loads(cache.read_text()))
        try:
            with aws_errors("s3"):
                report = s3.read_json(self.clients.s3, uri)
            metrics = Metrics.from_report(report)
        except (UserError, KeyError, ValueError):
            return None  # shown as missing metrics; the version itself is still listed
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(report))
        return metrics

    def _parameters(self, execution_arn: str | None) -> dict[str, str]:
        if not execution_arn or ":pipeline/" not in execution_arn:
            return {}
        try:
            with aws_errors():
                pages = self.clients.sagemaker.get_paginator("list_pipeline_parameters_for_execution").paginate(
                    PipelineExecutionArn=execution_arn
                )
                return {p["Name"]: p["Value"] for page in pages for p in page["PipelineParameters"]}
        except UserError:
            return {}

    def _check_group(self, arn: str) -> None:
        parsed = arns.parse_model_package_arn(arn)
        if parsed.group != self.group.lower():
            raise UserError(
                f"{arn} belongs to group {parsed.group!r}, not {self.group!r}; "
                "pass an ARN from `housing-tui versions` or choose the group with --group"
            )
        if parsed.region == arns.LOCAL_REGION:
            raise UserError(f"{arn} is a local ARN; use --backend local for it")
