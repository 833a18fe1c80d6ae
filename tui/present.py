"""How records read on screen: coloured statuses, short times, run and version summaries. No I/O here."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence

from rich.text import Text

from core import spec
from core.models import Endpoint, Execution, GateOutcome, ModelVersion, StepRun
from tui.formatting import duration, number

STATUS_STYLES = {
    "Executing": "bold yellow",
    "Starting": "yellow",
    "Stopping": "magenta",
    "Stopped": "magenta",
    "Failed": "bold red",
    "Succeeded": "green",
    "Creating": "bold yellow",
    "Updating": "bold yellow",
    "Deleting": "magenta",
    "InService": "green",
    "Approved": "green",
    "Rejected": "red",
    "PendingManualApproval": "yellow",
}
SHORT_APPROVAL = {"PendingManualApproval": "Pending", "Approved": "Approved", "Rejected": "Rejected"}


def status_text(status: object, short: bool = False) -> Text:
    label = str(status)
    return Text(SHORT_APPROVAL.get(label, label) if short else label, style=STATUS_STYLES.get(label, ""))


def clock_time(epoch: float | None) -> str:
    """Start of a step: the run's date is on the line above, so the time of day is enough."""
    return "-" if epoch is None else dt.datetime.fromtimestamp(epoch).strftime("%H:%M:%S")


def short_time(epoch: float | None) -> str:
    return "-" if epoch is None else dt.datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M")


def version_label(model_package_arn: str | None) -> str:
    """'v3' for .../model-package/californiahousing/3."""
    if not model_package_arn:
        return "-"
    return "v" + model_package_arn.rsplit("/", 1)[-1]


def model_label(model_package_arn: str) -> str:
    """'californiahousing/3': the group and version of a model package ARN."""
    return "/".join(model_package_arn.rsplit("/", 2)[-2:])


# ---- runs ---------------------------------------------------------------------------------------------


def gate_of(steps: Sequence[StepRun]) -> GateOutcome | None:
    return next((s.gate for s in steps if s.gate is not None), None)


def registered_arn(steps: Sequence[StepRun]) -> str | None:
    return next((s.model_package_arn for s in steps if s.model_package_arn), None)


def run_duration(execution: Execution, now: float) -> float:
    end = now if execution.status.is_active else execution.last_modified
    return max(0.0, end - execution.created)


def gate_decision(execution: Execution, steps: Sequence[StepRun]) -> Text:
    gate = gate_of(steps)
    if gate is None:
        return Text("…" if execution.status.is_active else "-", style="dim")
    if not gate.passed:
        return Text("not registered", style="red")
    registered = registered_arn(steps)
    if registered:
        return Text(f"registered {version_label(registered)}", style="green")
    return Text("passed", style="green")


def run_row(execution: Execution, steps: Sequence[StepRun], now: float, unavailable: str | None = None) -> list[object]:
    """One run; `unavailable` says why its steps could not be read (the Gate cell shows it instead)."""
    gate = gate_of(steps)
    return [
        status_text(execution.status),
        short_time(execution.created),
        duration(run_duration(execution, now)),
        execution.parameters.get("R2Threshold", "-"),
        number(gate.conditions[0].left if gate else None),
        Text(unavailable, style="yellow") if unavailable else gate_decision(execution, steps),
        Text(execution.execution_id, style="dim"),
    ]


def step_rows(execution: Execution, steps: Sequence[StepRun], now: float) -> list[tuple[str, list[object]]]:
    """All five steps, in pipeline order; the ones that did not run say why."""
    by_name = {s.name: s for s in steps}
    gate = gate_of(steps)
    rows: list[tuple[str, list[object]]] = []
    for name in spec.STEP_NAMES:
        step = by_name.get(name)
        if step is None:
            if gate is not None and not gate.passed:
                status, why = "skipped", "the gate did not pass"
            elif execution.status.is_active:
                status, why = "waiting", ""
            else:
                status, why = "not run", ""
            rows.append((name, [name, Text(status, style="dim"), "-", "-", Text(why, style="dim")]))
            continue
        if step.status.is_active and step.start_time is not None:
            took = duration(max(0.0, now - step.start_time))
        else:
            took = duration(step.duration)
        detail = step.failure_reason or (step.gate.summary if step.gate else "") or (step.model_package_arn or "")
        rows.append((name, [name, status_text(step.status), clock_time(step.start_time), took, detail]))
    return rows


def outcome_line(execution: Execution, steps: Sequence[StepRun]) -> Text:
    """One sentence under the steps: the gate's outcome in words, or why the run ended as it did."""
    gate = gate_of(steps)
    text = Text()
    if gate is not None:
        text.append("CheckR2: ", style="bold")
        text.append(gate.summary, style="green" if gate.passed else "red")
        registered = registered_arn(steps)
        if registered:
            text.append(f"  ({registered})", style="dim")
        return text
    if execution.failure_reason:
        text.append(f"{execution.status}: ", style="bold red")
        text.append(execution.failure_reason)
        return text
    if execution.status.is_active:
        running = next((s.name for s in steps if s.status.is_active), None)
        text.append(f"{execution.status}" + (f": {running}" if running else ""), style="yellow")
        return text
    text.append(str(execution.status), style=STATUS_STYLES.get(str(execution.status), ""))
    return text


# ---- registry -----------------------------------------------------------------------------------------


def passes(version: ModelVersion, threshold: float | None) -> bool | None:
    if threshold is None or version.metrics is None:
        return None
    return version.metrics.r2 >= threshold


def r2_cell(version: ModelVersion, threshold: float | None) -> Text:
    if version.metrics is None:
        # A version whose details could not be read is asked again on the next poll.
        return Text("retrying", style="yellow") if version.unavailable else Text("-", style="dim")
    verdict = passes(version, threshold)
    text = Text(f"{version.metrics.r2:.4f}")
    if verdict is True:
        text.append(" ✓", style="bold green")
    elif verdict is False:
        text.append(" ✗", style="bold red")
    return text


def version_row(version: ModelVersion, threshold: float | None) -> list[object]:
    metrics = version.metrics
    run = version.execution_arn.rsplit("/", 1)[-1] if version.execution_arn else "-"
    return [
        Text(str(version.version), style="bold"),
        status_text(version.approval_status, short=True),
        r2_cell(version, threshold),
        number(metrics.rmse if metrics else None),
        number(metrics.mae if metrics else None),
        short_time(version.created),
        Text(run, style="dim"),
    ]


def metric_summary(version: ModelVersion) -> str:
    """The ApprovalDescription a reviewer starts from."""
    metrics = version.metrics
    if metrics is None:
        return f"version {version.version}: no evaluation report"
    rows = f" on {metrics.n_test} test rows" if metrics.n_test else ""
    threshold = version.parameters.get("R2Threshold")
    gate = f", gate R2Threshold {threshold}" if threshold else ""
    return f"r2 {metrics.r2:.4f}, rmse {metrics.rmse:.4f}, mae {metrics.mae:.4f}{rows}{gate}"


def champion_difference(version: ModelVersion, champion: ModelVersion | None) -> Text:
    text = Text()
    if champion is None:
        return text.append("no Approved version yet: nothing to compare with", style="dim")
    if champion.arn == version.arn:
        return text.append(f"v{version.version} is the champion (newest Approved)", style="green")
    text.append(f"against champion v{champion.version}:\n")
    if version.metrics is None or champion.metrics is None:
        return text.append("  one of the two has no evaluation report", style="dim")
    for label, mine, theirs, higher_is_better in (
        ("r2", version.metrics.r2, champion.metrics.r2, True),
        ("rmse", version.metrics.rmse, champion.metrics.rmse, False),
        ("mae", version.metrics.mae, champion.metrics.mae, False),
    ):
        delta = mine - theirs
        better = delta > 0 if higher_is_better else delta < 0
        style = "green" if better else ("red" if delta != 0 else "dim")
        text.append(f"  {label:<5}{mine:.4f} vs {theirs:.4f}  ")
        text.append(f"{delta:+.4f}\n", style=style)
    text.rstrip()
    return text


def version_detail(version: ModelVersion, champion: ModelVersion | None) -> Text:
    text = Text()
    text.append_text(status_text(version.approval_status))
    run = version.execution_arn.rsplit("/", 1)[-1] if version.execution_arn else "-"
    text.append(f"  created {short_time(version.created)} by run {run}\n")
    if version.unavailable:
        text.append(f"{version.unavailable}\n", style="yellow")
    if version.approval_description:
        text.append("ApprovalDescription: ", style="bold")
        text.append(f"{version.approval_description}\n")
    text.append("\nDifference to the champion\n", style="bold underline")
    text.append_text(champion_difference(version, champion))
    text.append("\n\nevaluation.json\n", style="bold underline")
    report = version.metrics.to_report() if version.metrics else None
    text.append(json.dumps(report, indent=2) if report else "(none)")
    text.append("\n\nTraining parameters\n", style="bold underline")
    if version.parameters:
        width = max(len(k) for k in version.parameters)
        for key, value in version.parameters.items():
            text.append(f"{key:<{width}}  {value}\n")
    else:
        text.append("(none)\n")
    text.append(f"\nModelPackageArn {version.arn}\n", style="dim")
    text.append(f"GeneratedBy {version.execution_arn or '-'}\n", style="dim")
    text.append(f"ModelDataUrl {version.model_data_url or '-'}\nsha256 {version.model_sha256 or '-'}", style="dim")
    return text


# ---- endpoints ----------------------------------------------------------------------------------------


def endpoint_row(endpoint: Endpoint) -> list[object]:
    return [
        endpoint.name,
        status_text(endpoint.status),
        version_label(endpoint.model_package_arn),
        f"{endpoint.memory_mb} MB",
        f"{endpoint.max_concurrency}",
        short_time(endpoint.last_modified),
    ]


def endpoint_detail(endpoint: Endpoint, now: float) -> Text:
    text = Text()
    text.append(f"{endpoint.name}  ", style="bold")
    text.append_text(status_text(endpoint.status))
    status = str(endpoint.status)
    if status in ("Creating", "Updating"):
        waited = max(0.0, now - endpoint.last_modified)
        what = "loading the model and waiting for /ping" if status == "Creating" else "loading the new model"
        text.append(f"  {what}… {duration(waited)}", style="yellow")
    text.append(
        f"\nserves   {version_label(endpoint.model_package_arn)} of {model_label(endpoint.model_package_arn)}\n"
    )
    text.append(f"memory   {endpoint.memory_mb} MB, max concurrency {endpoint.max_concurrency}\n")
    text.append(f"url      {endpoint.url or '-'}\n")
    text.append(f"created  {short_time(endpoint.created)}, changed {short_time(endpoint.last_modified)}\n")
    if endpoint.failure_reason:
        text.append("reason   ", style="bold red")
        text.append(f"{endpoint.failure_reason}\n", style="red")
    text.append(f"{endpoint.arn}\n{endpoint.model_package_arn}", style="dim")
    return text
