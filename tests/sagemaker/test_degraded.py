"""One failing detail call degrades its row, never the listing; an answer that is not numbers is a sentence.

On moto's server, as the user would meet them: moto lacks ListPipelineExecutionSteps and answers it with a
500 HTML page, which is what a proxy or an outage looks like too.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core import spec
from core.sagemaker.aws import make_clients, make_session
from tests.aws import BUCKET, REGION, ROLE, moto_sagemaker, queue_endpoint_answer
from tui.cli import main

BASE = ["--backend", "sagemaker", "--role-arn", ROLE, "--bucket", BUCKET]


@pytest.fixture
def one_attempt(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's clients try once, as a user's AWS_MAX_ATTEMPTS says: moto's 500 would otherwise be retried
    with back-off for a minute."""
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")


def _execution() -> str:
    sm = make_clients(make_session(REGION)).sagemaker
    definition = {
        "Version": "2020-12-01",
        "Parameters": [{"Name": "R2Threshold", "Type": "Float", "DefaultValue": 0.6}],
    }
    sm.create_pipeline(PipelineName=spec.PIPELINE_NAME, PipelineDefinition=json.dumps(definition), RoleArn=ROLE)
    return sm.start_pipeline_execution(PipelineName=spec.PIPELINE_NAME)["PipelineExecutionArn"]


def test_executions_lists_a_run_whose_steps_moto_cannotqueue_endpoint_answer(
    aws: str, one_attempt: None, capsys, tmp_path: Path
) -> None:
    arn = _execution()
    code = main([*BASE, "--home", str(tmp_path), "executions"])
    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    [row] = [line for line in out.splitlines() if arn.rsplit("/", 1)[-1] in line]
    assert row.split()[1] == "Succeeded" and row.rstrip().endswith("unavailable (HTTP 500)")
    assert "<" not in out


def test_steps_of_that_run_are_one_line_of_status(aws: str, one_attempt: None, capsys, tmp_path: Path) -> None:
    arn = _execution()
    assert main([*BASE, "--home", str(tmp_path), "steps", arn]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "housing-tui: error: sagemaker:ListPipelineExecutionSteps failed with HTTP 500: Internal Server Error"
    )
    assert err.count("\n") == 1 and "<" not in err and len(err) < 320


def _endpoint(name: str) -> None:
    sm = make_clients(make_session(REGION)).sagemaker
    sm.create_model(ModelName="m", PrimaryContainer={"Image": "sklearn"}, ExecutionRoleArn=ROLE)
    variant = {
        "VariantName": "AllTraffic",
        "ModelName": "m",
        "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5},
    }
    sm.create_endpoint_config(EndpointConfigName="c", ProductionVariants=[variant])
    sm.create_endpoint(EndpointName=name, EndpointConfigName="c")


@pytest.mark.parametrize(
    ("answer", "quoted", "as_json"),
    [
        ("<html><body><h1>502 Bad Gateway</h1></body></html>", "'502 Bad Gateway'", False),
        ("<html><body><h1>502 Bad Gateway</h1></body></html>", "'502 Bad Gateway'", True),
        ("predicted: high\n", "'predicted: high'", True),
        ("", "''", False),
    ],
    ids=["html", "html-json", "words-json", "empty"],
)
def test_invoke_says_an_answer_that_is_not_numbers_in_one_sentence(
    aws: str, capsys, tmp_path: Path, as_json: bool, answer: str, quoted: str
) -> None:
    _endpoint("ep")
    queue_endpoint_answer(answer)
    rows = tmp_path / "rows.csv"
    rows.write_text("8.3252,41.0,6.98,1.02,322.0,2.55,37.88,-122.23\n")
    code = main([*BASE, "--home", str(tmp_path), "invoke", "ep", "--file", str(rows), *(["--json"] if as_json else [])])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err == (
        f"housing-tui: error: endpoint ep answered something that is not one number per line: {quoted}; "
        "check which model it serves with `housing-tui endpoints`\n"
    )


def refuse_describing(monkeypatch: pytest.MonkeyPatch, arn: str) -> None:
    """moto answers DescribeModelPackage for `arn` as SageMaker answers a role without the permission."""
    from moto.sagemaker.exceptions import SagemakerClientError

    class AccessDenied(SagemakerClientError):
        code = "AccessDeniedException"

    backend = type(moto_sagemaker())
    described = backend.describe_model_package

    def refuse(self, model_package_name: str):
        if model_package_name == arn:
            raise AccessDenied("not authorized to perform sagemaker:DescribeModelPackage")
        return described(self, model_package_name)

    monkeypatch.setattr(backend, "describe_model_package", refuse)


# moto warns that SageMaker's model has no AccessDeniedException shape (AWS answers it for every service).
@pytest.mark.filterwarnings("ignore:Exception\\(AccessDenied\\)")
def test_a_version_that_cannot_be_described_is_listed_from_the_listing(
    sagemaker_backend, simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.sagemaker.test_backend import _package

    first, second = _package(sagemaker_backend.clients, "Approved"), _package(sagemaker_backend.clients, "Rejected")
    refuse_describing(monkeypatch, second)
    versions = {v.arn: v for v in sagemaker_backend.list_versions()}
    assert list(versions) == [second, first]  # newest first, both listed
    assert versions[first].unavailable is None and versions[first].model_data_url
    assert str(versions[second].approval_status) == "Rejected" and versions[second].version == 2
    assert versions[second].unavailable == "details unavailable: AccessDeniedException, retrying"
    monkeypatch.undo()  # the next listing describes it again
    assert all(v.unavailable is None for v in sagemaker_backend.list_versions())
