"""The SageMaker Model Registry: versions with their ModelQuality statistics, approval."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from core import arns, spec
from core.errors import NotFound, UserError, reason
from core.models import ApprovalStatus, Metrics, ModelVersion
from core.sagemaker import s3
from core.sagemaker.answers import status_of
from core.sagemaker.aws import Clients, aws_errors
from core.sagemaker.cache import KeptVersions, RecordCache
from core.sagemaker.listing import SweptListing

# What the listing shows of a version that its description shows too: when one of them differs, the version
# changed. ModelPackageSummary has no LastModifiedTime today; it is compared whenever the listing carries it.
CHANGE_FIELDS = ("ModelApprovalStatus", "ModelPackageStatus", "ModelLifeCycle", "LastModifiedTime")
PAGE_SIZE = 100  # the most ListModelPackages returns; its default is fewer


def _differs(summary: dict[str, Any], package: dict[str, Any]) -> bool:
    return any(summary[field] != package.get(field) for field in CHANGE_FIELDS if field in summary)


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
        self.kept = KeptVersions(RecordCache(cache_dir / "records"))  # descriptions, for the next process
        self._listing = SweptListing(self._page, "ModelPackageArn", self._still_there)

    def versions(self, status: ApprovalStatus | None = None) -> list[ModelVersion]:
        # Unfiltered is what a live view polls: at most two calls, however many versions.
        summaries = self._listing.refresh() if status is None else self._list_all(status)
        # A version is described again only when the listing shows it changed; a description kept on disk
        # by an earlier process counts, so a new process describes nothing that did not change either.
        # A summary without an ARN names no version anyone could open: it is left out.
        summaries = [s for s in summaries if isinstance(s, dict) and s.get("ModelPackageArn")]
        for summary in summaries:
            if summary["ModelPackageArn"] not in self._described:
                self._recall(summary)
        # Described again: what changed, and what could not be described last time (its row says "retrying").
        stale = [
            s["ModelPackageArn"] for s in summaries if self._changed(s) or s["ModelPackageArn"] in self._unavailable
        ]
        self.clients.each(self._try_describe, stale)
        described = [self._described[arn] for arn in stale if arn in self._described and arn not in self._unavailable]
        # What _version reads next, fetched side by side too: each one's metrics, each run's parameters.
        self.clients.each(self._metrics, described)
        runs = {(p.get("MetadataProperties") or {}).get("GeneratedBy") for p in described}
        self.clients.each(self._parameters, sorted(r for r in runs if r and r not in self._execution_parameters))
        versions = [self._listed(s) for s in summaries]
        for arn in stale:
            if arn in self._described and arn not in self._unavailable:
                self._keep(arn)
        self.kept.save()
        return sorted(versions, key=lambda v: v.version, reverse=True)

    def _page(self, token: str | None, status: ApprovalStatus | None = None) -> tuple[list[dict[str, Any]], str | None]:
        args: dict[str, Any] = {
            "ModelPackageGroupName": self.group,
            "SortBy": "CreationTime",
            "SortOrder": "Descending",
            "MaxResults": PAGE_SIZE,
        }
        if status is not None:
            args["ModelApprovalStatus"] = str(status)
        if token:
            args["NextToken"] = token
        with aws_errors(missing=f"model package group {self.group} does not exist yet; a passing run creates it"):
            page = self.clients.sagemaker.list_model_packages(**args)
        return page.get("ModelPackageSummaryList") or [], page.get("NextToken")

    def _list_all(self, status: ApprovalStatus) -> list[dict[str, Any]]:
        summaries: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page, token = self._page(token, status)
            summaries.extend(page)
            if not token:
                return summaries

    def _still_there(self, arns: Iterable[str]) -> set[str]:
        """Of versions a sweep of the listing did not meet, those that still exist (the rest were deleted)."""
        found: set[str] = set()
        for arn in arns:
            try:
                self._describe(arn)
                found.add(arn)
            except NotFound:
                self._described.pop(arn, None)
                self.kept.drop(arn)
            except UserError:
                found.add(arn)  # not known to be gone: kept until a later sweep knows better
        return found

    def _changed(self, summary: dict[str, Any]) -> bool:
        described = self._described.get(summary["ModelPackageArn"])
        return described is None or _differs(summary, described)

    def _recall(self, summary: dict[str, Any]) -> None:
        """Take what an earlier process kept of a version, unless the version changed since."""
        arn = summary["ModelPackageArn"]
        kept = self.kept.get(arn) or {}
        package = kept.get("package")
        if not isinstance(package, dict) or package.get("ModelPackageArn") != arn or _differs(summary, package):
            return
        self._described[arn] = package
        execution = package.get("MetadataProperties", {}).get("GeneratedBy")
        if execution and isinstance(kept.get("parameters"), dict):
            self._execution_parameters.setdefault(execution, kept["parameters"])
        with contextlib.suppress(TypeError, KeyError, ValueError):  # no metrics kept, or a damaged report
            self._metrics_seen.setdefault(arn, Metrics.from_report(kept["metrics"]))

    def _keep(self, arn: str) -> None:
        package = {k: v for k, v in self._described[arn].items() if k != "ResponseMetadata"}
        execution = package.get("MetadataProperties", {}).get("GeneratedBy")
        metrics = self._metrics_seen.get(arn)
        entry = {"package": package, "parameters": self._execution_parameters.get(execution or "")}
        self.kept.put(arn, {**entry, "metrics": metrics.to_report() if metrics else None})

    def get(self, arn: str) -> ModelVersion:
        self._check_group(arn)
        return self._version(self._describe(arn))

    def _describe(self, arn: str) -> dict[str, Any]:
        with aws_errors(missing=f"no model package {arn}; `housing-tui versions` lists them"):
            package = self.clients.sagemaker.describe_model_package(ModelPackageName=arn)
        self._described[arn] = package
        self._listing.patch(arn, package)  # fresher than the page it was listed on
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
