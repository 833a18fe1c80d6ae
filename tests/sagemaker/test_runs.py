"""Runs on the SageMaker backend: a definition that starts without our client, steps as SageMaker names
them, and nothing left in S3 by an upsert that fails."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from core.errors import UserError
from core.inputs import BUNDLED_DATA
from core.models import ApprovalStatus, StepStatus
from core.spec import RunParameters
from tests.aws import BUCKET


def bucket_keys(clients) -> set[str]:
    return {o["Key"] for o in clients.s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])}


def fail_call(client, operation: str, code: str, message: str) -> None:
    """Answer `operation` with an AWS error before it leaves the client (moto would accept it)."""

    def answer(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        error = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": 400}}
        return AWSResponse("https://sagemaker.invalid", 400, {}, None), error

    client.meta.events.register(f"before-call.sagemaker.{operation}", answer)


def test_an_execution_started_without_parameters_runs_on_the_uploaded_bundled_data(
    sagemaker_backend, simulator
) -> None:
    runs = sagemaker_backend.runs
    runs.upsert(champion_gate=False)
    sm = sagemaker_backend.clients.sagemaker
    # As Studio, `aws sagemaker start-pipeline-execution` or a schedule would start it: no parameters at all.
    arn = sm.start_pipeline_execution(PipelineName=runs.settings.pipeline_name)["PipelineExecutionArn"]
    bucket, key = runs.default_input[5:].split("/", 1)
    uploaded = sagemaker_backend.clients.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert uploaded == BUNDLED_DATA.read_bytes()
    simulator.complete(arn)
    steps = {s.name: s for s in sagemaker_backend.list_steps(arn)}
    assert steps["CheckR2"].gate is not None and steps["CheckR2"].gate.passed
    assert steps["Register"].status is StepStatus.SUCCEEDED and steps["Register"].model_package_arn


def test_the_bundled_data_is_uploaded_once(sagemaker_backend, simulator) -> None:
    sagemaker_backend.runs.upsert(champion_gate=False)
    before = bucket_keys(sagemaker_backend.clients)
    sagemaker_backend.runs.upsert(champion_gate=False)
    inputs = [k for k in bucket_keys(sagemaker_backend.clients) if "/input/" in k]
    assert bucket_keys(sagemaker_backend.clients) == before and len(inputs) == 1


def test_a_failed_repack_is_a_failed_register_with_aws_reason(sagemaker_backend, simulator) -> None:
    execution = sagemaker_backend.start_run(RunParameters())
    reason = "ClientError: Failed to download data. 403 Forbidden"
    simulator.complete(execution.arn, repack_failure=reason)
    steps = {s.name: s for s in sagemaker_backend.list_steps(execution.arn)}
    assert list(steps) == ["Preprocess", "Train", "Evaluate", "CheckR2", "Register"]
    assert steps["Register"].status is StepStatus.FAILED and steps["Register"].failure_reason == reason
    assert steps["Register"].model_package_arn is None


def test_a_failed_upsert_leaves_no_s3_object_behind(sagemaker_backend, simulator, tmp_path) -> None:
    clients = sagemaker_backend.clients
    before = bucket_keys(clients)
    fail_call(clients.sagemaker, "CreatePipeline", "ValidationException", "Role is not assumable")
    data = tmp_path / "mine.csv"
    data.write_bytes(BUNDLED_DATA.read_bytes())
    for input_data in ("", str(BUNDLED_DATA)):
        with pytest.raises(UserError, match="CreatePipeline failed: Role is not assumable"):
            sagemaker_backend.start_run(RunParameters(input_data=input_data))
        # Neither the bundled data, nor the user's input, nor the code the SDK uploaded stays behind.
        assert bucket_keys(clients) == before
    assert clients.sagemaker.list_pipelines()["PipelineSummaries"] == []


def test_code_of_a_pipeline_that_exists_survives_a_failed_update(sagemaker_backend, simulator) -> None:
    clients = sagemaker_backend.clients
    sagemaker_backend.runs.upsert(champion_gate=False)
    kept = bucket_keys(clients)
    fail_call(clients.sagemaker, "UpdatePipeline", "ThrottlingException", "Rate exceeded")
    with pytest.raises(UserError, match="throttling"):
        sagemaker_backend.start_run(RunParameters())
    assert bucket_keys(clients) == kept  # the pipeline still refers to them


def test_a_role_of_another_account_is_refused_before_anything_is_created(sagemaker_clients, tmp_path) -> None:
    from core.sagemaker.backend import SageMakerBackend
    from core.sagemaker.config import SageMakerSettings
    from tests.aws import REGION

    other = "arn:aws:iam::111122223333:role/SageMakerRole"
    backend = SageMakerBackend(
        SageMakerSettings(region=REGION, role_arn=other, bucket=BUCKET), tmp_path / "c", sagemaker_clients
    )
    before = bucket_keys(sagemaker_clients)
    with pytest.raises(UserError) as caught:
        backend.start_run(RunParameters())
    assert str(caught.value) == (
        f"role {other} belongs to account 111122223333, but the credentials are of account 123456789012, and "
        "SageMaker can only be given a role of the caller's account: set role_arn to a role of 123456789012"
    )
    with pytest.raises(UserError, match="belongs to account 111122223333"):
        backend.deploy("arn:aws:sagemaker:us-east-1:123456789012:model-package/californiahousing/1", "ep", 2048, 5)
    assert bucket_keys(sagemaker_clients) == before
    assert sagemaker_clients.sagemaker.list_pipelines()["PipelineSummaries"] == []
    assert sagemaker_clients.sagemaker.list_models()["Models"] == []


def test_a_bucket_in_another_region_is_refused_before_anything_is_uploaded(sagemaker_clients, tmp_path) -> None:
    from core.sagemaker.backend import SageMakerBackend
    from core.sagemaker.config import SageMakerSettings
    from tests.aws import REGION, ROLE

    s3 = sagemaker_clients.s3
    s3.create_bucket(Bucket="housing-eu", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    for bucket, message in (
        ("housing-eu", "bucket housing-eu is in eu-west-1, but SageMaker runs in us-east-1"),
        (
            "housing-none",
            "bucket housing-none does not exist; create it (aws s3 mb s3://housing-none --region us-east-1)",
        ),
    ):
        backend = SageMakerBackend(
            SageMakerSettings(region=REGION, role_arn=ROLE, bucket=bucket), tmp_path / "c", sagemaker_clients
        )
        with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
            backend.start_run(RunParameters())
    assert s3.list_objects_v2(Bucket="housing-eu").get("Contents", []) == []
    assert sagemaker_clients.sagemaker.list_pipelines()["PipelineSummaries"] == []


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("model_package_group", "CaliforniaHousing\n", "model package group 'CaliforniaHousing\\\\n' breaks"),
        ("pipeline_name", "p" * 257, "has 257 characters; SageMaker allows at most 256"),
        ("pipeline_name", "Pipeline\n", "pipeline name 'Pipeline\\\\n' breaks SageMaker's name rule"),
        ("bucket", "housing-test\n", "bucket 'housing-test\\\\n' breaks S3's naming rules"),
        ("role_arn", "arn:aws:iam::123456789012:role/R\n", "is not an IAM role ARN"),
    ],
)
def test_names_are_whole_string_matches(setting: str, value: str, message: str) -> None:
    from core.sagemaker.config import SageMakerSettings
    from tests.aws import ROLE

    with pytest.raises(UserError, match=message):
        SageMakerSettings(**{"role_arn": ROLE, setting: value}).validate()
    if setting == "pipeline_name":
        assert SageMakerSettings(role_arn=ROLE, pipeline_name="p" * 256).validate()


def test_a_description_sagemaker_would_refuse_is_refused_before_the_call(sagemaker_backend, simulator) -> None:
    execution = sagemaker_backend.start_run(RunParameters(r2_threshold=0.5))
    simulator.complete(execution.arn)
    [version] = sagemaker_backend.list_versions()
    with pytest.raises(UserError, match="has 2,000 characters; SageMaker keeps at most 1,024"):
        sagemaker_backend.set_approval(version.arn, ApprovalStatus.APPROVED, "x" * 2000)
    assert sagemaker_backend.get_version(version.arn).approval_status is ApprovalStatus.PENDING
