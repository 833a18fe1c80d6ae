"""The standard AWS configuration, read as the AWS CLI v2 reads it: region, profile, endpoints, retries."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import UserError
from core.sagemaker.aws import make_clients, make_session
from tests.aws import BUCKET


@pytest.fixture
def bare_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No region and no retry setting anywhere; an empty AWS config file of the test's own."""
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "aws-config"
    config.write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    return config


def test_aws_region_is_read_before_aws_default_region(bare_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    assert make_session(None).region_name == "eu-west-1"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")
    assert make_session(None).region_name == "eu-west-1"  # as the AWS CLI v2: AWS_REGION wins
    monkeypatch.delenv("AWS_REGION")
    assert make_session(None).region_name == "us-west-2"
    assert make_session("ap-south-1").region_name == "ap-south-1"  # ours (config, flag) comes first


def test_the_profile_gives_the_region_and_a_missing_profile_is_named(
    bare_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bare_env.write_text("[profile ml]\nregion = eu-central-1\n")
    assert make_session(None, "ml").region_name == "eu-central-1"
    monkeypatch.setenv("AWS_PROFILE", "ml")
    assert make_session(None).region_name == "eu-central-1"
    with pytest.raises(UserError, match=r"AWS profile 'nosuch' is not in ~/\.aws/config"):
        make_session(None, "nosuch")


def test_no_region_names_every_place_that_is_read(bare_env: Path) -> None:
    with pytest.raises(UserError) as caught:
        make_session(None)
    message = str(caught.value)
    for place in ("[sagemaker]", "HOUSING_TUI_REGION", "--region", "AWS_REGION", "AWS_DEFAULT_REGION", "profile"):
        assert place in message
    assert "\n" not in message


def test_retries_are_ours_unless_the_user_set_them(bare_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def retries() -> tuple[int, str]:
        client = make_clients(make_session("us-east-1")).sagemaker
        config = client.meta.config.retries
        return config["total_max_attempts"], config["mode"]

    assert retries() == (8, "standard")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("AWS_RETRY_MODE", "adaptive")
    assert retries() == (2, "adaptive")
    monkeypatch.delenv("AWS_MAX_ATTEMPTS")
    monkeypatch.delenv("AWS_RETRY_MODE")
    bare_env.write_text("[default]\nmax_attempts = 4\nretry_mode = legacy\n")
    assert retries() == (4, "legacy")


def test_a_service_endpoint_setting_overrides_the_general_one(aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Everything points at a port nobody listens on, except S3, which points at moto.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", aws)
    clients = make_clients(make_session("us-east-1"))
    assert clients.s3.head_bucket(Bucket=BUCKET)["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert clients.sagemaker.meta.endpoint_url == "http://127.0.0.1:9"
