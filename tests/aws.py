"""moto (its server, on 127.0.0.1) and a SageMaker stand-in for the AWS backend's tests.

moto stores what the SageMaker, S3, CloudWatch Logs and STS APIs store, but it does not run pipelines
and lacks ListPipelineExecutionSteps, StopPipelineExecution and UpdateEndpoint. `SageMakerSimulator`
plays SageMaker's part: it runs the real container scripts on an execution's input, puts in S3 and moto
what each job would have put there, registers the model package when the CheckR2 condition holds, and
answers the three missing operations through botocore's Stubber.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import os
import subprocess
import sys
import tarfile
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber

from core import sklearn_image, spec
from core.sagemaker.aws import Clients, make_clients, make_session
from core.sagemaker.backend import SageMakerBackend
from core.sagemaker.config import SageMakerSettings

ACCOUNT = "123456789012"
REGION = "us-east-1"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/SageMakerRole"
BUCKET = "housing-test"
# The trust policy SageMaker's console gives an execution role.
SAGEMAKER_TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)
SCRIPTS = Path(__file__).resolve().parent.parent / "container_scripts"
IMAGE = f"683313688378.dkr.ecr.{REGION}.amazonaws.com/sagemaker-scikit-learn:{sklearn_image.FRAMEWORK_VERSION}-cpu-py3"


@pytest.fixture(scope="session")
def moto_server():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh moto account with the test bucket; every boto3 client of the test talks to moto."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST"), timeout=30)
    session = make_session(REGION)
    session.client("s3").create_bucket(Bucket=BUCKET)
    session.client("iam").create_role(RoleName=ROLE.rsplit("/", 1)[-1], AssumeRolePolicyDocument=SAGEMAKER_TRUST)
    return moto_server


def moto_sagemaker():
    """moto's in-memory SageMaker: the server runs in this process, so tests can play SageMaker's part."""
    from moto.sagemaker.models import sagemaker_backends

    return sagemaker_backends[ACCOUNT][REGION]


def moto_execution(arn: str):
    from moto.sagemaker.utils import get_pipeline_execution_from_arn

    return get_pipeline_execution_from_arn(moto_sagemaker().pipelines, arn)


class SageMakerSimulator:
    def __init__(self, clients: Clients, work: Path) -> None:
        self.clients = clients
        self.work = work
        self.steps: dict[str, list[dict[str, Any]]] = {}
        self.models: dict[str, Any] = {}  # model package ARN -> fitted model, to answer invocations
        self.stubber = Stubber(clients.sagemaker_extra)
        events = clients.sagemaker_extra.meta.events
        # provide-client-params fires before the Stubber checks a call, so each call finds its own answer.
        events.register("provide-client-params.sagemaker.ListPipelineExecutionSteps", self._feed_steps)
        events.register("provide-client-params.sagemaker.StopPipelineExecution", self._feed_stop)
        events.register("provide-client-params.sagemaker.UpdateEndpoint", self._feed_update)
        self.stubber.activate()

    # ---- the missing operations, answered through the Stubber ------------------------------------------

    def _feed_steps(self, params: dict[str, Any], **_: Any) -> None:
        arn = params["PipelineExecutionArn"]
        self.stubber.add_response(
            "list_pipeline_execution_steps", {"PipelineExecutionSteps": self.steps.get(arn, [])}, dict(params)
        )

    def _feed_stop(self, params: dict[str, Any], **_: Any) -> None:
        arn = params["PipelineExecutionArn"]
        moto_execution(arn).pipeline_execution_status = "Stopped"
        for record in self.steps.get(arn, []):
            if record["StepStatus"] in ("Starting", "Executing"):
                record["StepStatus"] = "Stopped"
        self.stubber.add_response("stop_pipeline_execution", {"PipelineExecutionArn": arn}, dict(params))

    def _feed_update(self, params: dict[str, Any], **_: Any) -> None:
        name, config_name = params["EndpointName"], params["EndpointConfigName"]
        backend = moto_sagemaker()
        endpoint = backend.endpoints[name]
        config = backend.endpoint_configs[config_name]
        endpoint.endpoint_config_name = config_name
        endpoint.production_variants = endpoint._process_production_variants(config.production_variants)
        self.stubber.add_response("update_endpoint", {"EndpointArn": endpoint.arn}, dict(params))

    # ---- executing a pipeline -------------------------------------------------------------------------

    def running(self, arn: str) -> None:
        """Mark an execution as still running, with Preprocess executing."""
        moto_execution(arn).pipeline_execution_status = "Executing"
        now = dt.datetime.now(dt.UTC)
        self.steps[arn] = [{"StepName": spec.PREPROCESS, "StartTime": now, "StepStatus": "Executing", "Metadata": {}}]

    def complete(self, arn: str, repack_failure: str | None = None) -> None:
        """Run the pipeline of an execution as SageMaker would, and record what it leaves behind.

        `repack_failure`: the register branch's repack step fails with this reason (nothing is registered).
        """
        sm, s3 = self.clients.sagemaker, self.clients.s3
        definition = json.loads(
            sm.describe_pipeline_definition_for_execution(PipelineExecutionArn=arn)["PipelineDefinition"]
        )
        # A parameter the execution was not started with takes the definition's default, as in SageMaker.
        params = {p["Name"]: str(p["DefaultValue"]) for p in definition["Parameters"]}
        pages = sm.get_paginator("list_pipeline_parameters_for_execution").paginate(PipelineExecutionArn=arn)
        params.update({p["Name"]: p["Value"] for page in pages for p in page.get("PipelineParameters") or []})
        execution_id = arn.rsplit("/", 1)[-1]
        root = self.work / execution_id
        prefix = f"s3://{BUCKET}/pipelines/{execution_id}"
        records: list[dict[str, Any]] = []

        source = root / "input" / params["InputData"].rsplit("/", 1)[-1]
        source.parent.mkdir(parents=True)
        bucket, key = params["InputData"][5:].split("/", 1)
        s3.download_file(bucket, key, str(source))

        log = self._run(
            "preprocessing.py",
            [
                "--input-path",
                str(source),
                "--test-size",
                params["TestSize"],
                "--split-seed",
                params["SplitSeed"],
                "--train-dir",
                str(root / "train"),
                "--test-dir",
                str(root / "test"),
            ],
        )
        outputs = {"train": f"{prefix}/preprocess/train", "test": f"{prefix}/preprocess/test"}
        self._upload(root / "train" / "train.csv", outputs["train"] + "/train.csv")
        self._upload(root / "test" / "test.csv", outputs["test"] + "/test.csv")
        records.append(self._processing_job(spec.PREPROCESS, execution_id, outputs, log))

        log = self._run(
            "training.py", [], {"SM_MODEL_DIR": str(root / "model"), "SM_CHANNEL_TRAIN": str(root / "train")}
        )
        archive = root / "model.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            tar.add(root / "model" / "model.joblib", arcname="model.joblib")
        model_uri = f"{prefix}/train/output/model.tar.gz"
        self._upload(archive, model_uri)
        records.append(self._training_job(execution_id, model_uri, log))

        (root / "evalin").mkdir()
        (root / "evalin" / "model.tar.gz").write_bytes(archive.read_bytes())
        log = self._run(
            "evaluation.py",
            ["--model-dir", str(root / "evalin"), "--test-dir", str(root / "test"), "--output-dir", str(root / "eval")],
        )
        evaluation_uri = f"{prefix}/evaluate/evaluation"
        self._upload(root / "eval" / "evaluation.json", evaluation_uri + "/evaluation.json")
        records.append(self._processing_job(spec.EVALUATE, execution_id, {"evaluation": evaluation_uri}, log))

        # CheckR2, as the ConditionStep evaluates it: JsonGet(EvaluationReport, r2) >= each right-hand side.
        r2 = json.loads((root / "eval" / "evaluation.json").read_text())["regression_metrics"]["r2_score"]
        passed = all(r2 >= float(params[name]) for name in condition_parameters(definition))
        records.append(self._record(spec.CHECK_R2, {"Condition": {"Outcome": "True" if passed else "False"}}))
        # The register branch's steps under the names the compiled definition gives them.
        branch = {step["Type"]: step["Name"] for step in register_branch(definition)}
        if passed:
            repack = self._record(branch["Training"], {})
            records.append(repack)
            if repack_failure is not None:
                repack.update(StepStatus="Failed", FailureReason=repack_failure)
                self.steps[arn] = records
                moto_execution(arn).pipeline_execution_status = "Failed"
                return
            group = self._group(definition)
            # The RegisterModel step creates the group on first use.
            if not sm.list_model_package_groups(NameContains=group)["ModelPackageGroupSummaryList"]:
                sm.create_model_package_group(ModelPackageGroupName=group)
            package = sm.create_model_package(
                ModelPackageGroupName=group,
                InferenceSpecification={
                    "Containers": [{"Image": IMAGE, "ModelDataUrl": model_uri}],
                    "SupportedContentTypes": ["text/csv"],
                    "SupportedResponseMIMETypes": ["text/csv"],
                },
                ModelApprovalStatus=params["ModelApprovalStatus"],
                ModelMetrics={
                    "ModelQuality": {
                        "Statistics": {"ContentType": "application/json", "S3Uri": evaluation_uri + "/evaluation.json"}
                    }
                },
                MetadataProperties={"GeneratedBy": arn},
            )["ModelPackageArn"]
            import joblib

            self.models[package] = joblib.load(root / "model" / "model.joblib")
            records.append(self._record(branch["RegisterModel"], {"RegisterModel": {"Arn": package}}))
        self.steps[arn] = records
        moto_execution(arn).pipeline_execution_status = "Succeeded"

    def queue_invocation(self, package_arn: str, body: bytes) -> None:
        """What the endpoint's container would answer: the served model's predictions, one per line."""
        import numpy as np

        rows = np.loadtxt(io.StringIO(body.decode()), delimiter=",", ndmin=2)
        queue_endpoint_answer("".join(f"{p!r}\n" for p in self.models[package_arn].predict(rows).tolist()))

    # ---- helpers --------------------------------------------------------------------------------------

    @staticmethod
    def _group(definition: dict[str, Any]) -> str:
        for step in definition["Steps"]:
            for branch in step.get("Arguments", {}).get("IfSteps", []):
                if branch["Type"] == "RegisterModel":
                    return branch["Arguments"]["ModelPackageGroupName"]
        raise AssertionError("the definition has no RegisterModel step")

    def _run(self, script: str, args: list[str], env: dict[str, str] | None = None) -> list[str]:
        result = subprocess.run(
            [sys.executable, str(SCRIPTS / script), *args],
            capture_output=True,
            text=True,
            env={**os.environ, **(env or {})},
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        return (result.stdout + result.stderr).splitlines()

    def _upload(self, path: Path, uri: str) -> None:
        bucket, key = uri[5:].split("/", 1)
        self.clients.s3.upload_file(str(path), bucket, key)

    def _logs(self, group: str, job: str, lines: list[str]) -> None:
        logs = self.clients.logs
        with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
            logs.create_log_group(logGroupName=group)
        stream = f"{job}/algo-1-1700000000"
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        start = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
        events = [{"timestamp": start + i, "message": line} for i, line in enumerate(lines)]
        logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)

    def _processing_job(self, step: str, execution_id: str, outputs: dict[str, str], log: list[str]) -> dict[str, Any]:
        name = f"pipelines-{execution_id}-{step}-{len(self.steps)}"[:63]
        arn = self.clients.sagemaker.create_processing_job(
            ProcessingJobName=name,
            ProcessingResources={
                "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30}
            },
            AppSpecification={"ImageUri": IMAGE},
            RoleArn=ROLE,
            ProcessingOutputConfig={
                "Outputs": [
                    {
                        "OutputName": output,
                        "S3Output": {
                            "S3Uri": uri,
                            "LocalPath": f"/opt/ml/processing/{output}",
                            "S3UploadMode": "EndOfJob",
                        },
                    }
                    for output, uri in outputs.items()
                ]
            },
        )["ProcessingJobArn"]
        self._logs("/aws/sagemaker/ProcessingJobs", name, log)
        return self._record(step, {"ProcessingJob": {"Arn": arn}})

    def _training_job(self, execution_id: str, model_uri: str, log: list[str]) -> dict[str, Any]:
        name = f"pipelines-{execution_id}-Train-{len(self.steps)}"[:63]
        arn = self.clients.sagemaker.create_training_job(
            TrainingJobName=name,
            AlgorithmSpecification={"TrainingImage": IMAGE, "TrainingInputMode": "File"},
            RoleArn=ROLE,
            OutputDataConfig={"S3OutputPath": model_uri.rsplit("/", 2)[0]},
            ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30},
            StoppingCondition={"MaxRuntimeInSeconds": 3600},
        )["TrainingJobArn"]
        self._logs("/aws/sagemaker/TrainingJobs", name, log)
        return self._record(spec.TRAIN, {"TrainingJob": {"Arn": arn}})

    @staticmethod
    def _record(name: str, metadata: dict[str, Any]) -> dict[str, Any]:
        now = dt.datetime.now(dt.UTC)
        return {
            "StepName": name,
            "StepDisplayName": name,
            "StartTime": now,
            "EndTime": now,
            "StepStatus": "Succeeded",
            "AttemptCount": 1,
            "Metadata": metadata,
        }


def queue_endpoint_answer(body: str) -> None:
    """What moto's InvokeEndpoint answers next (its stand-in for the container)."""
    result = {"results": [{"Body": body, "ContentType": "text/csv", "InvokedProductionVariant": "AllTraffic"}]}
    request = urllib.request.Request(
        f"{os.environ['AWS_ENDPOINT_URL']}/moto-api/static/sagemaker/endpoint-results",
        data=json.dumps(result).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(request, timeout=30)


def register_branch(definition: dict[str, Any]) -> list[dict[str, Any]]:
    """The steps CheckR2 runs when the gate passes, as compiled."""
    [check] = [s for s in definition["Steps"] if s["Name"] == spec.CHECK_R2]
    return check["Arguments"]["IfSteps"]


def condition_parameters(definition: dict[str, Any]) -> list[str]:
    """The parameters CheckR2's conditions compare the r2 with, read from the definition itself."""
    [check] = [s for s in definition["Steps"] if s["Name"] == spec.CHECK_R2]
    names = []
    for condition in check["Arguments"]["Conditions"]:
        assert condition["Type"] == "GreaterThanOrEqualTo"
        names.append(condition["RightValue"]["Get"].removeprefix("Parameters."))
    return names


@pytest.fixture
def sagemaker_clients(aws: str) -> Clients:
    clients = make_clients(make_session(REGION))
    # A client of its own for the operations moto lacks, so the Stubber covers only those.
    clients.sagemaker_extra = clients.session.client("sagemaker")
    return clients


@pytest.fixture
def simulator(sagemaker_clients: Clients, tmp_path: Path) -> SageMakerSimulator:
    return SageMakerSimulator(sagemaker_clients, tmp_path / "sagemaker-jobs")


@pytest.fixture
def sagemaker_backend(sagemaker_clients: Clients, simulator: SageMakerSimulator, tmp_path: Path) -> SageMakerBackend:
    settings = SageMakerSettings(region=REGION, role_arn=ROLE, bucket=BUCKET)
    return SageMakerBackend(settings, tmp_path / "cache", clients=sagemaker_clients)
