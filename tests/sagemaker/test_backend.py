"""The SageMaker backend's own behaviour on moto: doctor, settings, errors, the CLI with --backend sagemaker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.errors import UserError
from core.sagemaker.config import SageMakerSettings, check_bucket_name
from core.settings import load
from core.spec import RunParameters
from tests.aws import BUCKET, ROLE
from tui.cli import main


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, "no SageMaker execution role"),
        ({"role_arn": "SageMakerRole"}, "is not an IAM role ARN"),
        ({"role_arn": "arn:aws:iam::123:role/x"}, "is not an IAM role ARN"),
        ({"role_arn": ROLE, "bucket": "My_Bucket"}, "breaks S3's naming rules"),
        ({"role_arn": ROLE, "bucket": "192.168.1.1"}, "IP address"),
        ({"role_arn": ROLE, "model_package_group": "bad_group"}, "breaks SageMaker's name rule"),
        ({"role_arn": ROLE, "memory": 1000}, "is not a serverless size"),
        ({"role_arn": ROLE, "processing_instance_type": "m5.large"}, "is not a SageMaker instance type"),
    ],
)
def test_bad_settings_are_refused_before_any_aws_call(settings: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        SageMakerSettings(**settings).validate()


def test_bucket_rules() -> None:
    for good in ("housing-test", "a.b-c", "abc"):
        assert check_bucket_name(good) == good
    for bad in ("ab", "a..b", "-abc", "abc-", "xn--abc", "abc-s3alias", "a" * 64):
        with pytest.raises(UserError):
            check_bucket_name(bad)


def test_a_region_without_sagemaker_is_one_sentence(capsys) -> None:
    code = main(["--backend", "sagemaker", "--role-arn", ROLE, "--region", "xx-nowhere-1", "versions"])
    assert code == 2 and "region 'xx-nowhere-1' does not offer SageMaker" in capsys.readouterr().err


def test_settings_come_from_the_config_section_and_environment(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'backend = "sagemaker"\n[sagemaker]\nrole_arn = "{ROLE}"\nbucket = "from-file"\nmemory = 4096\n')
    settings = load(config, environ={"HOUSING_TUI_BUCKET": "from-env", "HOUSING_TUI_REGION": "eu-west-1"})
    assert settings.backend == "sagemaker"
    assert settings.sagemaker == {"role_arn": ROLE, "bucket": "from-env", "memory": "4096", "region": "eu-west-1"}
    config.write_text("[sagemaker]\nrole = 'x'\n")
    with pytest.raises(UserError, match="unknown \\[sagemaker\\] setting 'role'"):
        load(config, environ={})


def test_access_denied_becomes_one_sentence_with_the_fix(sagemaker_backend, simulator) -> None:
    execution = sagemaker_backend.start_run(RunParameters())
    simulator.running(execution.arn)
    events = sagemaker_backend.clients.sagemaker_extra.meta.events
    events.unregister("provide-client-params.sagemaker.StopPipelineExecution", simulator._feed_stop)
    simulator.stubber.add_client_error(
        "stop_pipeline_execution", service_error_code="AccessDeniedException", service_message="not allowed"
    )
    with pytest.raises(UserError) as caught:
        sagemaker_backend.stop_execution(execution.arn)
    assert str(caught.value) == (
        f"AccessDenied on sagemaker:StopPipelineExecution for {ROLE}: add sagemaker:StopPipelineExecution to its "
        "IAM policy"
    )


def test_the_cli_on_the_sagemaker_backend(aws: str, capsys, tmp_path: Path) -> None:
    base = ["--backend", "sagemaker", "--role-arn", ROLE, "--bucket", BUCKET, "--home", str(tmp_path)]
    assert main([*base, "versions", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"ModelPackageSummaryList": []}
    assert main([*base, "pipeline", "show"]) == 0
    definition = json.loads(capsys.readouterr().out)
    assert [s["Name"] for s in definition["Steps"]] == ["Preprocess", "Train", "Evaluate", "CheckR2"]
    assert main([*base, "doctor", "--json", "--create-group"]) == 0
    checks = {c["Name"]: c["Status"] for c in json.loads(capsys.readouterr().out)["Checks"]}
    assert checks["credentials"] == "ok" and checks["model package group"] == "ok"
    assert main([*base, "approve", "arn:aws:sagemaker:us-east-1:123456789012:model-package/californiahousing/3"]) == 2
    assert "no model package" in capsys.readouterr().err
    assert main(["--home", str(tmp_path), "pipeline", "show"]) == 2
    assert "use --backend sagemaker" in capsys.readouterr().err


def _package(clients, approval: str) -> str:
    sm = clients.sagemaker
    if not sm.list_model_package_groups()["ModelPackageGroupSummaryList"]:
        sm.create_model_package_group(ModelPackageGroupName="CaliforniaHousing")
    return sm.create_model_package(
        ModelPackageGroupName="CaliforniaHousing",
        InferenceSpecification={
            "Containers": [{"Image": "sklearn", "ModelDataUrl": f"s3://{BUCKET}/m.tar.gz"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
        ModelApprovalStatus=approval,
    )["ModelPackageArn"]


def test_redeploy_and_delete_leave_no_models_or_configs_behind(sagemaker_backend, simulator) -> None:
    clients = sagemaker_backend.clients
    first, second = _package(clients, "Approved"), _package(clients, "Approved")
    sagemaker_backend.deploy(first, "ep", 2048, 5, wait=True)
    switched = sagemaker_backend.deploy(second, "ep", 4096, 10, wait=True)
    assert switched.model_package_arn == second and (switched.memory_mb, switched.max_concurrency) == (4096, 10)
    models = clients.sagemaker.list_models()["Models"]
    configs = clients.sagemaker.list_endpoint_configs()["EndpointConfigs"]
    assert len(models) == 1 and len(configs) == 1  # the first deployment's model and config are gone
    assert configs[0]["EndpointConfigName"] == models[0]["ModelName"]
    sagemaker_backend.delete_endpoint("ep")
    assert clients.sagemaker.list_models()["Models"] == []
    assert clients.sagemaker.list_endpoint_configs()["EndpointConfigs"] == []
    assert clients.sagemaker.list_endpoints()["Endpoints"] == []


def test_a_failed_endpoint_must_be_deleted_before_deploying_again(sagemaker_backend, simulator) -> None:
    from tests.aws import moto_sagemaker

    package = _package(sagemaker_backend.clients, "Approved")
    sagemaker_backend.deploy(package, "ep", 2048, 5, wait=True)
    moto_sagemaker().endpoints["ep"].endpoint_status = "Failed"  # as SageMaker reports a broken endpoint
    with pytest.raises(UserError, match="endpoint ep is Failed and SageMaker can only delete it"):
        sagemaker_backend.deploy(package, "ep", 2048, 5)
    assert len(sagemaker_backend.clients.sagemaker.list_models()["Models"]) == 1
