"""The SageMaker Model Registry: versions with their ModelQuality statistics, approval."""

from __future__ import annotations

import dataclasses
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from core import arns, spec
from core.errors import UserError, reason
from core.models import ApprovalStatus, Metrics, ModelVersion
from core.sagemaker import s3
from core.sagemaker.answers import status_of
from core.sagemaker.aws import Clients, aws_errors

# What Metrics.from_report raises for a document that is not an evaluation report (a string where a number
# should be, a list where an object should be, a number too big for a float).
MALFORMED = (KeyError, TypeError, ValueError, OverflowError)


def _version_number(package: dict[str, Any]) -> int:
    """The version, from the record or else from the ARN's last part (0 if neither says)."""
    number = package.get("ModelPackageVersion")
    if isinstance(number, int):
        return number
    tail = package["ModelPackageArn"].rsplit("/", 1)[-1]
    return int(tail) if tail.isascii() and tail.isdigit() else 0


class SageMakerRegistry:
    def __init__(self, clients: Clients, group: str, cache_dir: Path) -> None:
        self.clients = clients
        self.group = group
        self.cache_dir = cache_dir
        self._described: dict[str, dict[str, Any]] = {}
        self._execution_parameters: dict[str, dict[str, str]] = {}
        self._metrics_seen: dict[str, Metrics] = {}
        self._unavailable: dict[str, str] = {}  # versions whose last DescribeModelPackage failed, and why

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
        # A version's description changes only with its approval, which the listing carries: describe a
        # version again only when that changed, so a live view polls one call, not one per version.
        stale = [
            s["ModelPackageArn"]
            for s in summaries
            if s["ModelPackageArn"] not in self._described
            or self._described[s["ModelPackageArn"]].get("ModelApprovalStatus") != s.get("ModelApprovalStatus")
        ]
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(self._try_describe, stale))
        versions = [self._listed(s) for s in summaries]
        return sorted(versions, key=lambda v: v.version, reverse=True)

    def get(self, arn: str) -> ModelVersion:
        self._check_group(arn)
        return self._version(self._describe(arn))

    def _describe(self, arn: str) -> dict[str, Any]:
        with aws_errors(missing=f"no model package {arn}; `housing-tui versions` lists them"):
            package = self.clients.sagemaker.describe_model_package(ModelPackageName=arn)
        self._described[arn] = package
        return package

    def _try_describe(self, arn: str) -> None:
        """Describe one version; a failure marks that version instead of failing the whole listing."""
        try:
            self._describe(arn)
            self._unavailable.pop(arn, None)
        except UserError as exc:
            self._unavailable[arn] = reason(exc)

    def _listed(self, summary: dict[str, Any]) -> ModelVersion:
        """A listed version: as described, or, when describing it failed, as listed (and described again on
        the next listing, since no description with this approval is kept)."""
        arn = summary["ModelPackageArn"]
        described = self._described.get(arn)
        why = self._unavailable.get(arn)
        # Described just now, or earlier with the approval the listing still shows: the description holds.
        if described is not None and (
            why is None or described.get("ModelApprovalStatus") == summary.get("ModelApprovalStatus")
        ):
            return self._version(described)
        version = self._version({**(described or {}), **summary})
        return dataclasses.replace(version, unavailable=f"details unavailable: {why or 'not described'}, retrying")

    def _version(self, package: dict[str, Any]) -> ModelVersion:
        containers = package.get("InferenceSpecification", {}).get("Containers", [{}])
        created = package["CreationTime"].timestamp()
        return ModelVersion(
            arn=package["ModelPackageArn"],
            group=package.get("ModelPackageGroupName", self.group),
            version=_version_number(package),
            approval_status=status_of(ApprovalStatus, package.get("ModelApprovalStatus")),
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
        spec.validate_approval_description(description)  # SageMaker would refuse it with a ValidationException
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
        arn = package["ModelPackageArn"]
        if arn in self._metrics_seen:
            return self._metrics_seen[arn]
        cache = self.cache_dir / "metrics" / (arn.replace(":", "_").replace("/", "_") + ".json")
        try:
            self._metrics_seen[arn] = Metrics.from_report(json.loads(cache.read_text()))
            return self._metrics_seen[arn]
        except (OSError, *MALFORMED):
            pass  # not cached yet (or a damaged copy): fetch it
        try:
            with aws_errors("s3"):
                report = s3.read_json(self.clients.s3, uri)
            metrics = Metrics.from_report(report)
        except (UserError, *MALFORMED):
            return None  # shown as missing metrics; the version itself is still listed
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            partial = cache.with_suffix(f".{os.getpid()}.tmp")
            partial.write_text(json.dumps(report))
            os.replace(partial, cache)  # readers see the whole file or none
        except (OSError, ValueError):
            pass  # an ARN no file can be named after, or a full disk: the next process reads S3 again
        self._metrics_seen[arn] = metrics
        return metrics

    def _parameters(self, execution_arn: str | None) -> dict[str, str]:
        if not execution_arn or ":pipeline/" not in execution_arn:
            return {}
        if execution_arn not in self._execution_parameters:  # an execution's parameters never change
            try:
                with aws_errors():
                    pages = self.clients.sagemaker.get_paginator("list_pipeline_parameters_for_execution").paginate(
                        PipelineExecutionArn=execution_arn
                    )
                    values = {p["Name"]: p["Value"] for page in pages for p in page.get("PipelineParameters", [])}
            except UserError:
                return {}
            self._execution_parameters[execution_arn] = values
        return self._execution_parameters[execution_arn]

    def _check_group(self, arn: str) -> None:
        arns.check_model_package(arn, self.group, local=False)
