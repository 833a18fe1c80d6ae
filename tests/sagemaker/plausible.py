"""What AWS may plausibly answer the SageMaker backend: the hints that take tests/sagemaker/shapes.py's
strategies down the backend's deep paths (a run's steps with their jobs, a version's metrics document, an
endpoint in service), the documents it reads from S3, and the errors AWS and what stands in front of it send.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from hypothesis import strategies as st

from core import spec
from tests.aws import BUCKET, REGION
from tests.sagemaker.shapes import HTML_PAGE, LONG_TEXT, ODD_STRINGS, TIME_ZONES

ACCOUNT = "123456789012"
EXECUTION = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/housing-tui-pipeline/execution/abc123def456"
PACKAGE = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/californiahousing/3"
EVALUATION = json.dumps(
    {"regression_metrics": {"r2_score": 0.6433, "mse": 0.4674, "rmse": 0.6837, "mae": 0.5029}, "n_test": 4128}
)
JSON_BODIES = [
    EVALUATION,
    '{"regression_metrics": {"r2_score": "high", "mse": null, "rmse": [], "mae": {}}}',
    '{"regression_metrics": {"r2_score": 1e999, "mse": 1, "rmse": 1, "mae": 1}}',
    '{"regression_metrics": {"r2_score": ' + "9" * 400 + ', "mse": 1, "rmse": 1, "mae": 1}}',
    '{"regression_metrics": []}',
    '{"metrics": {}}',
    "[1, 2, 3]",
    '"just a string"',
    "null",
    "{not json",
    "[" * 50_000,
    '{"regression_metrics": {"r2_score": 0.5, "mse": 1, "rmse": 1, "mae": 1}, "pad": "' + "x" * 2_000_000 + '"}',
    "",
]
CSV_BODIES = [
    "4.526,8.3252,41.0,6.98,1.02,322.0,2.55,37.88,-122.23\n" * 3,
    "MedHouseVal,MedInc,HouseAge\n1,2,3\n",
    "1,2,3\n",
    "a,b,c,d,e,f,g,h,i\n",
    "4.5,nan,inf,1,1,1,1,1,1\n",
    HTML_PAGE,
    "",
]
PREDICTIONS = ["0.5\n1.25\n", "1e3", "", "not a number\n", "1,2\n", HTML_PAGE, '{"predictions": [1.0]}', "nan\n"]
PREPROCESS_JOB = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:processing-job/pipelines-abc-preprocess"
EVALUATE_JOB = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:processing-job/pipelines-abc-evaluate"
TRAIN_JOB = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/pipelines-abc-train"
STEP_STATUSES = st.sampled_from(["Starting", "Executing", "Stopping", "Stopped", "Failed", "Succeeded", "Paused"])
TIMES = st.datetimes(
    min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2030, 1, 1), timezones=st.sampled_from(TIME_ZONES)
)


def _step(name: str, metadata: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"StepName": st.just(name), "StepStatus": STEP_STATUSES, "Metadata": metadata},
        optional={"StartTime": TIMES, "EndTime": TIMES, "FailureReason": st.sampled_from(ODD_STRINGS)},
    )


# The steps of a run as SageMaker lists them, in the order they start; a run has got as far as any of them.
PIPELINE_STEPS = [
    _step(spec.PREPROCESS, st.just({"ProcessingJob": {"Arn": PREPROCESS_JOB}})),
    _step(spec.TRAIN, st.just({"TrainingJob": {"Arn": TRAIN_JOB}})),
    _step(spec.EVALUATE, st.just({"ProcessingJob": {"Arn": EVALUATE_JOB}})),
    _step(spec.CHECK_R2, st.sampled_from([{"Condition": {"Outcome": o}} for o in ("True", "False")])),
    _step("Register-RepackModel-0", st.just({"TrainingJob": {"Arn": TRAIN_JOB}})),
    _step("Register-RegisterModel", st.just({"RegisterModel": {"Arn": PACKAGE}})),
]


def _first_or_any(bodies: list[str], good: int = 1) -> st.SearchStrategy[bytes]:
    encoded = [b.encode() for b in bodies]
    return st.one_of(st.sampled_from(encoded[:good]), st.sampled_from(encoded))


def _output(name: str, uri: str) -> dict[str, Any]:
    return {"OutputName": name, "S3Output": {"S3Uri": uri, "LocalPath": f"/opt/ml/{name}", "S3UploadMode": "EndOfJob"}}


# Values that take the backend further than random text would: a run's steps with their jobs, the jobs'
# outputs, a version's metrics document, an endpoint that is in service. Each is drawn as often as the
# generic value of its member, which the model's shape makes.
HINTS = {
    "PipelineExecutionSteps": st.one_of(st.just(len(PIPELINE_STEPS)), st.integers(0, len(PIPELINE_STEPS))).flatmap(
        lambda n: st.tuples(*PIPELINE_STEPS[:n]).map(list)
    ),
    "ProcessingOutputConfig": st.one_of(
        st.just(
            {
                "Outputs": [
                    _output("train", f"s3://{BUCKET}/run/train"),
                    _output("test", f"s3://{BUCKET}/run/test/"),
                    _output("evaluation", f"s3://{BUCKET}/run/evaluate"),
                ]
            }
        ),
        st.sampled_from(
            [
                {"Outputs": [_output("evaluation", "s3://b"), _output("test", "file:///tmp/test")]},
                {"Outputs": [{"OutputName": "evaluation"}, {"OutputName": "test"}]},
            ]
        ),
    ),
    "ModelMetrics": st.sampled_from(
        [
            {"ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": f"s3://{BUCKET}/e.json"}}},
            {"ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": "https://example.com/e"}}},
        ]
    ),
    "MetadataProperties": st.sampled_from([{"GeneratedBy": EXECUTION}, {"GeneratedBy": "someone"}, {}]),
    "PrimaryContainer": st.just({"ModelPackageName": PACKAGE}),
    "EndpointStatus": st.sampled_from(["InService", "Updating"]),
    "EndpointConfigName": st.just("ep-config"),
    "ModelName": st.just("ep-model"),
    "StepName": st.sampled_from([*spec.STEP_NAMES, "Register-RegisterModel", "Register-RepackModel-0"]),
    "PipelineExecutionArn": st.sampled_from([EXECUTION, f"{EXECUTION}x", "arn:aws:sagemaker:::"]),
    "ModelPackageArn": st.sampled_from([PACKAGE, PACKAGE.replace("/3", "/three"), PACKAGE + "0"]),
    "Name": st.sampled_from(list(spec.PARAMETER_DEFAULTS)),
    "Value": st.sampled_from(["0.6", "42", "-1e9", "abc", "", "nan", "1e400"]),
    # The documents the backend reads from S3 (evaluation.json, a test split) and an endpoint's answer; the
    # first of each list, a good one, is drawn as often as all the others.
    "GetObject.Body": _first_or_any(JSON_BODIES[:1] + CSV_BODIES[:1] + JSON_BODIES[1:] + CSV_BODIES[1:], 2),
    "InvokeEndpoint.Body": _first_or_any(PREDICTIONS),
    "Account": st.just(ACCOUNT),
}
# Members forced to plausible values for a test about the code they lead to.
DEEP_RUN = frozenset({"PipelineExecutionSteps", "ProcessingOutputConfig", "Body"})
DEEP_VERSION = frozenset({"ModelMetrics", "MetadataProperties", "Body"})
DEEP_ENDPOINT = frozenset({"EndpointStatus", "EndpointConfigName", "ModelName", "PrimaryContainer", "Body"})

ERROR_CODES = [
    "ThrottlingException",
    "ValidationException",
    "InternalFailure",
    "ServiceUnavailable",
    "AccessDeniedException",
    "ResourceNotFound",
    "NoSuchKey",
    "ResourceNotFoundException",
    "ModelError",
    "ExpiredTokenException",
    "500",
    "",
]
ERROR_MESSAGES = [
    "Rate exceeded",
    HTML_PAGE,
    LONG_TEXT,
    "first line\nsecond line",
    "",
    "Could not find model package",
    "Ünïcode <script>alert(1)</script>",
]
