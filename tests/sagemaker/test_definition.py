"""The pipeline definition the SageMaker backend upserts, built by the SDK against moto."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from typing import Any

import pytest

from core import sklearn_image, spec
from core.inputs import BUNDLED_DATA
from core.sagemaker.aws import make_clients, make_session
from core.sagemaker.backend import SageMakerBackend
from core.sagemaker.config import SageMakerSettings
from core.sagemaker.steps import display_names
from tests.aws import BUCKET, REGION, ROLE, SCRIPTS, condition_parameters


@pytest.fixture(scope="module")
def built(moto_server: str, tmp_path_factory: pytest.TempPathFactory):
    """Build both definitions once for the module (the SDK takes seconds), with the S3 client to read back."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ENDPOINT_URL", moto_server)
        clients = make_clients(make_session(REGION))
        clients.s3.create_bucket(Bucket=BUCKET)
        backend = SageMakerBackend(
            SageMakerSettings(region=REGION, role_arn=ROLE, bucket=BUCKET), tmp_path_factory.mktemp("c"), clients
        )
        plain = json.loads(backend.pipeline_definition(champion_gate=False))
        champion = json.loads(backend.pipeline_definition(champion_gate=True))
        yield plain, champion, clients.s3


@pytest.fixture
def definition(built) -> dict[str, Any]:
    return built[0]


def steps_by_name(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = {s["Name"]: s for s in definition["Steps"]}
    for step in definition["Steps"]:
        for branch in step.get("Arguments", {}).get("IfSteps", []):
            found[branch["Name"]] = branch
    return found


def test_steps_and_parameters_follow_the_spec(definition: dict[str, Any]) -> None:
    assert [s["Name"] for s in definition["Steps"]] == ["Preprocess", "Train", "Evaluate", "CheckR2"]
    parameters = {p["Name"]: p for p in definition["Parameters"]}
    assert list(parameters) == [p.name for p in spec.PARAMETERS]
    assert parameters["R2Threshold"] == {"Name": "R2Threshold", "Type": "Float", "DefaultValue": 0.6}
    assert parameters["TestSize"]["DefaultValue"] == 0.2 and parameters["SplitSeed"]["DefaultValue"] == 42
    assert parameters["SplitSeed"]["Type"] == "Integer" and parameters["InputData"]["Type"] == "String"
    assert parameters["ModelApprovalStatus"]["DefaultValue"] == "PendingManualApproval"


def test_input_data_defaults_to_the_bundled_data_under_the_prefix(definition: dict[str, Any]) -> None:
    # A run started without our client (Studio, the AWS CLI, a schedule) gets an input that exists.
    digest = hashlib.sha256(BUNDLED_DATA.read_bytes()).hexdigest()
    [input_data] = [p for p in definition["Parameters"] if p["Name"] == "InputData"]
    assert input_data["DefaultValue"] == f"s3://{BUCKET}/housing-tui/input/{digest[:16]}/{BUNDLED_DATA.name}"


def test_every_compiled_step_folds_into_a_step_users_see(built) -> None:
    for definition in built[:2]:
        compiled = steps_by_name(definition)
        folded = display_names(definition)
        # Every step SageMaker will report is placed, and each of the five has a compiled step behind it.
        assert set(folded) == set(compiled)
        assert set(folded.values()) == set(spec.STEP_NAMES)
        branch = [s["Name"] for s in compiled["CheckR2"]["Arguments"]["IfSteps"]]
        assert {folded[name] for name in branch} == {"Register"}
        # The repack is a Training step the SDK names itself: it must fold into Register too.
        assert [compiled[name]["Type"] for name in branch] == ["Training", "RegisterModel"]


def test_checkr2_reads_the_evaluation_report_and_compares_with_the_threshold(definition: dict[str, Any]) -> None:
    steps = steps_by_name(definition)
    [report] = steps["Evaluate"]["PropertyFiles"]
    assert report == {"PropertyFileName": "EvaluationReport", "OutputName": "evaluation", "FilePath": "evaluation.json"}
    [condition] = steps["CheckR2"]["Arguments"]["Conditions"]
    assert condition["Type"] == "GreaterThanOrEqualTo"
    assert condition["LeftValue"] == {
        "Std:JsonGet": {
            "PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.EvaluationReport"},
            "Path": "regression_metrics.r2_score",
        }
    }
    assert condition["RightValue"] == {"Get": "Parameters.R2Threshold"}
    assert [s["Name"] for s in steps["CheckR2"]["Arguments"]["IfSteps"]][-1] == "Register-RegisterModel"
    assert steps["CheckR2"]["Arguments"]["ElseSteps"] == []


def test_the_champion_condition_is_added_only_when_asked(built) -> None:
    plain, with_champion, _ = built
    assert condition_parameters(plain) == ["R2Threshold"]
    assert condition_parameters(with_champion) == ["R2Threshold", "ChampionR2Floor"]


def test_register_model_has_csv_types_the_approval_parameter_and_the_metrics(definition: dict[str, Any]) -> None:
    register = steps_by_name(definition)["Register-RegisterModel"]["Arguments"]
    assert register["ModelPackageGroupName"] == "CaliforniaHousing"
    assert register["ModelApprovalStatus"] == {"Get": "Parameters.ModelApprovalStatus"}
    inference = register["InferenceSpecification"]
    assert inference["SupportedContentTypes"] == ["text/csv"]
    assert inference["SupportedResponseMIMETypes"] == ["text/csv"]
    statistics = register["ModelMetrics"]["ModelQuality"]["Statistics"]
    assert statistics["ContentType"] == "application/json"
    assert statistics["S3Uri"]["Std:Join"]["Values"][-1] == "evaluation.json"
    assert "Steps.Evaluate.ProcessingOutputConfig.Outputs['evaluation']" in json.dumps(statistics)


def test_the_uploaded_scripts_are_this_repositorys(definition: dict[str, Any], built) -> None:
    s3 = built[2]
    steps = steps_by_name(definition)

    def fetch(uri: str) -> bytes:
        bucket, key = uri[5:].split("/", 1)
        assert bucket == BUCKET
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    for step, script in (("Preprocess", "preprocessing.py"), ("Evaluate", "evaluation.py")):
        [code] = [i for i in steps[step]["Arguments"]["ProcessingInputs"] if i["InputName"] == "code"]
        assert fetch(code["S3Input"]["S3Uri"]) == (SCRIPTS / script).read_bytes()
    train = steps["Train"]["Arguments"]["HyperParameters"]
    assert json.loads(train["sagemaker_program"]) == "training.py"
    with tarfile.open(fileobj=io.BytesIO(fetch(json.loads(train["sagemaker_submit_directory"])))) as tar:
        assert tar.extractfile("training.py").read() == (SCRIPTS / "training.py").read_bytes()


def test_the_preprocess_step_passes_the_split_parameters(definition: dict[str, Any]) -> None:
    arguments = json.dumps(
        steps_by_name(definition)["Preprocess"]["Arguments"]["AppSpecification"]["ContainerArguments"]
    )
    assert "Parameters.TestSize" in arguments and "Parameters.SplitSeed" in arguments


def test_the_registered_model_runs_the_entry_point_and_answers_csv_by_default(definition: dict[str, Any]) -> None:
    # The serving container imports entry_point.py (repacked into the model) and, for a caller that sends no
    # Accept, answers in the model's default type: the same setting the local endpoint reads.
    register = steps_by_name(definition)["Register-RegisterModel"]["Arguments"]
    [container] = register["InferenceSpecification"]["Containers"]
    assert container["Environment"]["SAGEMAKER_PROGRAM"] == spec.ENTRY_POINT_FILE
    assert (
        container["Environment"]["SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"]
        == spec.DEFAULT_INVOCATIONS_ACCEPT
        == "text/csv"
    )
    assert container["Image"].endswith(f"/sagemaker-scikit-learn:{sklearn_image.FRAMEWORK_VERSION}-cpu-py3")
