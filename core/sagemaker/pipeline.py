"""core/spec.py compiled into a SageMaker Pipelines definition with the SageMaker Python SDK v2.

This is the only module that imports the SDK (slow to import, and it would otherwise report telemetry to
an AWS host on use and print a v2 notice). It follows the lesson: SKLearnProcessor for Preprocess and
Evaluate, the SKLearn estimator for Train, the EvaluationReport property file, a CheckR2 ConditionStep
and a RegisterModel step with an SKLearnModel that uses entry_point.py.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from core import spec
from core.sagemaker.config import SageMakerSettings
from core.sources import ENTRY_POINT, SCRIPTS_DIR

# Opting out through the SDK's own config key: the telemetry decorator reads it from the session.
SDK_CONFIG = {"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}}


def _import_sdk() -> None:
    os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
    # Set before import: the SDK leaves a configured level alone, and would otherwise print its
    # "Not applying SDK defaults" notes to stdout, into `pipeline show`'s JSON.
    logging.getLogger("sagemaker.config").setLevel(logging.WARNING)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    import sagemaker.sklearn.estimator
    import sagemaker.workflow.pipeline
    import sagemaker.workflow.step_collections  # noqa: F401
    from sagemaker.telemetry import telemetry_logging

    # Some SDK modules call logging.basicConfig(level=INFO) on import: give the root logger back.
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("sagemaker").setLevel(logging.ERROR)  # its "Popping out ..." notes are not for users
    # Belt and braces: even with the opt-out read from a user's SDK config, never send a request.
    telemetry_logging._send_telemetry_request = lambda *args, **kwargs: None


def pipeline_session(boto_session: Any, settings: SageMakerSettings, bucket: str) -> Any:
    _import_sdk()
    from sagemaker.workflow.pipeline_context import PipelineSession

    return PipelineSession(
        boto_session=boto_session,
        sagemaker_client=boto_session.client("sagemaker"),
        default_bucket=bucket,
        default_bucket_prefix=settings.prefix or None,
        sagemaker_config=SDK_CONFIG,
    )


def build_pipeline(session: Any, settings: SageMakerSettings, champion_gate: bool, input_data: str) -> Any:
    """The Pipeline object; `champion_gate` adds CheckR2's second condition (r2 >= ChampionR2Floor).

    `input_data` is InputData's default, an s3:// URI that exists, so that an execution started without
    parameters (from Studio, the AWS CLI, a schedule) runs on the bundled data.
    """
    _import_sdk()
    from sagemaker.inputs import TrainingInput
    from sagemaker.model_metrics import MetricsSource, ModelMetrics
    from sagemaker.processing import ProcessingInput, ProcessingOutput
    from sagemaker.sklearn.estimator import SKLearn
    from sagemaker.sklearn.model import SKLearnModel
    from sagemaker.sklearn.processing import SKLearnProcessor
    from sagemaker.workflow.condition_step import ConditionStep
    from sagemaker.workflow.conditions import ConditionGreaterThanOrEqualTo
    from sagemaker.workflow.functions import Join, JsonGet
    from sagemaker.workflow.parameters import ParameterFloat, ParameterInteger, ParameterString
    from sagemaker.workflow.pipeline import Pipeline
    from sagemaker.workflow.properties import PropertyFile
    from sagemaker.workflow.step_collections import RegisterModel
    from sagemaker.workflow.steps import ProcessingStep, TrainingStep

    kinds = {"String": ParameterString, "Float": ParameterFloat, "Integer": ParameterInteger}
    defaults = {**spec.PARAMETER_DEFAULTS, "InputData": input_data}
    params = {p.name: kinds[p.kind](name=p.name, default_value=defaults[p.name]) for p in spec.PARAMETERS}
    role = settings.role_arn
    fv = settings.framework_version

    def processor(job: str) -> Any:
        return SKLearnProcessor(
            framework_version=fv,
            role=role,
            instance_type=settings.processing_instance_type,
            instance_count=1,
            base_job_name=f"housing-{job}",
            sagemaker_session=session,
        )

    preprocess = ProcessingStep(
        name=spec.PREPROCESS,
        step_args=processor("preprocess").run(
            code=str(SCRIPTS_DIR / spec.STEP_SCRIPTS[spec.PREPROCESS]),
            inputs=[ProcessingInput(source=params["InputData"], destination="/opt/ml/processing/input")],
            outputs=[
                ProcessingOutput(output_name="train", source="/opt/ml/processing/train"),
                ProcessingOutput(output_name="test", source="/opt/ml/processing/test"),
            ],
            arguments=[
                "--test-size",
                params["TestSize"].to_string(),
                "--split-seed",
                params["SplitSeed"].to_string(),
            ],
        ),
    )
    outputs = preprocess.properties.ProcessingOutputConfig.Outputs
    estimator = SKLearn(
        entry_point=str(SCRIPTS_DIR / spec.STEP_SCRIPTS[spec.TRAIN]),
        framework_version=fv,
        py_version="py3",
        instance_type=settings.training_instance_type,
        instance_count=1,
        role=role,
        base_job_name="housing-train",
        sagemaker_session=session,
    )
    train = TrainingStep(
        name=spec.TRAIN,
        step_args=estimator.fit(
            {"train": TrainingInput(s3_data=outputs["train"].S3Output.S3Uri, content_type="text/csv")}
        ),
    )
    model_data = train.properties.ModelArtifacts.S3ModelArtifacts
    report = PropertyFile(
        name=spec.PROPERTY_FILE_NAME, output_name=spec.PROPERTY_FILE_OUTPUT, path=spec.PROPERTY_FILE_PATH
    )
    evaluate = ProcessingStep(
        name=spec.EVALUATE,
        step_args=processor("evaluate").run(
            code=str(SCRIPTS_DIR / spec.STEP_SCRIPTS[spec.EVALUATE]),
            inputs=[
                ProcessingInput(source=model_data, destination="/opt/ml/processing/model"),
                ProcessingInput(source=outputs["test"].S3Output.S3Uri, destination="/opt/ml/processing/test"),
            ],
            outputs=[ProcessingOutput(output_name=spec.PROPERTY_FILE_OUTPUT, source="/opt/ml/processing/evaluation")],
        ),
        property_files=[report],
    )
    evaluation_uri = Join(
        on="/",
        values=[
            evaluate.properties.ProcessingOutputConfig.Outputs[spec.PROPERTY_FILE_OUTPUT].S3Output.S3Uri,
            spec.PROPERTY_FILE_PATH,
        ],
    )
    register = RegisterModel(
        name=spec.REGISTER,
        model=SKLearnModel(
            model_data=model_data,
            role=role,
            entry_point=str(ENTRY_POINT),
            framework_version=fv,
            py_version="py3",
            env=dict(spec.SERVING_ENVIRONMENT),
            sagemaker_session=session,
        ),
        content_types=["text/csv"],
        response_types=["text/csv"],
        inference_instances=["ml.t2.medium", "ml.m5.large"],
        transform_instances=["ml.m5.large"],
        model_package_group_name=settings.model_package_group,
        approval_status=params["ModelApprovalStatus"],
        model_metrics=ModelMetrics(
            model_statistics=MetricsSource(s3_uri=evaluation_uri, content_type="application/json")
        ),
    )
    r2 = JsonGet(step_name=evaluate.name, property_file=report, json_path=spec.R2_JSON_PATH)
    conditions = [ConditionGreaterThanOrEqualTo(left=r2, right=params["R2Threshold"])]
    if champion_gate:
        conditions.append(ConditionGreaterThanOrEqualTo(left=r2, right=params["ChampionR2Floor"]))
    check = ConditionStep(name=spec.CHECK_R2, conditions=conditions, if_steps=[register], else_steps=[])
    return Pipeline(
        name=settings.pipeline_name,
        parameters=list(params.values()),
        steps=[preprocess, train, evaluate, check],
        sagemaker_session=session,
    )
