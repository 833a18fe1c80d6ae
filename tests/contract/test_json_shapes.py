"""Every `--json` output, on both backends, is the output shape of the AWS operation it names.

The reference is botocore's service model, the same one the AWS CLI prints from: members that are not in
the shape may appear only under models.OURS; required members are there; enums, numbers and timestamps
are of the kinds the shape allows.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.models import OURS
from tests.contract.test_contract import BODY, harness  # noqa: F401  (the fixture, for both backends)
from tests.output_shapes import output_shape, shape_problems
from tui import cli


def run_json(capsys, backend, *argv: str) -> object:
    """A command's --json output, through the CLI's own parser and handler, on the harness's backend."""
    args = cli.build_parser().parse_args([*argv, "--json"])
    handlers = {
        "executions": cli.cmd_executions,
        "steps": cli.cmd_steps,
        "stop": cli.cmd_stop,
        "versions": cli.cmd_versions,
        "approve": cli.cmd_approval,
        "reject": cli.cmd_approval,
        "deploy": cli.cmd_deploy,
        "endpoints": cli.cmd_endpoints,
        "invoke": cli.cmd_invoke,
        "delete-endpoint": cli.cmd_delete_endpoint,
    }
    capsys.readouterr()
    assert handlers[argv[0]](backend, args) == 0
    return json.loads(capsys.readouterr().out)


def assert_shaped(command: str, output: object) -> None:
    problems = shape_problems(output, output_shape(*cli.JSON_OPERATIONS[command]))
    assert problems == [], f"{command} --json is not {cli.JSON_OPERATIONS[command][1]}'s output: {problems}"


def test_every_json_output_has_its_operations_shape(harness, capsys, tmp_path: Path) -> None:  # noqa: F811
    backend = harness.backend
    execution = harness.run(r2_threshold=0.5)
    described = cli.describe_execution(backend, execution)
    assert_shaped("run --wait", described)
    assert [s["StepName"] for s in described[OURS]["PipelineExecutionSteps"]][-1] == "Register"

    listed = run_json(capsys, backend, "executions")
    assert_shaped("executions", listed)
    [summary] = listed["PipelineExecutionSummaries"]
    assert summary["StartTime"] == described["CreationTime"]  # jq written for the AWS CLI reads StartTime

    steps = run_json(capsys, backend, "steps", execution.arn)
    assert_shaped("steps", steps)
    [gate] = [s for s in steps["PipelineExecutionSteps"] if s["StepName"] == "CheckR2"]
    assert gate["Metadata"] == {"Condition": {"Outcome": "True"}}
    assert gate[OURS]["GateDetails"]["Conditions"][0]["RightValue"] == 0.5

    versions = run_json(capsys, backend, "versions")
    assert_shaped("versions", versions)
    [version] = versions["ModelPackageSummaryList"]
    assert version[OURS]["EvaluationReport"]["regression_metrics"]["r2_score"] == pytest.approx(0.643281, abs=1e-6)
    arn = version["ModelPackageArn"]

    approved = run_json(capsys, backend, "approve", arn, "--description", "checked")
    assert_shaped("approve", approved)
    assert approved == {"ModelPackageArn": arn}

    deployed = run_json(capsys, backend, "deploy", arn, "--endpoint", "shapes", "--wait")
    assert_shaped("deploy", deployed)
    assert deployed["EndpointStatus"] == "InService" and deployed[OURS]["ModelPackageArn"] == arn

    endpoints = run_json(capsys, backend, "endpoints")
    assert_shaped("endpoints", endpoints)
    assert [e["EndpointName"] for e in endpoints["Endpoints"]] == ["shapes"]

    rows = tmp_path / "rows.csv"
    rows.write_bytes(BODY)
    harness.expect_invocation(arn, BODY)
    answer = run_json(capsys, backend, "invoke", "shapes", "--file", str(rows))
    assert_shaped("invoke", answer)
    assert len(answer[OURS]["Predictions"]) == 10

    deleted = run_json(capsys, backend, "delete-endpoint", "shapes")
    assert_shaped("delete-endpoint", deleted)

    running = harness.running()
    stopped = run_json(capsys, backend, "stop", running.arn)
    assert_shaped("stop", stopped)
    assert stopped == {"PipelineExecutionArn": running.arn}


def test_the_checker_finds_what_the_aws_cli_could_not_print() -> None:
    shape = output_shape("sagemaker", "ListPipelineExecutions")
    good = {"PipelineExecutionSummaries": [{"PipelineExecutionArn": "a", "StartTime": "2026-11-27T12:00:00+00:00"}]}
    assert shape_problems(good, shape) == []
    bad = {"PipelineExecutionSummaries": [{"CreationTime": "x", "PipelineExecutionStatus": "Running"}]}
    problems = shape_problems(bad, shape)
    assert problems[0] == "$.PipelineExecutionSummaries[0].CreationTime: not a member of PipelineExecutionSummary"
    assert problems[1].startswith(
        "$.PipelineExecutionSummaries[0].PipelineExecutionStatus: 'Running' is not a string (one of ['Executing'"
    )
    assert len(problems) == 2
    endpoint = output_shape("sagemaker", "ListEndpoints")
    assert shape_problems({"Endpoints": [{"EndpointName": "e"}]}, endpoint) == [
        f"$.Endpoints[0].{name}: required by EndpointSummary, missing"
        for name in ("EndpointArn", "CreationTime", "LastModifiedTime", "EndpointStatus")
    ]
    assert shape_problems({OURS: {}, "Extra": 1}, output_shape("sagemaker", "DeleteEndpoint")) == [
        "$: ['Extra'] where the operation has no output"
    ]


def test_a_prediction_that_is_not_a_number_is_null_in_json(capsys, tmp_path: Path) -> None:
    from core.models import Invocation

    class Answering:
        def invoke_endpoint(self, name: str, body: bytes, content_type: str = "text/csv", timeout=None):
            return Invocation(body=b"nan\n1.5\ninf\n", content_type="text/csv", latency_ms=1.0, endpoint=name)

    rows = tmp_path / "rows.csv"
    rows.write_bytes(BODY)
    args = cli.build_parser().parse_args(["invoke", "ep", "--file", str(rows), "--json"])
    assert cli.cmd_invoke(Answering(), args) == 0
    out = capsys.readouterr().out
    assert "NaN" not in out and "Infinity" not in out  # jq refuses both
    assert json.loads(out)[OURS]["Predictions"] == [None, 1.5, None]
