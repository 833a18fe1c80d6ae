"""Counting the AWS calls a backend makes, and filling moto with many runs and versions quickly.

Shared by the tests of the SageMaker backend's caches and by bench/sagemaker_calls.py. Runs are added
without the SageMaker SDK (a pipeline with a stand-in definition), each with the five step records SageMaker
reports for a run that registered a version; their step records are answered by the SageMakerSimulator's
Stubber, as in the other tests.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from typing import Any

from core import spec
from core.sagemaker.aws import Clients
from tests.aws import BUCKET, IMAGE, ROLE, SageMakerSimulator, moto_execution

EVALUATION = {
    "regression_metrics": {"r2_score": 0.6433, "mse": 0.4674, "rmse": 0.6837, "mae": 0.5029},
    "n_train": 16512,
    "n_test": 4128,
}
EVALUATION_URI = f"s3://{BUCKET}/bench/evaluate/evaluation"


class CallCounter:
    """Every API call the clients make, by operation, stubbed ones included.

    `before-parameter-build` is emitted once per call, before botocore's Stubber answers it and before any
    retry, so the count is what SageMaker would be asked (and would throttle).
    """

    def __init__(self, clients: Clients) -> None:
        self.calls: Counter[str] = Counter()
        seen: set[int] = set()
        for client in (clients.sagemaker, clients.sagemaker_extra, clients.s3, clients.logs, clients.sts):
            if id(client) not in seen:
                seen.add(id(client))
                client.meta.events.register("before-parameter-build.*.*", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        self.calls[model.name] += 1

    def take(self) -> Counter[str]:
        """The calls since the last take."""
        calls, self.calls = self.calls, Counter()
        return calls


def create_pipeline(clients: Clients, name: str = spec.PIPELINE_NAME) -> None:
    # moto keeps a definition as text; no SDK is needed to list, describe and run it.
    definition = {"Version": "2020-12-01", "Parameters": [], "Steps": []}
    clients.sagemaker.create_pipeline(PipelineName=name, PipelineDefinition=json.dumps(definition), RoleArn=ROLE)


def put_evaluation(clients: Clients) -> None:
    """The evaluation.json every filled run points at (and every filled version's ModelQuality statistics)."""
    clients.s3.put_object(
        Bucket=BUCKET,
        Key=EVALUATION_URI[len(f"s3://{BUCKET}/") :] + "/evaluation.json",
        Body=json.dumps(EVALUATION).encode(),
    )


def add_execution(
    clients: Clients, simulator: SageMakerSimulator, status: str = "Succeeded", evaluate_job: str | None = None
) -> str:
    """A run of the pipeline that ended with `status` (or still "Executing"), with its steps' records.

    `evaluate_job` names an existing Evaluate processing job to point at (filling many runs quickly); by
    default the run gets one of its own.
    """
    parameters = spec.RunParameters(r2_threshold=0.5).as_pipeline_parameters()
    arn = clients.sagemaker.start_pipeline_execution(
        PipelineName=spec.PIPELINE_NAME,
        PipelineExecutionDisplayName="bench",
        PipelineParameters=[{"Name": k, "Value": v} for k, v in parameters.items()],
    )["PipelineExecutionArn"]
    moto_execution(arn).pipeline_execution_status = status
    execution_id = arn.rsplit("/", 1)[-1]
    if status == "Executing":
        simulator.steps[arn] = [_record(spec.PREPROCESS, {}, "Executing")]
        return arn
    if evaluate_job is None:
        evaluate = simulator._processing_job(spec.EVALUATE, execution_id, {"evaluation": EVALUATION_URI}, ["r2"])
    else:
        evaluate = _record(spec.EVALUATE, {"ProcessingJob": {"Arn": evaluate_job}})
    simulator.steps[arn] = [
        _record(spec.PREPROCESS, {"ProcessingJob": {"Arn": f"{evaluate_job or 'none'}-preprocess"}}),
        _record(spec.TRAIN, {"TrainingJob": {"Arn": f"{evaluate_job or 'none'}-train"}}),
        evaluate,
        _record(spec.CHECK_R2, {"Condition": {"Outcome": "True"}}),
        _record("Register-RegisterModel", {"RegisterModel": {"Arn": f"{arn}-package"}}),
    ]
    return arn


def add_version(
    clients: Clients, generated_by: str | None = None, approval: str = "PendingManualApproval", new_group: bool = True
) -> str:
    """A version of the group with the filled evaluation.json as its metrics; `new_group=False` skips the
    check that the group exists (one call less per version when filling many)."""
    sm = clients.sagemaker
    groups = sm.list_model_package_groups(NameContains=spec.DEFAULT_GROUP) if new_group else None
    if groups is not None and not groups["ModelPackageGroupSummaryList"]:
        sm.create_model_package_group(ModelPackageGroupName=spec.DEFAULT_GROUP)
    args: dict[str, Any] = {
        "ModelPackageGroupName": spec.DEFAULT_GROUP,
        "InferenceSpecification": {
            "Containers": [{"Image": IMAGE, "ModelDataUrl": f"s3://{BUCKET}/bench/model.tar.gz"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
        "ModelApprovalStatus": approval,
        "ModelMetrics": {
            "ModelQuality": {
                "Statistics": {"ContentType": "application/json", "S3Uri": EVALUATION_URI + "/evaluation.json"}
            }
        },
    }
    if generated_by:
        args["MetadataProperties"] = {"GeneratedBy": generated_by}
    return sm.create_model_package(**args)["ModelPackageArn"]


def _record(name: str, metadata: dict[str, Any], status: str = "Succeeded") -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC)
    record: dict[str, Any] = {"StepName": name, "StartTime": now, "StepStatus": status, "Metadata": metadata}
    if status != "Executing":
        record["EndTime"] = now
    return record
