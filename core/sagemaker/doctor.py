"""`housing-tui doctor --backend sagemaker`: is this machine ready to run the pipeline on SageMaker?"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.doctor import Check
from core.errors import UserError
from core.sagemaker.aws import Clients, aws_errors, make_clients, make_session
from core.sagemaker.config import SageMakerSettings


def run_checks(
    settings: SageMakerSettings,
    clients: Clients | None = None,
    create_group: Callable[[str], bool] | None = None,
) -> list[Check]:
    """One check per line; later checks are skipped (not failed) when one they rely on fails."""
    checks: list[Check] = []
    try:
        settings.validate()
        checks.append(Check("config", "ok", f"role {settings.role_arn}"))
    except UserError as exc:
        checks.append(Check("config", "fail", str(exc), "fix the [sagemaker] section or the flags"))
        return checks
    if clients is None:
        try:
            clients = make_clients(make_session(settings.region, settings.profile))
        except UserError as exc:
            checks.append(Check("region", "fail", str(exc), "set region (or AWS_REGION) to a SageMaker region"))
            return checks
    checks.append(Check("region", "ok", clients.region))

    identity: dict[str, Any] | None = None
    try:
        with aws_errors("sts"):
            identity = clients.sts.get_caller_identity()
        checks.append(Check("credentials", "ok", f"{identity['Arn']} (account {identity['Account']})"))
    except UserError as exc:
        checks.append(Check("credentials", "fail", str(exc), "run `aws configure` or set AWS_PROFILE"))
        return checks

    role_account = (settings.role_arn or "").split(":")[4]
    if role_account != identity["Account"]:
        checks.append(
            Check(
                "role",
                "warn",
                f"{settings.role_arn} is in account {role_account}, the caller in {identity['Account']}",
                "use a role of the caller's account unless cross-account access is intended",
            )
        )
    else:
        checks.append(Check("role", "ok", settings.role_arn or ""))

    bucket = settings.bucket or f"sagemaker-{clients.region}-{identity['Account']}"
    try:
        with aws_errors("s3", missing=f"bucket {bucket} does not exist"):
            clients.s3.head_bucket(Bucket=bucket)
        checks.append(Check("bucket", "ok", f"s3://{bucket}/{settings.prefix}"))
    except UserError as exc:
        checks.append(Check("bucket", "fail", str(exc), f"create it (aws s3 mb s3://{bucket}) or set bucket"))

    group = settings.model_package_group
    try:
        with aws_errors(missing=f"model package group {group} does not exist"):
            clients.sagemaker.describe_model_package_group(ModelPackageGroupName=group)
        checks.append(Check("model package group", "ok", group))
    except UserError as exc:
        if create_group is not None and create_group(group):
            with aws_errors():
                clients.sagemaker.create_model_package_group(
                    ModelPackageGroupName=group,
                    ModelPackageGroupDescription="California housing models registered by housing-tui",
                )
            checks.append(Check("model package group", "ok", f"{group} (created now)"))
        else:
            checks.append(Check("model package group", "fail", str(exc), "rerun with --create-group to create it"))

    try:
        with aws_errors(missing=f"pipeline {settings.pipeline_name} does not exist yet"):
            clients.sagemaker.describe_pipeline(PipelineName=settings.pipeline_name)
        checks.append(Check("pipeline", "ok", settings.pipeline_name))
    except UserError as exc:
        checks.append(Check("pipeline", "warn", str(exc), "`housing-tui run` creates it"))
    return checks
