"""The pipeline description: parameters, validation and the CheckR2 gate."""

from __future__ import annotations

import math

import pytest

from core import spec
from core.models import ApprovalStatus


def report(r2: float) -> dict:
    return {"regression_metrics": {"r2_score": r2, "mse": 0.5, "rmse": 0.7, "mae": 0.5}, "n_train": 8, "n_test": 2}


def test_steps_and_parameters_use_the_sagemaker_names() -> None:
    assert spec.STEP_NAMES == ("Preprocess", "Train", "Evaluate", "CheckR2", "Register")
    assert spec.PARAMETER_DEFAULTS["R2Threshold"] == 0.6
    assert spec.PARAMETER_DEFAULTS["TestSize"] == 0.2
    assert spec.PARAMETER_DEFAULTS["SplitSeed"] == 42
    assert spec.PARAMETER_DEFAULTS["ModelApprovalStatus"] == "PendingManualApproval"
    assert set(spec.RunParameters().as_pipeline_parameters()) == {p.name for p in spec.PARAMETERS}


def test_the_gate_passes_at_the_threshold_and_fails_below() -> None:
    params = spec.RunParameters(r2_threshold=0.6)
    assert spec.evaluate_gate(report(0.6), params).passed
    outcome = spec.evaluate_gate(report(0.5758), params)  # the raw features' r2, without the lesson's cleaning
    assert not outcome.passed
    assert outcome.summary == "r2 0.5758 < threshold 0.6000 -> not registered"


def test_a_nan_r2_never_passes() -> None:
    assert not spec.evaluate_gate(report(math.nan), spec.RunParameters(r2_threshold=-1.0)).passed


def test_the_champion_gate_needs_the_improvement() -> None:
    params = spec.RunParameters(r2_threshold=0.5, min_improvement=0.01, champion=spec.Champion(3, 0.60))
    blocked = spec.evaluate_gate(report(0.605), params)
    assert not blocked.passed
    assert "r2 0.6050 < champion v3 0.6000 + 0.0100 = 0.6100" in blocked.summary
    assert spec.evaluate_gate(report(0.6100001), params).passed
    assert params.as_pipeline_parameters()["ChampionR2Floor"] == repr(0.60 + 0.01)


def test_without_an_approved_champion_the_champion_gate_lets_passing_runs_through() -> None:
    params = spec.RunParameters(r2_threshold=0.5, min_improvement=0.2)
    outcome = spec.evaluate_gate(report(0.55), params)
    assert outcome.passed and "no Approved champion" in outcome.summary
    assert params.as_pipeline_parameters()["ChampionR2Floor"] == repr(spec.NO_CHAMPION_FLOOR)


def test_the_champion_gate_is_off_by_default() -> None:
    params = spec.RunParameters(r2_threshold=0.5, champion=spec.Champion(1, 0.9))
    assert spec.evaluate_gate(report(0.55), params).passed


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"r2_threshold": math.nan}, "not a finite number"),
        ({"r2_threshold": math.inf}, "not a finite number"),
        ({"r2_threshold": 1.2}, "can never pass"),
        ({"test_size": 0.0}, "outside (0, 1)"),
        ({"test_size": 1.0}, "outside (0, 1)"),
        ({"split_seed": -1}, "split seed"),
        ({"min_improvement": math.nan}, "min improvement"),
    ],
)
def test_impossible_parameters_are_refused_with_a_sentence(kwargs: dict, message: str) -> None:
    with pytest.raises(spec.InvalidParameter, match=message.replace("(", r"\(").replace(")", r"\)")):
        spec.RunParameters(**kwargs)


def test_approval_status_is_parsed_case_insensitively() -> None:
    assert spec.parse_approval_status("approved") is ApprovalStatus.APPROVED
    with pytest.raises(spec.InvalidParameter, match="is not one of PendingManualApproval, Approved, Rejected"):
        spec.parse_approval_status("Maybe")


@pytest.mark.parametrize("name", ["CaliforniaHousing", "a", "a-b--c", "x" * 63])
def test_valid_names(name: str) -> None:
    assert spec.validate_name("group", name) == name


@pytest.mark.parametrize("name", ["", "-a", "a-", "a_b", "x" * 64, "a b"])
def test_invalid_names(name: str) -> None:
    with pytest.raises(spec.InvalidParameter, match="name rule"):
        spec.validate_name("group", name)


def test_json_get_follows_the_path_and_names_what_is_missing() -> None:
    assert spec.json_get(report(0.7), spec.R2_JSON_PATH) == 0.7
    with pytest.raises(KeyError, match=r"regression_metrics\.r2_score"):
        spec.json_get({"regression_metrics": {}}, spec.R2_JSON_PATH)


def test_a_gate_without_numbers_is_written_as_json_null() -> None:
    import json

    from core.models import ConditionResult

    record = ConditionResult("threshold", math.nan, None, False, "evaluation.json unread").to_dict()
    assert json.loads(json.dumps(record, allow_nan=False)) == {
        "Label": "threshold",
        "LeftValue": None,
        "RightValue": None,
        "Outcome": False,
        "Detail": "evaluation.json unread",
    }
    assert math.isnan(ConditionResult.from_dict(record).left)


def test_container_scripts_use_the_spec_columns() -> None:
    import container_scripts.preprocessing as preprocessing

    assert (tuple(preprocessing.FEATURES), preprocessing.TARGET) == (spec.FEATURES, spec.TARGET)
