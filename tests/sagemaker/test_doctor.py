"""`doctor --backend sagemaker` on moto: every check runs and says OK, FAIL or SKIP with the fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.sagemaker.config import SageMakerSettings
from core.sagemaker.doctor import run_checks, trusts_sagemaker
from tests.aws import BUCKET, REGION, ROLE
from tui.cli import main

CHECKS = ["config", "region", "credentials", "role", "bucket", "model package group", "image", "pipeline"]


def statuses(checks) -> dict[str, str]:
    return {c.name: c.status for c in checks}


def detail(checks, name: str) -> str:
    return next(c.detail for c in checks if c.name == name)


def test_a_ready_account_passes_every_check_and_the_group_can_be_created(sagemaker_clients) -> None:
    settings = SageMakerSettings(region=REGION, role_arn=ROLE, bucket=BUCKET)
    checks = run_checks(settings, sagemaker_clients)
    assert [c.name for c in checks] == CHECKS
    assert statuses(checks) == {**dict.fromkeys(CHECKS, "ok"), "model package group": "fail"}
    assert detail(checks, "role") == f"{ROLE}, assumable by SageMaker"
    assert detail(checks, "image") == (
        "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
    )
    assert "does not exist yet; `housing-tui run` creates it" in detail(checks, "pipeline")
    group = next(c for c in checks if c.name == "model package group")
    assert "CaliforniaHousing does not exist" in group.detail and "--create-group" in group.fix
    asked: list[str] = []
    created = run_checks(settings, sagemaker_clients, lambda name: asked.append(name) or True)
    assert asked == ["CaliforniaHousing"] and statuses(created)["model package group"] == "ok"
    assert set(statuses(run_checks(settings, sagemaker_clients)).values()) == {"ok"}


def test_every_problem_is_reported_at_once(sagemaker_clients) -> None:
    # A role of another account, a bucket that does not exist, a framework version SageMaker never published:
    # three failures, each with its fix, in one run.
    settings = SageMakerSettings(
        region=REGION, role_arn="arn:aws:iam::111122223333:role/R", bucket="no-such-bucket", framework_version="9.9-9"
    )
    checks = {c.name: c for c in run_checks(settings, sagemaker_clients)}
    assert [name for name, c in checks.items() if c.status == "fail"] == [
        "role",
        "bucket",
        "model package group",
        "image",
    ]
    assert "use a role of 123456789012" in checks["role"].fix
    assert checks["bucket"].detail.startswith("bucket no-such-bucket does not exist")
    assert "aws s3 mb s3://no-such-bucket --region us-east-1" in checks["bucket"].fix
    assert "9.9-9 is not one SageMaker publishes" in checks["image"].detail
    assert checks["credentials"].status == "ok" and checks["pipeline"].status == "ok"


def test_a_missing_role_and_a_role_sagemaker_cannot_assume_fail(sagemaker_clients) -> None:
    iam = sagemaker_clients.session.client("iam")
    lambda_trust = json.dumps(
        {
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
            ]
        }
    )
    iam.create_role(RoleName="LambdaRole", AssumeRolePolicyDocument=lambda_trust)
    for role, message in (
        ("arn:aws:iam::123456789012:role/Nobody", "role Nobody does not exist in account 123456789012"),
        (
            "arn:aws:iam::123456789012:role/LambdaRole",
            "its trust policy does not let sagemaker.amazonaws.com assume it",
        ),
    ):
        checks = run_checks(SageMakerSettings(region=REGION, role_arn=role, bucket=BUCKET), sagemaker_clients)
        assert statuses(checks)["role"] == "fail" and message in detail(checks, "role")


def test_trust_policies_in_the_shapes_iam_returns() -> None:
    allow = {"Effect": "Allow", "Principal": {"Service": ["sagemaker.amazonaws.com"]}, "Action": ["sts:AssumeRole"]}
    assert trusts_sagemaker({"Statement": [allow]})
    assert trusts_sagemaker("%7B%22Statement%22%3A" + json.dumps([allow]).replace('"', "%22") + "%7D")
    assert not trusts_sagemaker({"Statement": [{**allow, "Effect": "Deny"}]})
    assert not trusts_sagemaker({"Statement": [{**allow, "Action": "sts:TagSession"}]})
    assert not trusts_sagemaker("not json") and not trusts_sagemaker(None)


def test_without_region_or_credentials_the_rest_is_skipped_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    checks = {c.name: c for c in run_checks(SageMakerSettings(role_arn=ROLE))}
    assert list(checks) == CHECKS
    assert checks["config"].status == "ok" and checks["region"].status == "fail"
    assert "AWS_REGION" in checks["region"].detail
    for name in ("credentials", "image"):
        assert (checks[name].status, checks[name].detail) == ("skip", "needs a region")
    checks = {c.name: c for c in run_checks(SageMakerSettings(region=REGION, role_arn=ROLE))}
    assert checks["credentials"].status == "fail" and "no AWS credentials found" in checks["credentials"].detail
    for name in ("role", "bucket", "model package group", "pipeline"):
        assert (checks[name].status, checks[name].detail) == ("skip", "needs working credentials")
    assert checks["image"].status == "ok"


def test_a_bad_config_still_runs_the_checks_that_need_no_setting(
    aws: str, capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[sagemaker]\nrole_arn = "{ROLE}"\nregion = "{REGION}"\nmemory = "lots"\n')
    monkeypatch.setenv("HOUSING_TUI_CONFIG", str(config))
    code = main(["--backend", "sagemaker", "--home", str(tmp_path), "doctor", "--json"])
    checks = {c["Name"]: c for c in json.loads(capsys.readouterr().out)["Checks"]}
    assert code == 1 and list(checks) == CHECKS
    assert (
        checks["config"]["Status"] == "fail" and "memory = 'lots' is not a whole number" in checks["config"]["Detail"]
    )
    assert checks["credentials"]["Status"] == "ok" and checks["role"]["Status"] == "ok"


def test_the_plain_output_has_one_line_per_check_with_the_fix(aws: str, capsys, tmp_path: Path) -> None:
    base = ["--backend", "sagemaker", "--role-arn", ROLE, "--bucket", "no-such-bucket", "--home", str(tmp_path)]
    assert main([*base, "doctor"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["OK", "OK", "OK", "OK", "FAIL", "FAIL", "OK", "OK"]
    assert "-> create it (aws s3 mb s3://no-such-bucket --region us-east-1)" in lines[4]
