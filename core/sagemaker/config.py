"""The SageMaker backend's settings: `[sagemaker]` in the config file, HOUSING_TUI_* variables, flags.

Everything is checked here, before any AWS call that could leave something half-made.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from typing import Any

from core import serverless, sklearn_image, spec
from core.errors import UserError

ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
IP_ADDRESS = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
PREFIX = re.compile(r"^[\w!.*'()/-]{0,512}$")
INSTANCE_TYPE = re.compile(r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
# SageMaker's PipelineName (botocore's service model): longer than the other names' 63 characters.
PIPELINE_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}")
PIPELINE_NAME_MAX = 256


@dataclass(frozen=True)
class SageMakerSettings:
    region: str | None = None  # None: boto3's own configuration (AWS_REGION, profile, ...)
    role_arn: str | None = None
    bucket: str | None = None  # None: SageMaker's default bucket, sagemaker-REGION-ACCOUNT
    prefix: str = "housing-tui"
    pipeline_name: str = spec.PIPELINE_NAME
    model_package_group: str = spec.DEFAULT_GROUP
    processing_instance_type: str = "ml.m5.large"
    training_instance_type: str = "ml.m5.large"
    framework_version: str = sklearn_image.FRAMEWORK_VERSION  # the scikit-learn container's version
    memory: int = serverless.DEFAULT_MEMORY
    max_concurrency: int = serverless.DEFAULT_MAX_CONCURRENCY
    profile: str | None = None

    def with_values(self, values: dict[str, Any], source: str) -> SageMakerSettings:
        known = {f.name: f for f in fields(self)}
        changes: dict[str, Any] = {}
        for key, value in values.items():
            if value is None:
                continue
            if key not in known:
                raise UserError(f"{source}: unknown SageMaker setting {key!r}; known: {', '.join(sorted(known))}")
            if key in ("memory", "max_concurrency"):
                try:
                    value = int(value)
                except (TypeError, ValueError):
                    raise UserError(f"{source}: {key} = {value!r} is not a whole number") from None
            else:
                value = str(value)
            changes[key] = value
        return replace(self, **changes)

    def validate(self) -> SageMakerSettings:
        if self.role_arn is None:
            raise UserError(
                "no SageMaker execution role: set role_arn in the [sagemaker] section of the config file, "
                "HOUSING_TUI_ROLE_ARN, or --role-arn (arn:aws:iam::ACCOUNT:role/NAME)"
            )
        if not ROLE_ARN.fullmatch(self.role_arn):
            raise UserError(f"role {self.role_arn!r} is not an IAM role ARN; expected arn:aws:iam::ACCOUNT:role/NAME")
        if self.bucket is not None:
            check_bucket_name(self.bucket)
        if not PREFIX.fullmatch(self.prefix):
            raise UserError(f"S3 prefix {self.prefix!r} has unsafe characters; use letters, digits, / - _ .")
        check_pipeline_name(self.pipeline_name)
        spec.validate_name("model package group", self.model_package_group)
        for name in ("processing_instance_type", "training_instance_type"):
            if not INSTANCE_TYPE.fullmatch(getattr(self, name)):
                raise UserError(f"{name} {getattr(self, name)!r} is not a SageMaker instance type such as ml.m5.large")
        serverless.validate_memory(self.memory)
        serverless.validate_max_concurrency(self.max_concurrency)
        return self


def check_pipeline_name(name: str) -> str:
    if len(name) > PIPELINE_NAME_MAX:
        raise UserError(
            f"pipeline name {name[:20]!r}... has {len(name)} characters; SageMaker allows at most {PIPELINE_NAME_MAX}"
        )
    if not PIPELINE_NAME.fullmatch(name):
        raise UserError(
            f"pipeline name {name!r} breaks SageMaker's name rule: letters, digits or single hyphens, "
            "starting and ending with a letter or digit"
        )
    return name


def role_account(role_arn: str) -> str:
    """The account of a role ARN that `validate` accepted."""
    return role_arn.split(":")[4]


def check_bucket_name(name: str) -> str:
    """S3's bucket naming rules, so a typo fails here instead of at the first upload."""
    problem = None
    if not BUCKET.fullmatch(name):
        problem = "3-63 lower-case letters, digits, dots or hyphens, starting and ending with a letter or digit"
    elif ".." in name or ".-" in name or "-." in name:
        problem = "no two dots, and no dot next to a hyphen"
    elif IP_ADDRESS.fullmatch(name):
        problem = "not shaped like an IP address"
    elif name.startswith(("xn--", "sthree-")) or name.endswith(("-s3alias", "--ol-s3")):
        problem = "none of the prefixes and suffixes S3 reserves"
    if problem:
        raise UserError(f"bucket {name!r} breaks S3's naming rules: {problem}")
    return name
