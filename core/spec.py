"""The pipeline, once: parameters, steps, the EvaluationReport property file and the CheckR2 gate.

The local runner executes this description directly; the SageMaker backend compiles the same names,
defaults and conditions into SDK objects. Nothing here runs anything.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from core.errors import UserError
from core.models import ApprovalStatus, ConditionResult, GateOutcome

PIPELINE_NAME = "CaliforniaHousingPipeline"
DEFAULT_GROUP = "CaliforniaHousing"
NAME_RULE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")

FEATURES = ("MedInc", "HouseAge", "AveRooms", "AveBedrms", "Population", "AveOccup", "Latitude", "Longitude")
TARGET = "MedHouseVal"

# Steps, in the order they run, with the container script each one executes (None: the orchestrator's own).
PREPROCESS, TRAIN, EVALUATE, CHECK_R2, REGISTER = "Preprocess", "Train", "Evaluate", "CheckR2", "Register"
STEP_NAMES = (PREPROCESS, TRAIN, EVALUATE, CHECK_R2, REGISTER)
STEP_SCRIPTS = {
    PREPROCESS: "preprocessing.py",
    TRAIN: "training.py",
    EVALUATE: "evaluation.py",
}

# The inference entry point SageMaker's repack puts into model.tar.gz under code/, and the model's
# environment (RegisterModel's container): with no Accept from the caller (or */*), the container answers
# in this type, the one the model package declares. The local endpoint reads the same setting.
ENTRY_POINT_FILE = "entry_point.py"
DEFAULT_INVOCATIONS_ACCEPT = "text/csv"
SERVING_ENVIRONMENT = {"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": DEFAULT_INVOCATIONS_ACCEPT}

# The property file Evaluate writes and CheckR2 reads, as SageMaker's PropertyFile knows it.
PROPERTY_FILE_NAME = "EvaluationReport"
PROPERTY_FILE_OUTPUT = "evaluation"
PROPERTY_FILE_PATH = "evaluation.json"
R2_JSON_PATH = "regression_metrics.r2_score"

# A champion floor this low means "no champion gate": SageMaker float parameters cannot be empty, and
# pipeline conditions cannot add two parameters, so the client passes champion r2 + MinImprovement.
NO_CHAMPION_FLOOR = -1.0e9


@dataclass(frozen=True)
class Parameter:
    name: str
    kind: str  # "String" | "Float" | "Integer", SageMaker's ParameterType names
    default: Any
    help: str


PARAMETERS = (
    Parameter("InputData", "String", "", "the input CSV (local path or s3:// URI); empty: the bundled data"),
    Parameter("TestSize", "Float", 0.2, "fraction of rows held out for evaluation, in (0, 1)"),
    Parameter("SplitSeed", "Integer", 42, "random_state of train_test_split"),
    Parameter("R2Threshold", "Float", 0.6, "CheckR2 registers a model only if its test r2 reaches this"),
    Parameter("ModelApprovalStatus", "String", str(ApprovalStatus.PENDING), "approval status of new versions"),
    Parameter("MinImprovement", "Float", 0.0, "how much r2 must beat the champion by (champion gate)"),
    Parameter(
        "ChampionR2Floor",
        "Float",
        NO_CHAMPION_FLOOR,
        "champion r2 + MinImprovement, set when the run starts; the default turns the champion gate off",
    ),
)
PARAMETER_DEFAULTS = {p.name: p.default for p in PARAMETERS}


class InvalidParameter(UserError):
    """A run parameter the pipeline cannot use; the message is one sentence for the user."""


@dataclass(frozen=True)
class Champion:
    """The newest Approved version when a run starts."""

    version: int
    r2: float


@dataclass(frozen=True)
class RunParameters:
    """Validated inputs of one run. min_improvement None means the champion gate is off."""

    input_data: str = ""
    test_size: float = 0.2
    split_seed: int = 42
    r2_threshold: float = 0.6
    approval_status: ApprovalStatus = ApprovalStatus.PENDING
    min_improvement: float | None = None
    champion: Champion | None = None

    def __post_init__(self) -> None:
        validate_threshold(self.r2_threshold)
        if not (math.isfinite(self.test_size) and 0.0 < self.test_size < 1.0):
            raise InvalidParameter(f"test size {self.test_size} is outside (0, 1); use a fraction such as 0.2")
        if not 0 <= self.split_seed <= 2**32 - 1:
            raise InvalidParameter(f"split seed {self.split_seed} is outside 0..4294967295")
        if self.min_improvement is not None and not (
            math.isfinite(self.min_improvement) and -1.0 <= self.min_improvement <= 1.0
        ):
            raise InvalidParameter(
                f"min improvement {self.min_improvement} is not a number in [-1, 1]; r2 differences are small"
            )

    @property
    def champion_floor(self) -> float | None:
        if self.min_improvement is None or self.champion is None:
            return None
        return self.champion.r2 + self.min_improvement

    def as_pipeline_parameters(self) -> dict[str, str]:
        """The values as SageMaker's PipelineParameters carry them: strings by name."""
        floor = self.champion_floor
        return {
            "InputData": self.input_data,
            "TestSize": repr(self.test_size),
            "SplitSeed": str(self.split_seed),
            "R2Threshold": repr(self.r2_threshold),
            "ModelApprovalStatus": str(self.approval_status),
            "MinImprovement": repr(self.min_improvement if self.min_improvement is not None else 0.0),
            "ChampionR2Floor": repr(floor if floor is not None else NO_CHAMPION_FLOOR),
        }


def validate_threshold(value: float) -> float:
    """R² is at most 1, so a threshold above 1 can never pass; NaN or infinity make no sense at all."""
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidParameter(f"threshold {value} is not a finite number; use a value such as 0.6")
    if value > 1.0:
        raise InvalidParameter(f"threshold {value} can never pass: r2 is at most 1.0")
    return float(value)


def parse_approval_status(text: str) -> ApprovalStatus:
    for status in ApprovalStatus:
        if text == status.value or text.lower() == status.value.lower():
            return status
    choices = ", ".join(s.value for s in ApprovalStatus)
    raise InvalidParameter(f"approval status {text!r} is not one of {choices}")


def validate_name(kind: str, name: str) -> str:
    if not NAME_RULE.fullmatch(name):
        raise InvalidParameter(
            f"{kind} {name!r} breaks SageMaker's name rule: 1-63 letters, digits or single hyphens, "
            "starting and ending with a letter or digit"
        )
    return name


# SageMaker's ApprovalDescription (botocore's service model): at most 1,024 characters matching `.*`, which
# takes no line break.
MAX_APPROVAL_DESCRIPTION = 1024


def validate_approval_description(text: str | None) -> str | None:
    if text is None:
        return None
    if len(text) > MAX_APPROVAL_DESCRIPTION:
        raise InvalidParameter(
            f"the approval description has {len(text):,} characters; SageMaker keeps at most "
            f"{MAX_APPROVAL_DESCRIPTION:,}: shorten it"
        )
    if "\n" in text or "\r" in text:
        raise InvalidParameter("the approval description has a line break; SageMaker takes one line: join the lines")
    return text


def json_get(document: dict[str, Any], path: str) -> Any:
    """Resolve a dotted JsonGet path the way SageMaker's JsonGet does for plain keys."""
    value: Any = document
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            raise KeyError(f"{PROPERTY_FILE_PATH} has no {path}")
        value = value[key]
    return value


def evaluate_gate(report: dict[str, Any], params: RunParameters) -> GateOutcome:
    """CheckR2: r2 >= R2Threshold and, with the champion gate on, r2 >= champion r2 + MinImprovement."""
    r2 = float(json_get(report, R2_JSON_PATH))
    threshold = params.r2_threshold
    conditions = [ConditionResult("threshold", r2, threshold, math.isfinite(r2) and r2 >= threshold)]
    floor = params.champion_floor
    if params.min_improvement is not None and params.champion is None:
        conditions.append(ConditionResult("champion", r2, None, True, "no Approved champion to beat yet"))
    if floor is not None and params.champion is not None:
        detail = (
            f"champion v{params.champion.version} {params.champion.r2:.4f} + {params.min_improvement:.4f} = {floor:.4f}"
        )
        conditions.append(ConditionResult("champion", r2, floor, math.isfinite(r2) and r2 >= floor, detail))
    return GateOutcome(passed=all(c.passed for c in conditions), conditions=tuple(conditions))
