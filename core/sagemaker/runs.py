"""Pipeline executions on SageMaker: start, list, steps (with the CheckR2 numbers), logs, stop."""

from __future__ import annotations

import contextlib
import dataclasses
import secrets
import warnings
from functools import cached_property
from pathlib import Path
from typing import Any

from core import spec
from core.backend import LogChunk, TestRows
from core.errors import NotFound, UserError
from core.inputs import BUNDLED_DATA, check_input_file
from core.models import ConditionResult, Execution, ExecutionStatus, GateOutcome, StepRun, StepStatus
from core.sagemaker import s3
from core.sagemaker.answers import finite, status_of
from core.sagemaker.aws import Clients, aws_errors
from core.sagemaker.cache import RecordCache
from core.sagemaker.config import SageMakerSettings
from core.sagemaker.steps import display_names, fold

# Executions that no longer change (a Failed one only through RetryPipelineExecution, which _recall notices).
FINISHED = {str(ExecutionStatus.SUCCEEDED), str(ExecutionStatus.FAILED), str(ExecutionStatus.STOPPED)}
PAGE_SIZE = 100  # the most a SageMaker list call returns; the default is fewer
LOG_GROUPS = {"ProcessingJob": "/aws/sagemaker/ProcessingJobs", "TrainingJob": "/aws/sagemaker/TrainingJobs"}


def _failure_reason(record: dict[str, Any]) -> str | None:
    reason = record.get("FailureReason") or record.get("PipelineExecutionFailureReason")
    # moto renders a missing reason as the string "None"; AWS leaves the field out.
    return None if reason in (None, "", "None") else reason


def _time(value: Any) -> float | None:
    return value.timestamp() if value is not None else None


def _r2(report: dict[str, Any]) -> float | None:
    """The r2 of an evaluation.json, or None if the document has no number there."""
    try:
        return finite(spec.json_get(report, spec.R2_JSON_PATH))
    except KeyError:
        return None


def _started(summary: dict[str, Any]) -> float:
    return _time(summary.get("CreationTime") or summary.get("StartTime")) or 0.0


def _whole(kept: dict[str, Any]) -> bool:
    """A kept record with every part of the right type (a file edited by hand is not trusted further)."""
    return (
        isinstance(kept.get("seen"), list)
        and isinstance(kept.get("parameters"), dict)
        and isinstance(kept.get("steps"), list)
        and all(isinstance(r, dict) and "StepName" in r and "StepStatus" in r for r in kept["steps"])
        and (kept.get("evaluation") is None or isinstance(kept["evaluation"], dict))
    )


class SageMakerRuns:
    def __init__(
        self, clients: Clients, settings: SageMakerSettings, bucket: str, records: RecordCache | None = None
    ) -> None:
        self.clients = clients
        self.settings = settings
        self.bucket = bucket
        self._parameters: dict[str, dict[str, str]] = {}
        self._evaluations: dict[str, dict[str, Any]] = {}
        self._definitions: dict[bool, str] = {}
        # S3 objects the SDK created while building a definition that no pipeline holds yet: removed again
        # if the upsert fails, kept once one succeeds (the pipeline then refers to them).
        self._unclaimed_uploads: list[str] = []
        self._step_names: dict[str, str] | None = None
        self.records = records  # finished executions on disk, for the next process
        self._seen: dict[str, list[str | None]] = {}  # the last status (and failure) each execution was seen with
        self._ended: dict[str, dict[str, Any]] = {}  # finished executions' step records, with what they ended as

    @cached_property
    def default_input(self) -> str:
        """InputData's default: the bundled data under the configured prefix, uploaded by the upsert."""
        return s3.input_uri(BUNDLED_DATA, self.bucket, self.settings.prefix)

    # ---- the pipeline ---------------------------------------------------------------------------------

    def definition(self, champion_gate: bool) -> str:
        """The definition JSON, built by the SDK once per process and gate shape (it takes seconds)."""
        if champion_gate not in self._definitions:
            from core.sagemaker.pipeline import build_pipeline, pipeline_session

            recorder = s3.NewObjects(self.clients.s3)
            with (
                aws_errors("s3", who=self.settings.role_arn),
                warnings.catch_warnings(),
                recorder.watching(self.clients.session),
            ):
                warnings.simplefilter("ignore")  # the SDK's "Running within a PipelineSession" notice
                session = pipeline_session(self.clients.session, self.settings, self.bucket)
                pipeline = build_pipeline(session, self.settings, champion_gate, self.default_input)
                self._definitions[champion_gate] = pipeline.definition()
            self._unclaimed_uploads += recorder.created
        return self._definitions[champion_gate]

    def upsert(self, champion_gate: bool) -> None:
        """Create the pipeline, or update it to this definition (what the SDK's Pipeline.upsert does).

        The bundled data is uploaded first, so InputData's default names an object that exists and a run
        started without our client (Studio, the AWS CLI, a schedule) has its input. If the upsert fails,
        the objects it created are removed again.
        """
        try:
            with aws_errors("s3", who=self.settings.role_arn):
                _, created = s3.upload_input(self.clients.s3, BUNDLED_DATA, self.bucket, self.settings.prefix)
            if created:
                self._unclaimed_uploads.append(self.default_input)
            self._put_pipeline(champion_gate)
        except UserError:
            s3.delete_objects(self.clients.s3, self._unclaimed_uploads)
            self._unclaimed_uploads.clear()
            self._definitions.clear()  # its code objects are gone: build it again next time
            raise
        self._unclaimed_uploads.clear()  # the pipeline refers to them now

    def _put_pipeline(self, champion_gate: bool) -> None:
        definition = self.definition(champion_gate)
        self._step_names = display_names(definition)
        sm = self.clients.sagemaker
        args = {
            "PipelineName": self.settings.pipeline_name,
            "PipelineDefinition": definition,
            "RoleArn": self.settings.role_arn,
            "PipelineDescription": "California housing: Preprocess, Train, Evaluate, CheckR2, Register (housing-tui)",
        }
        try:
            with aws_errors(who=self.settings.role_arn, missing="the pipeline does not exist yet"):
                sm.describe_pipeline(PipelineName=self.settings.pipeline_name)
            exists = True
        except NotFound:
            exists = False
        with aws_errors(who=self.settings.role_arn):
            if exists:
                sm.update_pipeline(**args)
            else:
                sm.create_pipeline(**args, ClientRequestToken=secrets.token_hex(16))

    # ---- start ----------------------------------------------------------------------------------------

    def start(self, params: spec.RunParameters) -> Execution:
        created: list[str] = []  # the user's input, uploaded now: removed again if the run does not start
        try:
            if params.input_data.startswith("s3://"):
                input_uri = params.input_data
            elif params.input_data:
                local = Path(check_input_file(params.input_data))
                with aws_errors("s3", who=self.settings.role_arn):
                    input_uri, new = s3.upload_input(self.clients.s3, local, self.bucket, self.settings.prefix)
                created += [input_uri] if new else []
            else:
                input_uri = self.default_input  # the upsert uploads it
            params = dataclasses.replace(params, input_data=input_uri)
            self.upsert(champion_gate=params.min_improvement is not None)
            with aws_errors(who=self.settings.role_arn):
                response = self.clients.sagemaker.start_pipeline_execution(
                    PipelineName=self.settings.pipeline_name,
                    PipelineExecutionDisplayName=f"housing-tui-{secrets.token_hex(4)}",
                    PipelineParameters=[{"Name": k, "Value": v} for k, v in params.as_pipeline_parameters().items()],
                )
        except UserError:
            s3.delete_objects(self.clients.s3, created)
            raise
        return self.get(response["PipelineExecutionArn"])

    # ---- read -----------------------------------------------------------------------------------------

    def list(self, limit: int | None = None) -> list[Execution]:
        """Newest first; with `limit`, only the newest `limit`, read from as few pages as hold them."""
        summaries: list[dict[str, Any]] = []
        with aws_errors(missing=f"pipeline {self.settings.pipeline_name} does not exist yet; `run` creates it"):
            paginator = self.clients.sagemaker.get_paginator("list_pipeline_executions")
            for page in paginator.paginate(
                PipelineName=self.settings.pipeline_name,
                SortBy="CreationTime",
                SortOrder="Descending",
                PaginationConfig={"PageSize": min(limit or PAGE_SIZE, PAGE_SIZE)},
            ):
                summaries.extend(page.get("PipelineExecutionSummaries", []))
                if limit is not None and len(summaries) >= limit:
                    break  # the newest come first: older pages are not needed
        # A summary without an ARN names no execution anyone could open: it is left out.
        summaries = [s for s in summaries if s.get("PipelineExecutionArn")]
        if limit is not None:
            summaries = sorted(summaries, key=_started, reverse=True)[:limit]
        for summary in summaries:
            self._recall(summary)
        # The parameters of runs not met before (a call each), side by side rather than one after another.
        unmet = [s["PipelineExecutionArn"] for s in summaries if s["PipelineExecutionArn"] not in self._parameters]
        self.clients.each(self._prefetch_parameters, unmet)
        executions = [self._execution(s) for s in summaries]
        # Newest first whatever order the pages came in (the API's sort is a request, not a promise).
        return sorted(executions, key=lambda e: e.created, reverse=True)

    def get(self, arn: str) -> Execution:
        with aws_errors(missing=f"no execution {arn}; `housing-tui executions` lists them"):
            described = self.clients.sagemaker.describe_pipeline_execution(PipelineExecutionArn=arn)
        record = {**described, "PipelineExecutionArn": arn}  # the one asked about, whatever it says
        self._recall(record)
        return self._execution(record)

    def _execution(self, record: dict[str, Any]) -> Execution:
        arn = record["PipelineExecutionArn"]
        created = _time(record.get("CreationTime") or record.get("StartTime")) or 0.0
        try:
            parameters = self.parameters(arn)
        except UserError:
            parameters = {}  # one run's parameters failing must not hide the list; asked again next time
        return Execution(
            arn=arn,
            pipeline_name=self.settings.pipeline_name,
            status=status_of(ExecutionStatus, record.get("PipelineExecutionStatus")),
            created=created,
            last_modified=_time(record.get("LastModifiedTime")) or created,
            parameters=parameters,
            failure_reason=_failure_reason(record),
            display_name=record.get("PipelineExecutionDisplayName"),
        )

    def _prefetch_parameters(self, arn: str) -> None:
        # A failure here is met again, and shown on that run's row, when the run is read.
        with contextlib.suppress(UserError):
            self.parameters(arn)

    def parameters(self, arn: str) -> dict[str, str]:
        if arn not in self._parameters:  # an execution's parameters never change
            with aws_errors():
                pages = self.clients.sagemaker.get_paginator("list_pipeline_parameters_for_execution").paginate(
                    PipelineExecutionArn=arn
                )
                self._parameters[arn] = {
                    p["Name"]: p["Value"] for page in pages for p in page.get("PipelineParameters") or []
                }
        return self._parameters[arn]

    def raw_steps(self, arn: str) -> list[dict[str, Any]]:
        """The step records of an execution; those of a finished one are asked for once, then kept."""
        ended = self._ended.get(arn)
        if ended is not None:
            return ended["steps"]
        seen = self._seen.get(arn)  # known before the steps are read: if it had ended, so had they
        records = self._list_steps(arn)
        if seen is not None and seen[0] in FINISHED:
            self._keep(arn, seen, records)
        return records

    def _recall(self, record: dict[str, Any]) -> None:
        """Note the status an execution is listed with; a finished one's records come from disk if kept there.

        The status and failure reason are the key: a failed execution retried elsewhere (RetryPipelineExecution)
        shows as Executing, and what was kept of it is dropped.
        """
        arn = record["PipelineExecutionArn"]
        seen = [record.get("PipelineExecutionStatus"), _failure_reason(record)]
        self._seen[arn] = seen
        ended = self._ended.get(arn)
        if ended is not None and ended["seen"] != seen:
            del self._ended[arn]
            self._evaluations.pop(arn, None)
            if self.records is not None:
                self.records.forget(arn)
            ended = None
        if ended is None and seen[0] in FINISHED and self.records is not None:
            kept = self.records.load(arn)
            if kept is not None and _whole(kept) and kept["seen"] == seen:
                self._ended[arn] = {"seen": seen, "steps": kept["steps"]}
                self._parameters.setdefault(arn, kept["parameters"])
                if kept.get("evaluation") is not None:
                    self._evaluations.setdefault(arn, kept["evaluation"])

    def _keep(self, arn: str, seen: list[str | None], records: list[dict[str, Any]]) -> None:
        if any("Condition" in (r.get("Metadata") or {}) for r in records):
            self._evaluation(arn, records)  # what steps() reads next: kept with the steps
        self._ended[arn] = {"seen": seen, "steps": records}
        parameters = self._parameters.get(arn)  # read when it was listed; a record without them is not kept
        if self.records is not None and parameters is not None:
            kept = {"seen": seen, "parameters": parameters, "steps": records}
            self.records.save(arn, {**kept, "evaluation": self._evaluations.get(arn)})

    def _list_steps(self, arn: str) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        with aws_errors(missing=f"no execution {arn}; `housing-tui executions` lists them"):
            token = None
            while True:
                args: dict[str, Any] = {"PipelineExecutionArn": arn, "SortOrder": "Ascending"}
                if token:
                    args["NextToken"] = token
                page = self.clients.sagemaker_extra.list_pipeline_execution_steps(**args)
                records.extend(page.get("PipelineExecutionSteps", []))
                token = page.get("NextToken")
                if not token:
                    return records

    def steps(self, arn: str) -> list[StepRun]:
        records = self.raw_steps(arn)
        merged: dict[str, StepRun] = {}
        names = self.step_names()
        for record in records:
            name = fold(record.get("StepName", ""), names)
            if name is None:
                continue
            metadata = record.get("Metadata", {})
            step = StepRun(
                name=name,
                status=status_of(StepStatus, record.get("StepStatus")),
                start_time=_time(record.get("StartTime")),
                end_time=_time(record.get("EndTime")),
                failure_reason=record.get("FailureReason"),
                gate=self._gate(arn, records, metadata) if "Condition" in metadata else None,
                model_package_arn=metadata.get("RegisterModel", {}).get("Arn"),
            )
            previous = merged.get(name)
            if previous is not None and name == spec.REGISTER:
                # RepackModel then RegisterModel: one user-facing step spanning both.
                step = dataclasses.replace(
                    step if step.model_package_arn or not previous.status.is_active else previous,
                    start_time=min(t for t in (previous.start_time, step.start_time) if t is not None)
                    if previous.start_time or step.start_time
                    else None,
                )
            merged[name] = step
        return [merged[n] for n in spec.STEP_NAMES if n in merged]

    def step_names(self) -> dict[str, str]:
        """The pipeline's step names -> the steps users see, from its definition (read once per process)."""
        if self._step_names is None:
            try:
                with aws_errors(missing="no pipeline yet"):
                    described = self.clients.sagemaker.describe_pipeline(PipelineName=self.settings.pipeline_name)
                self._step_names = display_names(described.get("PipelineDefinition") or "{}")
            except (UserError, ValueError, RecursionError):
                return {}  # `fold` places the names by the definition's rule; asked again next time
        return self._step_names

    def _gate(self, arn: str, records: list[dict[str, Any]], metadata: dict[str, Any]) -> GateOutcome:
        """SageMaker reports only the outcome; the numbers come from the run's evaluation.json."""
        passed = str(metadata["Condition"].get("Outcome", "")).lower() == "true"
        report = self._evaluation(arn, records)
        values = self.parameters(arn)
        r2 = None if report is None else _r2(report)
        if r2 is None:
            why = (
                "evaluation.json unread" if report is None else f"evaluation.json has no number at {spec.R2_JSON_PATH}"
            )
            return GateOutcome(passed, (ConditionResult("threshold", float("nan"), None, passed, why),))
        threshold = finite(values.get("R2Threshold", spec.PARAMETER_DEFAULTS["R2Threshold"]))
        if threshold is None:
            unread = ConditionResult("threshold", r2, None, passed, f"r2 {r2:.4f}, R2Threshold unreadable")
            return GateOutcome(passed, (unread,))
        conditions = [ConditionResult("threshold", r2, threshold, r2 >= threshold)]
        floor = finite(values.get("ChampionR2Floor")) or spec.NO_CHAMPION_FLOOR
        if floor > spec.NO_CHAMPION_FLOOR / 2:
            detail = f"champion r2 + {finite(values.get('MinImprovement')) or 0.0:.4f} = {floor:.4f}"
            conditions.append(ConditionResult("champion", r2, floor, r2 >= floor, detail))
        return GateOutcome(passed, tuple(conditions))

    def _job(self, records: list[dict[str, Any]], step: str) -> tuple[str, str] | None:
        """(kind, name) of the job behind a step, from the step's Metadata."""
        for record in records:
            if record.get("StepName") == step:
                for kind in ("ProcessingJob", "TrainingJob"):
                    job_arn = record.get("Metadata", {}).get(kind, {}).get("Arn")
                    if job_arn:
                        return kind, job_arn.rsplit("/", 1)[-1]
        return None

    def _output_uri(self, records: list[dict[str, Any]], step: str, output: str) -> str | None:
        job = self._job(records, step)
        if job is None or job[0] != "ProcessingJob":
            return None
        with aws_errors():
            described = self.clients.sagemaker.describe_processing_job(ProcessingJobName=job[1])
        for item in described.get("ProcessingOutputConfig", {}).get("Outputs", []):
            if item.get("OutputName") == output:
                return item.get("S3Output", {}).get("S3Uri")
        return None

    def _evaluation(self, arn: str, records: list[dict[str, Any]]) -> dict[str, Any] | None:
        """The run's evaluation.json; kept once read (it never changes), asked again while it is missing."""
        if arn not in self._evaluations:
            uri = self._output_uri(records, spec.EVALUATE, spec.PROPERTY_FILE_OUTPUT)
            if uri is None:
                return None  # Evaluate has not written it (yet)
            try:
                with aws_errors("s3"):
                    report = s3.read_json(self.clients.s3, f"{uri.rstrip('/')}/{spec.PROPERTY_FILE_PATH}")
            except UserError:
                return None
            self._evaluations[arn] = report
        return self._evaluations[arn]

    # ---- logs, stop, test rows ------------------------------------------------------------------------

    def read_log(self, arn: str, step: str, cursor: int = 0) -> LogChunk:
        """CloudWatch log lines of the step's job; the cursor counts the events already returned."""
        if step not in spec.STEP_NAMES:
            raise UserError(f"step {step!r} is not one of {', '.join(spec.STEP_NAMES)}")
        records = self.raw_steps(arn)
        if step in (spec.CHECK_R2, spec.REGISTER):
            lines = [
                f"{s.gate.summary}\n" if s.gate else f"registered {s.model_package_arn}\n"
                for s in self.steps(arn)
                if s.name == step and (s.gate or s.model_package_arn)
            ]
            text = "".join(lines)
            return LogChunk(text[cursor:], len(text)) if cursor <= len(text) else LogChunk("", cursor)
        job = self._job(records, step)
        if job is None:
            return LogChunk("", cursor)
        kind, name = job
        events: list[str] = []
        with aws_errors("logs"):
            try:
                paginator = self.clients.logs.get_paginator("filter_log_events")
                for page in paginator.paginate(logGroupName=LOG_GROUPS[kind], logStreamNamePrefix=f"{name}/"):
                    events.extend(e.get("message", "") for e in page.get("events", []))
            except self.clients.logs.exceptions.ResourceNotFoundException:
                events = []  # the job has not written a log yet
        fresh = events[cursor:]
        return LogChunk("".join(m if m.endswith("\n") else m + "\n" for m in fresh), cursor + len(fresh))

    def stop(self, arn: str) -> Execution:
        execution = self.get(arn)
        if not execution.status.is_active:
            raise UserError(f"execution {arn} has already ended ({execution.status}); there is nothing to stop")
        with aws_errors(who=self.settings.role_arn):
            self.clients.sagemaker_extra.stop_pipeline_execution(
                PipelineExecutionArn=arn, ClientRequestToken=secrets.token_hex(16)
            )
        return self.get(arn)

    def test_rows(self, arn: str, limit: int) -> TestRows:
        uri = self._output_uri(self.raw_steps(arn), spec.PREPROCESS, "test")
        if uri is None:
            raise UserError(f"execution {arn} has no test split (its Preprocess step did not finish)")
        bucket, key = s3.split_uri(uri.rstrip("/") + "/test.csv")
        size = max(4096, limit * 400)  # a row is under 200 bytes: read only the start of the split
        with aws_errors("s3", missing=f"the test split of {arn} is gone from S3"):
            text = s3.read_text(self.clients.s3, f"s3://{bucket}/{key}", limit=size)
        lines = text.splitlines()
        if len(text.encode()) >= size:
            lines = lines[:-1]  # the range may end inside a row
        return TestRows.from_split(lines, limit)
