"""`housing-tui`: the headless commands. Exit codes: 0 done, 1 the run failed or stopped, 2 bad input."""

from __future__ import annotations

import argparse
import base64
import json
import math
import re
import sqlite3
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core import serverless, spec
from core.backend import Backend
from core.errors import UserError, reason
from core.models import OURS, ApprovalStatus, EndpointStatus, Execution, ExecutionStatus, StepRun
from core.runtime import DEFAULT_INVOKE_TIMEOUT
from core.settings import Settings
from tui.formatting import duration, local_time, number, table

EXIT_OK, EXIT_RUN_FAILED, EXIT_USAGE = 0, 1, 2


def finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def positive_seconds(text: str) -> float:
    value = finite_float(text)
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds between 0 and 3600")
    return value


# Each --json output is the output shape of one AWS operation, checked against botocore's service model in
# tests, so jq written for the AWS CLI reads it; what AWS does not report sits under models.OURS only.
JSON_OPERATIONS = {
    "run": ("sagemaker", "StartPipelineExecution"),
    "run --wait": ("sagemaker", "DescribePipelineExecution"),
    "executions": ("sagemaker", "ListPipelineExecutions"),
    "steps": ("sagemaker", "ListPipelineExecutionSteps"),
    "stop": ("sagemaker", "StopPipelineExecution"),
    "versions": ("sagemaker", "ListModelPackages"),
    "approve": ("sagemaker", "UpdateModelPackage"),
    "reject": ("sagemaker", "UpdateModelPackage"),
    "deploy": ("sagemaker", "DescribeEndpoint"),
    "endpoints": ("sagemaker", "ListEndpoints"),
    "invoke": ("sagemaker-runtime", "InvokeEndpoint"),
    "delete-endpoint": ("sagemaker", "DeleteEndpoint"),
}


def add_json_flag(parser: argparse.ArgumentParser, command: str) -> None:
    operation = JSON_OPERATIONS[command][1]
    if command == "run":
        shape = f"{operation}'s output (with --wait: {JSON_OPERATIONS['run --wait'][1]}'s)"
    else:
        shape = f"{operation}'s output"
    parser.add_argument("--json", action="store_true", help=f"print JSON shaped as {shape}, as the AWS CLI does")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="housing-tui",
        description="Train, gate, register and deploy the California housing model. "
        "With no command, opens the terminal application.",
    )
    parser.add_argument(
        "--backend", choices=["local", "sagemaker"], help="where the work runs (default: local, or the config's)"
    )
    parser.add_argument(
        "--home", type=Path, help="local state folder (default: $HOUSING_TUI_HOME, else the user data folder)"
    )
    parser.add_argument("--group", help=f"model package group (default: {spec.DEFAULT_GROUP})")
    aws = parser.add_argument_group("sagemaker backend (also [sagemaker] in the config file, HOUSING_TUI_<NAME>)")
    aws.add_argument("--region", help="AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, the profile's)")
    aws.add_argument("--profile", help="AWS profile in ~/.aws/config (default: AWS_PROFILE, else default)")
    aws.add_argument("--role-arn", help="SageMaker execution role ARN")
    aws.add_argument("--bucket", help="S3 bucket for inputs and artifacts (default: sagemaker-REGION-ACCOUNT)")
    aws.add_argument("--prefix", help="S3 key prefix (default: housing-tui)")
    aws.add_argument("--pipeline-name", help=f"SageMaker pipeline name (default: {spec.PIPELINE_NAME})")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser("run", help="start a pipeline run: Preprocess, Train, Evaluate, CheckR2, Register")
    run.add_argument("--threshold", type=finite_float, help="R2Threshold: register only if test r2 >= this")
    run.add_argument("--test-size", type=finite_float, default=0.2, help="held-out fraction, in (0, 1)")
    run.add_argument("--split-seed", type=int, default=42, help="random_state of the split")
    run.add_argument(
        "--approval-status",
        default=str(ApprovalStatus.PENDING),
        help="status of a newly registered version: PendingManualApproval, Approved or Rejected",
    )
    run.add_argument(
        "--min-improvement",
        type=finite_float,
        help="champion gate: also require r2 >= newest Approved version's r2 + this",
    )
    run.add_argument("--input", type=Path, help="a CSV with the California housing columns (default: bundled)")
    run.add_argument("--wait", action="store_true", help="follow the run until it ends")
    add_json_flag(run, "run")

    executions = commands.add_parser("executions", help="list pipeline executions, newest first")
    add_json_flag(executions, "executions")

    steps = commands.add_parser("steps", help="show the steps of one execution")
    steps.add_argument("execution_arn", help="execution ARN or ID")
    add_json_flag(steps, "steps")

    logs = commands.add_parser("logs", help="print a step's log")
    logs.add_argument("execution_arn", help="execution ARN or ID")
    logs.add_argument("--step", choices=spec.STEP_NAMES, help="one step (default: all that ran)")

    stop = commands.add_parser("stop", help="stop a running execution")
    stop.add_argument("execution_arn", help="execution ARN or ID")
    add_json_flag(stop, "stop")

    versions = commands.add_parser("versions", help="list the model package group's versions, newest first")
    versions.add_argument("--status", choices=[s.value for s in ApprovalStatus])
    add_json_flag(versions, "versions")

    deploy = commands.add_parser("deploy", help="serve a model package version on a (serverless) endpoint")
    deploy.add_argument("model_package_arn", help="model package ARN, or the version number")
    deploy.add_argument("--endpoint", default=serverless.DEFAULT_ENDPOINT, help="endpoint name (default: %(default)s)")
    deploy.add_argument(
        "--memory", type=int, default=serverless.DEFAULT_MEMORY, help="MemorySizeInMB: 1024..6144 in steps of 1024"
    )
    deploy.add_argument(
        "--max-concurrency", type=int, default=serverless.DEFAULT_MAX_CONCURRENCY, help="MaxConcurrency: 1..200"
    )
    deploy.add_argument("--force", action="store_true", help="deploy a version that is not Approved")
    deploy.add_argument("--wait", action="store_true", help="wait until InService (or Failed)")
    add_json_flag(deploy, "deploy")

    endpoints = commands.add_parser("endpoints", help="list endpoints: status, model, URL, last error")
    add_json_flag(endpoints, "endpoints")

    invoke = commands.add_parser("invoke", help="send CSV rows to an endpoint; prints one prediction per line")
    invoke.add_argument("endpoint")
    invoke.add_argument("--file", type=Path, help="CSV rows (default: standard input); a header row is allowed")
    invoke.add_argument(
        "--timeout",
        type=positive_seconds,
        default=DEFAULT_INVOKE_TIMEOUT,
        help="seconds to wait for the answer (default: %(default)g); a local endpoint is tried once",
    )
    add_json_flag(invoke, "invoke")

    delete = commands.add_parser("delete-endpoint", help="stop an endpoint and remove it")
    delete.add_argument("endpoint")
    add_json_flag(delete, "delete-endpoint")

    doctor = commands.add_parser("doctor", help="check that the backend is ready: credentials, role, bucket, ...")
    doctor.add_argument("--create-group", action="store_true", help="create the model package group if missing")
    doctor.add_argument(
        "--json", action="store_true", help="print the checks as JSON (Backend, Checks: Name, Status, Detail, Fix)"
    )

    pipeline = commands.add_parser("pipeline", help="the SageMaker pipeline definition")
    pipeline_commands = pipeline.add_subparsers(dest="pipeline_command", metavar="show", required=True)
    show = pipeline_commands.add_parser("show", help="print the definition JSON that `run` would upsert")
    show.add_argument("--min-improvement", type=finite_float, help="include the champion condition, as run would")

    for verb, status in (("approve", ApprovalStatus.APPROVED), ("reject", ApprovalStatus.REJECTED)):
        command = commands.add_parser(verb, help=f"set a version's approval status to {status}")
        command.add_argument("model_package_arn", help="model package ARN, or the version number")
        command.add_argument("--description", help="ApprovalDescription (why)")
        add_json_flag(command, verb)
        command.set_defaults(approval=status)
    return parser


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2))


# ---- commands -----------------------------------------------------------------------------------------


def gate_text(steps: Sequence[StepRun]) -> str:
    for step in steps:
        if step.gate is not None:
            return step.gate.summary
    return "-"


def describe_execution(backend: Backend, execution: Execution) -> dict[str, Any]:
    return execution.to_description(backend.list_steps(execution.arn))


def cmd_run(backend: Backend, settings_threshold: float, args: argparse.Namespace) -> int:
    from core.waiting import wait_for_execution

    params = spec.RunParameters(
        input_data=str(args.input) if args.input else "",
        test_size=args.test_size,
        split_seed=args.split_seed,
        r2_threshold=args.threshold if args.threshold is not None else settings_threshold,
        approval_status=spec.parse_approval_status(args.approval_status),
        min_improvement=args.min_improvement,
    )
    execution = backend.start_run(params)
    if not args.wait:
        if args.json:
            print_json({"PipelineExecutionArn": execution.arn})
        else:
            print(f"started {execution.arn}")
            print(f"follow it with: housing-tui steps {execution.arn}")
        return EXIT_OK

    def show(step: StepRun) -> None:
        if args.json:
            return
        extra = ""
        if step.failure_reason:
            extra = f"  {step.failure_reason}"
        elif step.gate is not None:
            extra = f"  {step.gate.summary}"
        elif step.model_package_arn:
            extra = f"  {step.model_package_arn}"
        if step.duration is not None:
            extra = f"  {duration(step.duration)}{extra}"
        print(f"{local_time(step.end_time or step.start_time)}  {step.name:<10}  {step.status}{extra}", flush=True)

    if not args.json:
        print(f"started {execution.arn}", flush=True)
    try:
        final = wait_for_execution(backend, execution.arn, on_step=show)
    except KeyboardInterrupt:
        print(f"\nstopped waiting; the run goes on: housing-tui steps {execution.arn}", file=sys.stderr)
        return EXIT_RUN_FAILED
    if args.json:
        print_json(describe_execution(backend, final))
    else:
        steps = backend.list_steps(final.arn)
        registered = next((s.model_package_arn for s in steps if s.model_package_arn), None)
        print(f"{final.status}: {final.failure_reason or gate_text(steps)}")
        if registered:
            print(f"registered {registered}")
    return EXIT_OK if final.status == ExecutionStatus.SUCCEEDED else EXIT_RUN_FAILED


def resolve_execution(backend: Backend, ref: str) -> str:
    """Accept an execution ARN or just its ID (the last part of the ARN, as `executions` shows it)."""
    if ref.startswith("arn:"):
        return ref
    for execution in backend.list_executions():
        if execution.execution_id == ref.strip():
            return execution.arn
    raise UserError(f"no execution with ID {ref!r}; `housing-tui executions` lists them")


def resolve_version(backend: Backend, ref: str) -> str:
    """Accept a model package ARN or the version number within the group."""
    if ref.startswith("arn:"):
        return ref
    if re.fullmatch(r"[0-9]+", ref.strip()):  # ASCII digits only: "²".isdigit() is true and int() refuses it
        for version in backend.list_versions():
            if version.version == int(ref):
                return version.arn
        raise UserError(f"no version {ref} in the group; `housing-tui versions` lists them")
    raise UserError(f"{ref!r} is neither a model package ARN nor a version number; `housing-tui versions` lists both")


def cmd_executions(backend: Backend, args: argparse.Namespace) -> int:
    executions = backend.list_executions()
    if args.json:
        print_json({"PipelineExecutionSummaries": [e.to_summary() for e in executions]})
        return EXIT_OK
    rows = []
    for execution in executions:
        try:
            steps, missing = backend.list_steps(execution.arn), None
        except UserError as exc:  # one run's steps failing leaves its cell saying so, not the table unprinted
            steps, missing = [], f"unavailable ({reason(exc)})"
        gate = next((s.gate for s in steps if s.gate is not None), None)
        r2 = gate.conditions[0].left if gate else None
        decision = missing or ("-" if gate is None else ("registered" if gate.passed else "not registered"))
        ended = None if execution.status.is_active else execution.last_modified
        rows.append(
            [
                execution.execution_id,
                str(execution.status),
                local_time(execution.created),
                duration((ended or time.time()) - execution.created),
                execution.parameters.get("R2Threshold", "-"),
                number(r2),
                decision,
            ]
        )
    if not rows:
        print("no executions yet; start one with: housing-tui run --wait")
        return EXIT_OK
    print(table(["ID", "STATUS", "STARTED", "DURATION", "THRESHOLD", "R2", "GATE"], rows))
    print("`housing-tui steps ID` shows one run; --json gives full ARNs")
    return EXIT_OK


def cmd_steps(backend: Backend, args: argparse.Namespace) -> int:
    execution = backend.get_execution(resolve_execution(backend, args.execution_arn))
    steps = {s.name: s for s in backend.list_steps(execution.arn)}
    if args.json:
        print_json({"PipelineExecutionSteps": [s.to_aws() for s in steps.values()]})
        return EXIT_OK
    rows = []
    for name in spec.STEP_NAMES:
        step = steps.get(name)
        if step is None:
            gate_failed = any(s.gate is not None and not s.gate.passed for s in steps.values())
            why = "skipped: gate not passed" if gate_failed else "not started"
            rows.append([name, why, "-", "-", "-", ""])
            continue
        note = step.failure_reason or (step.gate.summary if step.gate else "") or (step.model_package_arn or "")
        rows.append(
            [
                name,
                str(step.status),
                local_time(step.start_time),
                local_time(step.end_time),
                duration(step.duration),
                note,
            ]
        )
    print(f"{execution.arn}  {execution.status}")
    if execution.failure_reason:
        print(f"reason: {execution.failure_reason}")
    print(table(["STEP", "STATUS", "START", "END", "DURATION", "DETAIL"], rows))
    return EXIT_OK


def cmd_logs(backend: Backend, args: argparse.Namespace) -> int:
    arn = resolve_execution(backend, args.execution_arn)
    names = [args.step] if args.step else [s.name for s in backend.list_steps(arn)]
    for name in names:
        chunk = backend.read_step_log(arn, name)
        if not args.step:
            print(f"==> {name} <==")
        sys.stdout.write(chunk.text)
    return EXIT_OK


def cmd_stop(backend: Backend, args: argparse.Namespace) -> int:
    execution = backend.stop_execution(resolve_execution(backend, args.execution_arn))
    if args.json:
        print_json({"PipelineExecutionArn": execution.arn})
    else:
        print(f"stopping {execution.arn}")
    return EXIT_OK


def cmd_versions(backend: Backend, args: argparse.Namespace) -> int:
    versions = backend.list_versions(ApprovalStatus(args.status) if args.status else None)
    if args.json:
        print_json({"ModelPackageSummaryList": [v.to_summary() for v in versions]})
        return EXIT_OK
    if not versions:
        print("no versions registered yet; a run whose r2 passes the threshold registers one")
        return EXIT_OK
    rows = [
        [
            str(v.version),
            str(v.approval_status),
            number(v.metrics.r2 if v.metrics else None),
            number(v.metrics.rmse if v.metrics else None),
            number(v.metrics.mae if v.metrics else None),
            local_time(v.created),
            v.arn,
        ]
        for v in versions
    ]
    print(table(["VERSION", "STATUS", "R2", "RMSE", "MAE", "CREATED", "ARN"], rows))
    return EXIT_OK


def cmd_approval(backend: Backend, args: argparse.Namespace) -> int:
    version = backend.set_approval(resolve_version(backend, args.model_package_arn), args.approval, args.description)
    if args.json:
        print_json({"ModelPackageArn": version.arn})
    else:
        print(f"{version.arn}: {version.approval_status}")
    return EXIT_OK


def cmd_deploy(backend: Backend, args: argparse.Namespace) -> int:
    arn = resolve_version(backend, args.model_package_arn)
    endpoint = backend.deploy(arn, args.endpoint, args.memory, args.max_concurrency, args.force, args.wait)
    if args.json:
        print_json(endpoint.to_description())
    elif endpoint.status == EndpointStatus.IN_SERVICE:
        print(f"{endpoint.name}: InService at {endpoint.url}, serving {endpoint.model_package_arn}")
    elif endpoint.status == EndpointStatus.FAILED:
        print(f"{endpoint.name}: Failed: {endpoint.failure_reason}")
    else:
        print(f"{endpoint.name}: {endpoint.status}; `housing-tui endpoints` shows when it is InService")
    return EXIT_RUN_FAILED if endpoint.status == EndpointStatus.FAILED else EXIT_OK


def cmd_endpoints(backend: Backend, args: argparse.Namespace) -> int:
    endpoints = backend.list_endpoints()
    if args.json:
        print_json({"Endpoints": [e.to_summary() for e in endpoints]})
        return EXIT_OK
    if not endpoints:
        print("no endpoints; deploy an Approved version with: housing-tui deploy ARN --wait")
        return EXIT_OK
    rows = [
        [
            e.name,
            str(e.status),
            e.model_package_arn,
            e.url or "-",
            local_time(e.created),
            f"{e.memory_mb}MB/{e.max_concurrency}",
            e.failure_reason or "",
        ]
        for e in endpoints
    ]
    print(table(["NAME", "STATUS", "MODEL PACKAGE", "URL", "CREATED", "SERVERLESS", "LAST ERROR"], rows))
    return EXIT_OK


def cmd_invoke(backend: Backend, args: argparse.Namespace) -> int:
    from core.csvrows import prepare_rows

    if args.file is not None:
        try:
            text = args.file.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"cannot read {args.file} ({exc}); pass a CSV file of feature rows") from None
    else:
        text = sys.stdin.read()
    rows = prepare_rows(text)
    answer = backend.invoke_endpoint(args.endpoint, rows.body, timeout=args.timeout)
    predictions = answer.predictions()
    if args.json:
        # InvokeEndpoint's output, its Body base64-encoded as the AWS CLI writes a blob in JSON.
        # JSON has no NaN or infinity (jq refuses them): a prediction that is not a number is written as null.
        shown = [p if math.isfinite(p) else None for p in predictions]
        ours: dict[str, Any] = {"Predictions": shown, "LatencyMs": round(answer.latency_ms, 3)}
        if rows.actuals is not None:
            ours["Actuals"] = rows.actuals
        print_json(
            {
                "Body": base64.b64encode(answer.body).decode(),
                "ContentType": answer.content_type,
                "InvokedProductionVariant": "AllTraffic",
                OURS: ours,
            }
        )
    else:
        sys.stdout.write(answer.body.decode())
    return EXIT_OK


def cmd_delete_endpoint(backend: Backend, args: argparse.Namespace) -> int:
    backend.delete_endpoint(args.endpoint)
    if args.json:
        print_json({OURS: {"EndpointName": args.endpoint}})  # DeleteEndpoint's output is empty
    else:
        print(f"deleted endpoint {args.endpoint}")
    return EXIT_OK


def cmd_doctor(settings: Settings, args: argparse.Namespace) -> int:
    from core.doctor import run_doctor

    def ask(group: str) -> bool:
        answer = input(f"model package group {group} does not exist; create it now? [y/N] ")
        return answer.strip().lower() in ("y", "yes")

    # Offer to create a missing group when a person is at the terminal; scripts pass --create-group.
    confirm = ask if sys.stdin.isatty() and not args.json else None
    checks = run_doctor(settings, create_group=args.create_group, confirm=confirm)
    if args.json:
        print_json({"Backend": settings.backend, "Checks": [c.to_json() for c in checks]})
    else:
        for check in checks:
            fix = f"  -> {check.fix}" if check.fix and check.status != "ok" else ""
            print(f"{check.status.upper():<4}  {check.name:<20}  {check.detail}{fix}")
    return EXIT_OK if all(c.status != "fail" for c in checks) else EXIT_RUN_FAILED


def cmd_pipeline(backend: Backend, args: argparse.Namespace) -> int:
    definition = getattr(backend, "pipeline_definition", None)
    if definition is None:
        raise UserError(
            "the local backend runs core/spec.py directly and has no SageMaker definition; use --backend sagemaker"
        )
    print(json.dumps(json.loads(definition(champion_gate=args.min_improvement is not None)), indent=2))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    from core import settings as settings_module
    from core.backends import open_backend

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        aws = {k: getattr(args, k) for k in ("region", "profile", "role_arn", "bucket", "prefix", "pipeline_name")}
        settings = settings_module.load().with_overrides(
            backend=args.backend, home=args.home, group=args.group, sagemaker=aws
        )
        if args.command == "doctor":  # it reports a bad config as a check instead of stopping at it
            return cmd_doctor(settings, args)
        backend = open_backend(settings)
        if args.command is None:
            # No command: the terminal application. Imported here so headless commands never load Textual.
            from tui.app import HousingApp

            HousingApp(backend, settings).run()
            return EXIT_OK
        if args.command == "run":
            return cmd_run(backend, settings.threshold, args)
        handlers = {
            "executions": cmd_executions,
            "steps": cmd_steps,
            "logs": cmd_logs,
            "stop": cmd_stop,
            "versions": cmd_versions,
            "approve": cmd_approval,
            "reject": cmd_approval,
            "deploy": cmd_deploy,
            "endpoints": cmd_endpoints,
            "invoke": cmd_invoke,
            "delete-endpoint": cmd_delete_endpoint,
            "pipeline": cmd_pipeline,
        }
        return handlers[args.command](backend, args)
    except UserError as exc:
        print(f"housing-tui: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # e.g. `housing-tui executions | head`
        return EXIT_OK
    except sqlite3.DatabaseError as exc:  # a backstop: the store turns these into StateError sentences
        print(f"housing-tui: error: the local database cannot be used ({exc}); check --home", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # e.g. a --home that cannot be written
        where = f" {exc.filename}" if exc.filename else ""
        print(
            f"housing-tui: error: cannot use{where}: {exc.strerror or exc}; check the path and its permissions",
            file=sys.stderr,
        )
        return EXIT_USAGE
    except (KeyboardInterrupt, EOFError):
        print("housing-tui: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
