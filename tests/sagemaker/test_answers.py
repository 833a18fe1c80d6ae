"""What the fuzzing of tests/sagemaker/test_fuzz_answers.py found, one answer each, through botocore's Stubber."""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from core.errors import UserError
from core.sagemaker.aws import Clients, aws_errors, make_clients, make_session
from core.sagemaker.backend import SageMakerBackend
from core.sagemaker.config import SageMakerSettings
from tests.aws import BUCKET, REGION, ROLE
from tests.sagemaker.shapes import HTML_PAGE, LONG_TEXT

EXECUTION = f"arn:aws:sagemaker:{REGION}:123456789012:pipeline/housing-tui-pipeline/execution/abc123"
PACKAGE = f"arn:aws:sagemaker:{REGION}:123456789012:model-package/californiahousing/3"
EVALUATE_JOB = f"arn:aws:sagemaker:{REGION}:123456789012:processing-job/pipelines-abc123-evaluate"
NOW = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)
MOTO_500 = (  # what moto's server answers for an operation it lacks (ListPipelineExecutionSteps)
    "<!doctype html>\n<html lang=en>\n<title>500 Internal Server Error</title>\n<h1>Internal Server Error</h1>\n"
    "<p>The server encountered an internal error and was unable to complete your request. Either the server is "
    "overloaded or there is an error in the application.</p>\n"
)


class Stubbed:
    """A SageMaker backend whose clients answer only what a test queued on their Stubbers."""

    def __init__(self, clients: Clients, tmp_path: Path) -> None:
        self.clients = clients
        self.stubs = {
            name: Stubber(getattr(self.clients, name)) for name in ("sagemaker", "s3", "logs", "runtime", "sts")
        }
        settings = SageMakerSettings(region=REGION, role_arn=ROLE, bucket=BUCKET)
        self.backend = SageMakerBackend(settings, tmp_path / "cache", clients=self.clients)

    def __getattr__(self, name: str) -> Stubber:
        return self.stubs[name]


@pytest.fixture(scope="module")
def clients() -> Clients:
    return make_clients(make_session(REGION))  # made once: a client takes a while to make


@pytest.fixture
def aws(clients: Clients, tmp_path: Path) -> Iterator[Stubbed]:
    stubbed = Stubbed(clients, tmp_path)
    for stubber in stubbed.stubs.values():
        stubber.activate()
    yield stubbed
    for stubber in stubbed.stubs.values():
        stubber.assert_no_pending_responses()  # every call the test expected was made
        stubber.deactivate()


def body(text: str | bytes) -> StreamingBody:
    data = text.encode() if isinstance(text, str) else text
    return StreamingBody(io.BytesIO(data), len(data))


def parameters(aws: Stubbed, **values: str) -> None:
    answer = {"PipelineParameters": [{"Name": k, "Value": v} for k, v in values.items()]}
    aws.sagemaker.add_response("list_pipeline_parameters_for_execution", answer)


# ---- errors: the service that failed, in one line -----------------------------------------------------


def test_an_s3_or_logs_call_failing_in_a_sagemaker_block_names_its_own_service(aws: Stubbed) -> None:
    aws.s3.add_client_error("list_objects_v2", "AccessDenied", "Access Denied", 403)
    with pytest.raises(UserError) as caught, aws_errors(who=ROLE):  # declared "sagemaker", as the SDK's upload
        aws.clients.s3.list_objects_v2(Bucket=BUCKET)
    assert str(caught.value) == f"AccessDenied on s3:ListObjectsV2 for {ROLE}: add s3:ListObjectsV2 to its IAM policy"
    aws.logs.add_client_error("filter_log_events", "ThrottlingException", "Rate exceeded", 400)
    with pytest.raises(UserError) as caught, aws_errors():
        aws.clients.logs.filter_log_events(logGroupName="/aws/sagemaker/ProcessingJobs")
    assert "logs:FilterLogEvents" in str(caught.value) and caught.value.code == "ThrottlingException"


def test_an_html_error_page_is_its_status_and_one_line(aws: Stubbed) -> None:
    aws.sagemaker.add_client_error("list_pipeline_execution_steps", "500", MOTO_500, 500)
    with pytest.raises(UserError) as caught:
        aws.backend.list_steps(EXECUTION)
    message = str(caught.value)
    assert message.startswith(
        "sagemaker:ListPipelineExecutionSteps failed with HTTP 500: Internal Server Error The server encountered"
    )
    assert "<" not in message and "\n" not in message and len(message) <= 300
    assert caught.value.code == "HTTP 500"


def test_a_10_kb_message_is_cut_to_one_line_with_its_code(aws: Stubbed) -> None:
    aws.sagemaker.add_client_error("describe_model_package", "InternalFailure", LONG_TEXT, 500)
    with pytest.raises(UserError) as caught:
        aws.backend.get_version(PACKAGE)
    message = str(caught.value)
    assert message.startswith("sagemaker:DescribeModelPackage failed with HTTP 500 (InternalFailure): Rate exceeded")
    assert message.endswith("...") and len(message) <= 300


def test_a_paginator_handed_the_same_token_twice_is_a_sentence(aws: Stubbed) -> None:
    page = {"PipelineExecutionSummaries": [], "NextToken": "again"}
    aws.sagemaker.add_response("list_pipeline_executions", page)
    aws.sagemaker.add_response("list_pipeline_executions", page)
    with pytest.raises(UserError, match=r"^a sagemaker call did not complete .*same next token"):
        aws.backend.list_executions()


# ---- runs -----------------------------------------------------------------------------------------------


def test_executions_with_a_status_added_later_or_none_or_no_arn_are_listed(aws: Stubbed) -> None:
    later, unknown = f"{EXECUTION}1", f"{EXECUTION}2"
    summaries = [
        {"PipelineExecutionArn": later, "PipelineExecutionStatus": "CompletedWithFailures", "StartTime": NOW},
        {"PipelineExecutionArn": unknown},  # every member of a summary is optional in the model
        {"PipelineExecutionStatus": "Succeeded"},  # no ARN: nothing anyone could open
    ]
    aws.sagemaker.add_response("list_pipeline_executions", {"PipelineExecutionSummaries": summaries})
    parameters(aws, R2Threshold="0.6")
    aws.sagemaker.add_response("list_pipeline_parameters_for_execution", {})  # no PipelineParameters member
    executions = aws.backend.list_executions()
    assert [(e.arn, str(e.status), e.status.is_active) for e in executions] == [
        (later, "CompletedWithFailures", False),
        (unknown, "Unknown", False),
    ]
    assert executions[0].parameters == {"R2Threshold": "0.6"} and executions[1].parameters == {}
    assert json.loads(json.dumps(executions[0].to_summary()))["PipelineExecutionStatus"] == "CompletedWithFailures"


def test_one_runs_parameters_failing_does_not_hide_the_list(aws: Stubbed) -> None:
    summary = {"PipelineExecutionArn": EXECUTION, "PipelineExecutionStatus": "Succeeded", "StartTime": NOW}
    aws.sagemaker.add_response("list_pipeline_executions", {"PipelineExecutionSummaries": [summary]})
    aws.sagemaker.add_client_error("list_pipeline_parameters_for_execution", "ThrottlingException", "Rate", 400)
    [execution] = aws.backend.list_executions()
    assert execution.arn == EXECUTION and execution.parameters == {}
    parameters(aws, R2Threshold="0.6")  # the failure was not kept as the answer: they are asked again
    assert aws.backend.runs.parameters(EXECUTION) == {"R2Threshold": "0.6"}


def test_describe_execution_names_the_execution_asked_about(aws: Stubbed) -> None:
    aws.sagemaker.add_response("describe_pipeline_execution", {"PipelineExecutionStatus": "Executing"})
    parameters(aws)
    execution = aws.backend.get_execution(EXECUTION)
    assert execution.arn == EXECUTION and execution.status == "Executing" and execution.status.is_active


def _steps(aws: Stubbed, records: list[dict[str, Any]]) -> None:
    aws.sagemaker.add_response("list_pipeline_execution_steps", {"PipelineExecutionSteps": records})


def _evaluation(aws: Stubbed, document: str | bytes, threshold: str = "0.6") -> None:
    """CheckR2's answer path: the Evaluate job's output, its evaluation.json, the run's R2Threshold."""
    output = {"OutputName": "evaluation", "S3Output": {"S3Uri": f"s3://{BUCKET}/e", "S3UploadMode": "EndOfJob"}}
    aws.sagemaker.add_response(
        "describe_processing_job",
        {
            "ProcessingJobName": "pipelines-abc123-evaluate",
            "ProcessingResources": {
                "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30}
            },
            "AppSpecification": {"ImageUri": "sklearn"},
            "ProcessingJobArn": EVALUATE_JOB,
            "ProcessingJobStatus": "Completed",
            "CreationTime": NOW,
            "ProcessingOutputConfig": {"Outputs": [output]},
        },
    )
    aws.s3.add_response("get_object", {"Body": body(document)})
    parameters(aws, R2Threshold=threshold)


RUN = [
    {"StepName": "Evaluate", "StepStatus": "Succeeded", "Metadata": {"ProcessingJob": {"Arn": EVALUATE_JOB}}},
    {"StepName": "CheckR2", "StepStatus": "Succeeded", "Metadata": {"Condition": {"Outcome": "True"}}},
]


def test_steps_with_a_status_added_later_or_missing_members_are_listed(aws: Stubbed) -> None:
    _steps(aws, [{"StepName": "Preprocess", "StepStatus": "Paused"}, {"StepName": "Train"}, {"StepStatus": "Failed"}])
    steps = aws.backend.list_steps(EXECUTION)
    assert [(s.name, str(s.status), s.status.is_active) for s in steps] == [
        ("Preprocess", "Paused", False),
        ("Train", "Unknown", False),
    ]


@pytest.mark.parametrize(
    ("document", "detail"),
    [
        (
            '{"regression_metrics": {"r2_score": "high"}}',
            "evaluation.json has no number at regression_metrics.r2_score",
        ),
        ('{"regression_metrics": {"r2_score": ' + "9" * 400 + "}}", "evaluation.json has no number at"),
        ('{"regression_metrics": []}', "evaluation.json has no number at"),
        ("[1, 2]", "evaluation.json unread"),
        ("[" * 50_000, "evaluation.json unread"),
        (b"\xff\xfe not utf-8", "evaluation.json unread"),
        ("{" + '"pad": "' + "x" * 2_000_000 + '"}', "evaluation.json unread"),
    ],
    ids=["r2 text", "r2 too big", "metrics a list", "a list", "deep nesting", "not utf-8", "2 MB"],
)
def test_a_malformed_evaluation_json_leaves_the_gate_without_numbers(
    aws: Stubbed, document: str | bytes, detail: str
) -> None:
    _steps(aws, RUN)
    _evaluation(aws, document)
    [_, check] = aws.backend.list_steps(EXECUTION)
    assert check.gate is not None and check.gate.passed
    assert check.gate.summary.startswith(detail)


def test_an_r2_threshold_that_is_no_number_is_said_so(aws: Stubbed) -> None:
    _steps(aws, RUN)
    _evaluation(aws, '{"regression_metrics": {"r2_score": 0.6433}}', threshold="abc")
    [_, check] = aws.backend.list_steps(EXECUTION)
    assert check.gate is not None and check.gate.summary == "r2 0.6433, R2Threshold unreadable -> registered"


def test_log_events_without_a_message_and_pages_without_events_are_read(aws: Stubbed) -> None:
    preprocess = {"ProcessingJob": {"Arn": EVALUATE_JOB.replace("evaluate", "preprocess")}}
    _steps(aws, [{"StepName": "Preprocess", "StepStatus": "Executing", "Metadata": preprocess}])
    aws.logs.add_response("filter_log_events", {"events": [{"timestamp": 1}, {"message": "read 20640 rows"}]})
    chunk = aws.backend.read_step_log(EXECUTION, "Preprocess")
    assert chunk.text == "\nread 20640 rows\n" and chunk.cursor == 2


def test_a_test_split_of_garbage_is_one_sentence(aws: Stubbed) -> None:
    preprocess = EVALUATE_JOB.replace("evaluate", "preprocess")
    _steps(
        aws, [{"StepName": "Preprocess", "StepStatus": "Succeeded", "Metadata": {"ProcessingJob": {"Arn": preprocess}}}]
    )
    output = {"OutputName": "test", "S3Output": {"S3Uri": f"s3://{BUCKET}/test", "S3UploadMode": "EndOfJob"}}
    aws.sagemaker.add_response(
        "describe_processing_job",
        {
            "ProcessingJobName": "p",
            "ProcessingResources": {
                "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30}
            },
            "AppSpecification": {"ImageUri": "sklearn"},
            "ProcessingJobArn": preprocess,
            "ProcessingJobStatus": "Completed",
            "CreationTime": NOW,
            "ProcessingOutputConfig": {"Outputs": [output]},
        },
    )
    aws.s3.add_response("get_object", {"Body": body(HTML_PAGE)})
    with pytest.raises(UserError) as caught:
        aws.backend.test_rows(EXECUTION, 5)
    assert str(caught.value) == (
        "the test split has a row that is not 9 numbers (a line of markup); start a new run to write it again"
    )


# ---- registry, endpoints, account ----------------------------------------------------------------------


def _package(**members: Any) -> dict[str, Any]:
    return {
        "ModelPackageName": "californiahousing",
        "ModelPackageArn": PACKAGE,
        "CreationTime": NOW,
        "ModelPackageStatus": "Completed",
        "ModelPackageStatusDetails": {"ValidationStatuses": []},
        **members,
    }


def test_a_version_without_approval_or_number_and_with_odd_metrics_is_read(aws: Stubbed) -> None:
    metrics = {"ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": f"s3://{BUCKET}/m.json"}}}
    arn = PACKAGE.replace("/3", "/latest")
    summary = {"ModelPackageArn": arn, "CreationTime": NOW, "ModelPackageStatus": "Completed"}
    aws.sagemaker.add_response("list_model_packages", {"ModelPackageSummaryList": [summary]})
    aws.sagemaker.add_response("describe_model_package", _package(ModelPackageArn=arn, ModelMetrics=metrics))
    aws.s3.add_response("get_object", {"Body": body('{"regression_metrics": {"r2_score": {}, "mse": []}}')})
    [version] = aws.backend.list_versions()
    assert (version.arn, version.version, str(version.approval_status)) == (arn, 0, "Unknown")
    assert version.metrics is None and version.unavailable is None


def test_an_endpoint_in_a_status_added_later_without_a_config_is_listed(aws: Stubbed) -> None:
    aws.sagemaker.add_response(
        "describe_endpoint",
        {
            "EndpointName": "ep",
            "EndpointArn": f"arn:aws:sagemaker:{REGION}:123456789012:endpoint/ep",
            "EndpointStatus": "Quiescing",
            "CreationTime": NOW,
            "LastModifiedTime": NOW,
            "FailureReason": "line one\n<b>line two</b>",
        },
    )
    endpoint = aws.backend.get_endpoint("ep")
    assert (str(endpoint.status), endpoint.model_package_arn, endpoint.memory_mb) == ("Quiescing", "", 0)


def test_an_account_sts_does_not_name_is_a_sentence(tmp_path: Path, aws: Stubbed) -> None:
    settings = SageMakerSettings(region=REGION, role_arn=ROLE)
    backend = SageMakerBackend(settings, tmp_path, clients=aws.clients)
    aws.sts.add_response("get_caller_identity", {"UserId": "x"})
    with pytest.raises(UserError, match=r"^STS did not say which AWS account"):
        backend.bucket  # noqa: B018
