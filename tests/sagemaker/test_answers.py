"""What the fuzzing of tests/sagemaker/test_fuzz_answers.py found, one answer each, through botocore's Stubber."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from core.errors import UserError
from core.sagemaker.aws import Clients, aws_errors, make_clients, make_session
from core.sagemaker.backend import SageMakerBackend
from core.sagemaker.config import SageMakerSettings
from tests.aws import BUCKET, REGION, ROLE
from tests.sagemaker.shapes import LONG_TEXT

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
