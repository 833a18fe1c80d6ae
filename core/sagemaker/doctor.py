"""`housing-tui doctor --backend sagemaker`: is this machine ready to run the pipeline on SageMaker?

Every check runs, whatever failed before it, so a user with nothing set up learns every problem at once; a
check that needs an earlier one's answer says SKIP and which one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from core import sklearn_image
from core.doctor import Check
from core.errors import UserError
from core.sagemaker import images, s3
from core.sagemaker.aws import Clients, aws_errors, make_clients, make_session
from core.sagemaker.config import (
    ROLE_ARN,
    SageMakerSettings,
    check_bucket_name,
    check_pipeline_name,
    role_account,
)
from core.spec import validate_name

SAGEMAKER_PRINCIPAL = "sagemaker.amazonaws.com"


def _skip(name: str, why: str) -> Check:
    return Check(name, "skip", f"needs {why}")


def _valid(check: Callable[[str], object], value: str | None) -> bool:
    try:
        check(value or "")
        return True
    except UserError:
        return False


def run_checks(
    settings: SageMakerSettings,
    clients: Clients | None = None,
    create_group: Callable[[str], bool] | None = None,
    config_error: str | None = None,
) -> list[Check]:
    """One check per line: config, region, credentials, role, bucket, group, image, pipeline.

    `config_error`: the settings could not be read at all (an unknown key, say); the checks that need no
    setting still run."""
    checks: list[Check] = []
    try:
        if config_error:
            raise UserError(config_error)
        settings.validate()
        checks.append(Check("config", "ok", f"role {settings.role_arn}, pipeline {settings.pipeline_name}"))
    except UserError as exc:
        checks.append(Check("config", "fail", str(exc), "fix the [sagemaker] section, HOUSING_TUI_* or the flags"))

    region: str | None = None
    if clients is None:
        try:
            clients = make_clients(make_session(settings.region, settings.profile))
        except UserError as exc:
            checks.append(Check("region", "fail", str(exc), "set region, AWS_REGION or the profile's region"))
    if clients is not None:
        region = clients.region
        checks.append(Check("region", "ok", region))

    identity: dict[str, Any] | None = None
    if clients is None:
        checks.append(_skip("credentials", "a region"))
    else:
        try:
            with aws_errors("sts"):
                identity = clients.sts.get_caller_identity()
            checks.append(Check("credentials", "ok", f"{identity['Arn']} (account {identity['Account']})"))
        except UserError as exc:
            checks.append(Check("credentials", "fail", str(exc), "run `aws configure`, or set AWS_PROFILE"))

    checks.append(_role(settings, clients, identity))
    checks.append(_bucket(settings, clients, identity))
    checks.append(_group(settings, clients, identity, create_group))
    checks.append(_image(settings, region))
    checks.append(_pipeline(settings, clients, identity))
    return checks


def _role(settings: SageMakerSettings, clients: Clients | None, identity: dict[str, Any] | None) -> Check:
    role = settings.role_arn or ""
    if not ROLE_ARN.fullmatch(role):
        return _skip("role", "a role ARN in the config (see the config check)")
    if clients is None or identity is None:
        return _skip("role", "working credentials")
    if role_account(role) != identity["Account"]:
        return Check(
            "role",
            "fail",
            f"{role} is in account {role_account(role)}, the credentials in {identity['Account']}",
            f"SageMaker can only be given a role of the caller's account: use a role of {identity['Account']}",
        )
    name = role.rsplit("/", 1)[-1]
    iam = clients.session.client("iam")
    try:
        with aws_errors("iam", missing=f"role {name} does not exist in account {identity['Account']}"):
            document = iam.get_role(RoleName=name)["Role"].get("AssumeRolePolicyDocument")
    except UserError as exc:
        if "AccessDenied" in str(exc):
            return Check("role", "skip", f"cannot read the role: {exc}", "ask for iam:GetRole to check the trust")
        return Check("role", "fail", str(exc), "create it (SageMaker's console offers one) or set role_arn")
    if not trusts_sagemaker(document):
        return Check(
            "role",
            "fail",
            f"{role} exists, but its trust policy does not let {SAGEMAKER_PRINCIPAL} assume it",
            f"add {SAGEMAKER_PRINCIPAL} as a Service principal with sts:AssumeRole to its trust policy",
        )
    return Check("role", "ok", f"{role}, assumable by SageMaker")


def trusts_sagemaker(document: Any) -> bool:
    """Whether a trust policy (IAM returns it URL-encoded JSON or parsed) allows SageMaker to assume the role."""
    if isinstance(document, str):
        from urllib.parse import unquote

        try:
            document = json.loads(unquote(document))
        except ValueError:
            return False
    if not isinstance(document, dict):
        return False
    statements = document.get("Statement") or []
    for statement in statements if isinstance(statements, list) else [statements]:
        if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
            continue
        actions = statement.get("Action") or []
        actions = [actions] if isinstance(actions, str) else actions
        principal = statement.get("Principal") or {}
        services = principal.get("Service", []) if isinstance(principal, dict) else []
        services = [services] if isinstance(services, str) else services
        if SAGEMAKER_PRINCIPAL in services and any(a in ("sts:AssumeRole", "sts:*", "*") for a in actions):
            return True
    return False


def _bucket(settings: SageMakerSettings, clients: Clients | None, identity: dict[str, Any] | None) -> Check:
    if settings.bucket is not None and not _valid(check_bucket_name, settings.bucket):
        return _skip("bucket", "a valid bucket name (see the config check)")
    if clients is None or identity is None:
        return _skip("bucket", "working credentials")
    bucket = settings.bucket or f"sagemaker-{clients.region}-{identity['Account']}"
    try:
        with aws_errors("s3", missing=f"bucket {bucket} does not exist"):
            where = s3.bucket_region(clients.s3, bucket) or "us-east-1"
    except UserError as exc:
        return Check("bucket", "fail", str(exc), f"create it (aws s3 mb s3://{bucket} --region {clients.region})")
    if where != clients.region:
        return Check(
            "bucket",
            "fail",
            f"bucket {bucket} is in {where}, SageMaker in {clients.region}",
            f"use a bucket in {clients.region}, or set region to {where}",
        )
    return Check("bucket", "ok", f"s3://{bucket}/{settings.prefix} ({where})")


def _group(
    settings: SageMakerSettings,
    clients: Clients | None,
    identity: dict[str, Any] | None,
    create_group: Callable[[str], bool] | None,
) -> Check:
    group = settings.model_package_group
    if not _valid(lambda name: validate_name("model package group", name), group):
        return _skip("model package group", "a valid group name (see the config check)")
    if clients is None or identity is None:
        return _skip("model package group", "working credentials")
    try:
        with aws_errors(missing=f"model package group {group} does not exist"):
            clients.sagemaker.describe_model_package_group(ModelPackageGroupName=group)
        return Check("model package group", "ok", group)
    except UserError as exc:
        if "does not exist" not in str(exc) or create_group is None or not create_group(group):
            return Check("model package group", "fail", str(exc), "rerun with --create-group to create it")
    try:
        with aws_errors():
            clients.sagemaker.create_model_package_group(
                ModelPackageGroupName=group,
                ModelPackageGroupDescription="California housing models registered by housing-tui",
            )
    except UserError as exc:
        return Check("model package group", "fail", str(exc), "create it in the SageMaker console")
    return Check("model package group", "ok", f"{group} (created now)")


def _image(settings: SageMakerSettings, region: str | None) -> Check:
    if region is None:
        return _skip("image", "a region")
    version = settings.framework_version
    uri = images.sklearn_image_uri(region, version)
    if uri is None:
        known = images.sklearn_versions()
        if version not in known:
            detail = f"scikit-learn container {version} is not one SageMaker publishes ({', '.join(known[-4:])}...)"
            return Check("image", "fail", detail, f"set framework_version to {sklearn_image.FRAMEWORK_VERSION}")
        return Check(
            "image", "fail", f"the scikit-learn {version} container is not published in {region}", "choose a region"
        )
    return Check("image", "ok", uri)


def _pipeline(settings: SageMakerSettings, clients: Clients | None, identity: dict[str, Any] | None) -> Check:
    name = settings.pipeline_name
    if not _valid(check_pipeline_name, name):
        return _skip("pipeline", "a valid pipeline name (see the config check)")
    if clients is None or identity is None:
        return _skip("pipeline", "working credentials")
    try:
        with aws_errors(missing="absent"):
            clients.sagemaker.describe_pipeline(PipelineName=name)
        return Check("pipeline", "ok", name)
    except UserError as exc:
        if str(exc) == "absent":
            return Check("pipeline", "ok", f"{name} does not exist yet; `housing-tui run` creates it")
        return Check("pipeline", "fail", str(exc), "check the role's sagemaker:DescribePipeline permission")


def fallback_settings(values: dict[str, Any]) -> SageMakerSettings:
    """The settings the checks can still use when the section cannot be read as a whole."""
    known = {k: str(values[k]) for k in ("region", "profile", "role_arn", "bucket") if values.get(k) is not None}
    return replace(SageMakerSettings(), **known)
