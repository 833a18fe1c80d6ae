"""The headless commands, as a user or a script (jq) uses them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tui.cli import main


@pytest.fixture
def cli(home: Path, capsys: pytest.CaptureFixture[str]):
    """Run `housing-tui --home HOME ...` in-process; returns (exit code, stdout, stderr)."""

    def invoke(*args: str) -> tuple[int, str, str]:
        try:
            code = main(["--home", str(home), *args])
        except SystemExit as exit_:  # argparse errors
            code = exit_.code
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


def test_run_wait_json_is_describe_pipeline_execution_shaped(cli) -> None:
    code, out, _ = cli("run", "--threshold", "0.55", "--wait", "--json")
    assert code == 0
    result = json.loads(out)
    assert result["PipelineExecutionStatus"] == "Succeeded"
    assert result["PipelineExecutionArn"].startswith(
        "arn:aws:sagemaker:local:000000000000:pipeline/californiahousingpipeline/execution/"
    )
    parameters = {p["Name"]: p["Value"] for p in result["HousingTui"]["PipelineParameters"]}
    assert parameters["R2Threshold"] == "0.55" and parameters["TestSize"] == "0.2"
    steps = {s["StepName"]: s for s in result["HousingTui"]["PipelineExecutionSteps"]}
    assert steps["CheckR2"]["Metadata"]["Condition"]["Outcome"] == "True"
    registered = steps["Register"]["Metadata"]["RegisterModel"]["Arn"]
    assert registered == "arn:aws:sagemaker:local:000000000000:model-package/californiahousing/1"
    assert all({"StepName", "StepStatus", "StartTime", "EndTime"} <= set(s) for s in steps.values())

    code, out, _ = cli("executions", "--json")
    [summary] = json.loads(out)["PipelineExecutionSummaries"]
    assert summary["PipelineExecutionArn"] == result["PipelineExecutionArn"]
    assert {"PipelineExecutionStatus", "StartTime"} <= set(summary) and summary["StartTime"] == result["CreationTime"]

    code, out, _ = cli("versions", "--json")
    [version] = json.loads(out)["ModelPackageSummaryList"]
    assert version["ModelPackageArn"] == registered
    assert version["ModelApprovalStatus"] == "PendingManualApproval"
    assert version["ModelPackageVersion"] == 1 and version["ModelPackageGroupName"] == "CaliforniaHousing"
    assert version["HousingTui"]["EvaluationReport"]["regression_metrics"]["r2_score"] == pytest.approx(
        0.643281, abs=1e-6
    )

    code, out, _ = cli("approve", registered, "--description", "r2 0.6433 on the benchmark split", "--json")
    assert code == 0 and json.loads(out) == {"ModelPackageArn": registered}
    code, out, _ = cli("versions", "--status", "Approved", "--json")
    [approved] = json.loads(out)["ModelPackageSummaryList"]
    assert approved["HousingTui"]["ApprovalDescription"] == "r2 0.6433 on the benchmark split"
    code, out, _ = cli("reject", "1", "--description", "superseded")
    assert code == 0 and out.strip() == f"{registered}: Rejected"
    code, out, _ = cli("versions", "--status", "Approved", "--json")
    assert json.loads(out)["ModelPackageSummaryList"] == []


def test_run_at_the_default_threshold_registers_the_lessons_model(cli) -> None:
    # The lesson's cleaning (learned on the training split) scores 0.6433 on the default split: it passes.
    code, out, _ = cli("run", "--wait")
    assert code == 0
    assert out.strip().splitlines()[-2] == "Succeeded: r2 0.6433 >= threshold 0.6000 -> registered"
    code, out, _ = cli("versions")
    assert out.splitlines()[1].split()[:3] == ["1", "PendingManualApproval", "0.6433"]


def test_a_run_below_its_threshold_registers_nothing_and_says_why(cli) -> None:
    code, out, _ = cli("run", "--threshold", "0.65", "--wait")
    assert code == 0
    assert out.strip().splitlines()[-1] == "Succeeded: r2 0.6433 < threshold 0.6500 -> not registered"
    code, out, _ = cli("executions")
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "STATUS", "STARTED", "DURATION", "THRESHOLD", "R2", "GATE"]
    assert lines[1].split()[1] == "Succeeded" and lines[1].endswith("0.6433  not registered")
    execution_id = lines[1].split()[0]
    code, out, _ = cli("steps", execution_id)
    assert code == 0
    rows = {line.split()[0]: line for line in out.splitlines()[2:]}
    assert "Succeeded" in rows["CheckR2"] and "r2 0.6433 < threshold 0.6500" in rows["CheckR2"]
    assert "skipped: gate not passed" in rows["Register"]
    code, out, _ = cli("steps", execution_id, "--json")
    names = [s["StepName"] for s in json.loads(out)["PipelineExecutionSteps"]]
    assert names == ["Preprocess", "Train", "Evaluate", "CheckR2"]
    code, out, _ = cli("logs", execution_id, "--step", "Preprocess")
    assert "wrote 16512 training rows" in out
    code, out, _ = cli("versions")
    assert code == 0 and "no versions registered yet" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--threshold", "nan"], "'nan' is not a finite number"),
        (["--threshold", "abc"], "'abc' is not a number"),
        (["--threshold", "1.5"], "threshold 1.5 can never pass: r2 is at most 1.0"),
        (["--test-size", "1"], "test size 1.0 is outside (0, 1)"),
        (["--test-size", "0"], "test size 0.0 is outside (0, 1)"),
        (["--approval-status", "Yes"], "approval status 'Yes' is not one of"),
        (["--input", "/no/such/file.csv"], "input file /no/such/file.csv does not exist"),
    ],
)
def test_bad_run_input_is_refused_before_anything_starts(cli, args: list[str], message: str) -> None:
    code, _out, err = cli("run", "--wait", *args)
    assert code == 2
    assert message in err
    assert cli("executions", "--json")[1].strip() == '{\n  "PipelineExecutionSummaries": []\n}'


def test_an_input_missing_columns_is_refused_at_the_cli(cli, tmp_path: Path) -> None:
    source = tmp_path / "x.csv"
    source.write_text("MedInc,HouseAge\n1,2\n")
    code, _, err = cli("run", "--input", str(source))
    assert code == 2 and "is missing column(s) AveRooms, AveBedrms" in err
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    code, _, err = cli("run", "--input", str(empty))
    assert code == 2 and "is empty" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["approve", "arn:aws:sagemaker:local:000000000000:model-package/californiahousing/9"], "no model package"),
        (["approve", "arn:aws:sagemaker:local:000000000000:model-package/other/1"], "belongs to group 'other'"),
        (["reject", "not-an-arn"], "neither a model package ARN nor a version number"),
        (["approve", "3"], "no version 3 in the group"),
        (["steps", "arn:aws:sagemaker:local:000000000000:pipeline/p/execution/abc"], "no execution"),
        (["steps", "feedfacecafe"], "no execution with ID 'feedfacecafe'"),
        (["steps", "arn:aws:sagemaker:local:nope"], "is not a pipeline execution ARN"),
        (["--group", "bad_group", "versions"], "breaks SageMaker's name rule"),
    ],
)
def test_unknown_or_malformed_references_are_one_sentence_errors(cli, args: list[str], message: str) -> None:
    code, out, err = cli(*args)
    assert code == 2 and out == ""
    assert err.startswith("housing-tui: error: ") and message in err and len(err.strip().splitlines()) == 1


def test_the_console_script_uses_housing_tui_home(tmp_path: Path) -> None:
    script = shutil.which("housing-tui", path=str(Path(os.sys.executable).parent))
    assert script is not None
    env = {**os.environ, "HOUSING_TUI_HOME": str(tmp_path / "from-env")}
    result = subprocess.run([script, "versions", "--json"], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0 and json.loads(result.stdout) == {"ModelPackageSummaryList": []}
    assert (tmp_path / "from-env" / "state.db").exists()


def test_the_config_file_sets_the_default_threshold(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from core import settings

    config = tmp_path / "config.toml"
    config.write_text('threshold = 0.55\ngroup = "Housing-Test"\n\n[sagemaker]\nregion = "eu-west-1"\n')
    loaded = settings.load(config, environ={"HOUSING_TUI_GROUP": "FromEnv"})
    assert loaded.threshold == 0.55 and loaded.group == "FromEnv"
    config.write_text("threshold = 2.0\n")
    with pytest.raises(settings.UserError, match="can never pass"):
        settings.load(config, environ={})
    config.write_text("colour = 'red'\n")
    with pytest.raises(settings.UserError, match="unknown setting 'colour'"):
        settings.load(config, environ={})


def test_a_home_that_is_not_a_folder_is_one_sentence(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    assert main(["--home", str(not_a_folder / "home"), "versions"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("housing-tui: error: cannot use") and str(not_a_folder) in err
    assert len(err.strip().splitlines()) == 1


def test_doctor_reports_a_bad_sagemaker_config_as_a_failed_check(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # nothing listens at the tests' AWS_ENDPOINT_URL: fail at once
    assert main(["--backend", "sagemaker", "--role-arn", "nope", "doctor", "--json"]) == 1
    checks = {c["Name"]: c for c in json.loads(capsys.readouterr().out)["Checks"]}
    assert checks["config"]["Status"] == "fail"
    assert checks["config"]["Detail"] == "role 'nope' is not an IAM role ARN; expected arn:aws:iam::ACCOUNT:role/NAME"
    # The other checks still run: the role one says what it lacks, the image one needs only the region.
    assert (checks["role"]["Status"], checks["image"]["Status"]) == ("skip", "ok")
    assert checks["credentials"]["Status"] == "fail" and "cannot reach sts" in checks["credentials"]["Detail"]


def test_doctor_on_the_local_backend(cli) -> None:
    code, out, _ = cli("doctor")
    lines = out.splitlines()
    assert code == 0 and [line.split()[0] for line in lines] == ["OK", "OK", "OK", "OK"]
    assert "database" in lines[1] and "passes SQLite's quick_check" in lines[1]
    assert "bundled data" in lines[2] and "dd226f82db62" in lines[2]
