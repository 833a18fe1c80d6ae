"""Amazon Resource Names as SageMaker writes them, for the resources this tool creates."""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.errors import UserError

LOCAL_REGION = "local"
LOCAL_ACCOUNT = "000000000000"

_MODEL_PACKAGE = re.compile(
    r"^arn:aws[a-z-]*:sagemaker:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"model-package/(?P<group>[a-z0-9](-*[a-z0-9]){0,62})/(?P<version>[1-9]\d*)$"
)
_EXECUTION = re.compile(
    r"^arn:aws[a-z-]*:sagemaker:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"pipeline/(?P<pipeline>[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255})/execution/(?P<id>[a-z0-9]{1,64})$"
)


@dataclass(frozen=True)
class ModelPackageArn:
    region: str
    account: str
    group: str  # lower-cased, as SageMaker puts it in the ARN
    version: int


def model_package_arn(group: str, version: int, region: str = LOCAL_REGION, account: str = LOCAL_ACCOUNT) -> str:
    return f"arn:aws:sagemaker:{region}:{account}:model-package/{group.lower()}/{version}"


def model_package_group_arn(group: str, region: str = LOCAL_REGION, account: str = LOCAL_ACCOUNT) -> str:
    return f"arn:aws:sagemaker:{region}:{account}:model-package-group/{group.lower()}"


def execution_arn(pipeline: str, execution_id: str, region: str = LOCAL_REGION, account: str = LOCAL_ACCOUNT) -> str:
    return f"arn:aws:sagemaker:{region}:{account}:pipeline/{pipeline.lower()}/execution/{execution_id}"


def parse_model_package_arn(arn: str) -> ModelPackageArn:
    match = _MODEL_PACKAGE.fullmatch(arn.strip())
    if not match:
        raise UserError(
            f"{arn!r} is not a model package ARN; expected "
            "arn:aws:sagemaker:REGION:ACCOUNT:model-package/GROUP/VERSION (see `housing-tui versions`)"
        )
    return ModelPackageArn(match["region"], match["account"], match["group"], int(match["version"]))


def check_execution_arn(arn: str) -> str:
    if not _EXECUTION.fullmatch(arn.strip()):
        raise UserError(
            f"{arn!r} is not a pipeline execution ARN; expected "
            "arn:aws:sagemaker:REGION:ACCOUNT:pipeline/NAME/execution/ID (see `housing-tui executions`)"
        )
    return arn.strip()


def check_model_package(arn: str, group: str, local: bool) -> ModelPackageArn:
    """The ARN names a version of `group`, on the backend in use (local ARNs live in region `local`)."""
    parsed = parse_model_package_arn(arn)
    if parsed.group != group.lower():
        raise UserError(
            f"{arn} belongs to group {parsed.group!r}, not {group!r}; "
            "pass an ARN from `housing-tui versions` or choose the group with --group"
        )
    if local and (parsed.region, parsed.account) != (LOCAL_REGION, LOCAL_ACCOUNT):
        raise UserError(
            f"{arn} is an AWS ARN ({parsed.region}, account {parsed.account}); the local backend's ARNs "
            f"use region {LOCAL_REGION} and account {LOCAL_ACCOUNT}: use --backend sagemaker for it"
        )
    if not local and parsed.region == LOCAL_REGION:
        raise UserError(f"{arn} is a local ARN; use --backend local for it")
    return parsed
