"""Runs: the executions, the selected one's five steps live, and the selected step's log as it is written."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import DataTable, Log, Static
from textual.worker import get_current_worker

from core import spec
from core.errors import UserError, reason
from core.models import Execution, StepRun
from tui.commands import PaletteCommand
from tui.messages import LogRequest, RunsLoaded, RunStarted, RunStopRequested
from tui.present import outcome_line, run_row, step_rows
from tui.screens.base import PlaceScreen
from tui.screens.confirm import ConfirmScreen
from tui.screens.new_run import NewRunScreen
from tui.widgets.tables import FittedTable, is_current, selected_key, sync_rows
from tui.workers import Poller

ACTIVE_POLL_SECONDS = 0.5
IDLE_POLL_SECONDS = 2.0
LOG_LINES = 5000
# The newest runs shown: one page of SageMaker's list, so a poll costs one call however long the history.
RUNS_SHOWN = 100


class RunsScreen(PlaceScreen):
    MODE = "runs"
    POLL_GROUP = "runs-poll"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "new_run", "New run", id="runs.new"),
        Binding("s", "stop_run", "Stop run", id="runs.stop"),
        Binding("f", "follow", "Follow running step", id="runs.follow"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.executions: list[Execution] = []
        self.steps: dict[str, list[StepRun]] = {}
        self.final: set[str] = set()  # executions that ended and whose steps were read after that
        self.unavailable: dict[str, str] = {}  # runs whose steps the last poll could not read, and why
        self.log_error: str | None = None  # why the last poll could not read the shown log
        self.selected_arn: str | None = None
        self.selected_step: str | None = None
        self.follow = True  # show the running step's log until the user picks a step
        self.log_cursor = 0
        self.log_read: tuple[str, str] | None = None  # the (run, step) whose log has been read at least once
        self.poller = Poller(self, self.poll, self.poll_interval)

    def compose_body(self) -> ComposeResult:
        with Vertical(id="runs-body"):
            runs = FittedTable(id="runs", cursor_type="row", zebra_stripes=True)
            runs.border_title = "Runs"
            yield runs
            steps = FittedTable(id="steps", cursor_type="row")
            steps.border_title = "Steps"
            yield steps
            yield Static("", id="outcome")
            log = Log(id="log", max_lines=LOG_LINES)
            log.border_title = "Log"
            yield log

    def on_mount(self) -> None:
        runs = self.query_one("#runs", DataTable)
        for label, key, width in (
            ("Status", "status", 9),
            ("Started", "started", 16),
            ("Duration", "duration", 8),
            ("Threshold", "threshold", 9),
            ("r2", "r2", 6),
            ("Gate", "gate", 14),
            ("ID", "id", 12),
        ):
            runs.add_column(label, key=key, width=width)
        steps = self.query_one("#steps", DataTable)
        for label, key, width in (
            ("Step", "step", 10),
            ("Status", "status", 9),
            ("Start", "start", 8),
            ("Took", "took", 7),
            ("Detail", "detail", 70),
        ):
            steps.add_column(label, key=key, width=width)
        runs.focus()

    # ---- polling -----------------------------------------------------------------------------------------

    def poll_interval(self) -> float:
        active = any(e.status.is_active for e in self.executions)
        return self.poll_every(ACTIVE_POLL_SECONDS) if active else self.poll_every(IDLE_POLL_SECONDS)

    def poll(self) -> None:
        request = None
        if self.selected_arn and self.selected_step:
            request = LogRequest(self.selected_arn, self.selected_step, self.log_cursor)
        self.fetch_runs(frozenset(self.final), request)

    @work(thread=True, exclusive=True, group="runs-poll", name="refresh runs", exit_on_error=False)
    def fetch_runs(self, final: frozenset[str], request: LogRequest | None) -> None:
        backend = self.backend
        executions = backend.list_executions(limit=RUNS_SHOWN)
        steps: dict[str, list[StepRun]] = {}
        unavailable: dict[str, str] = {}
        for execution in executions:
            if execution.arn in final:
                continue
            try:
                steps[execution.arn] = backend.list_steps(execution.arn)
            except UserError as exc:
                # One run's steps failing (throttled, refused) must not blank the list: its row says so, and
                # without its steps the run is not final, so the next poll asks again.
                unavailable[execution.arn] = f"steps unavailable: {reason(exc)}, retrying"
        log, log_error = None, None
        if request:
            try:
                log = backend.read_step_log(request.arn, request.step, request.cursor)
            except UserError as exc:
                log_error = f"unavailable: {reason(exc)}, retrying"
        if not get_current_worker().is_cancelled:
            self.post_message(RunsLoaded(executions, steps, request, log, unavailable, log_error))

    def on_runs_loaded(self, message: RunsLoaded) -> None:
        listed_active = {e.arn for e in message.executions if e.status.is_active}
        self.steps.update(message.steps)
        self.final |= {arn for arn in message.steps if arn not in listed_active}
        self.unavailable = message.unavailable
        self.log_error = message.log_error
        self.executions = message.executions
        if self.selected_arn not in {e.arn for e in self.executions}:
            self.selected_arn = self.executions[0].arn if self.executions else None
            self._reset_log()
        self._draw_runs()
        self._draw_steps()
        request = message.log_request
        current = LogRequest(self.selected_arn or "", self.selected_step or "", self.log_cursor)
        if request is not None and message.log is not None and request == current:
            self.log_read = (request.arn, request.step)
            if message.log.text:
                self.query_one("#log", Log).write(message.log.text)
                self.log_cursor = message.log.cursor
        self.loaded = True
        self.update_bindings()
        assert self.poller is not None
        # The log of a step that just started (or of a newly selected one) is read right away.
        if self.selected_step and (request is None or (request.arn, request.step) != (current.arn, current.step)):
            self.poller.now()
        else:
            self.poller.done()

    @property
    def settled(self) -> bool:
        shown = (self.selected_arn, self.selected_step)
        return super().settled and (self.selected_step is None or self.log_read == shown)

    # ---- drawing -----------------------------------------------------------------------------------------

    def _selected_execution(self) -> Execution | None:
        return next((e for e in self.executions if e.arn == self.selected_arn), None)

    def _draw_runs(self) -> None:
        table = self.query_one("#runs", DataTable)
        now = self.housing.clock()
        rows = [
            (e.arn, run_row(e, self.steps.get(e.arn, []), now, self.unavailable.get(e.arn))) for e in self.executions
        ]
        sync_rows(table, rows)
        if self.selected_arn and selected_key(table) != self.selected_arn:
            keys = [e.arn for e in self.executions]
            table.move_cursor(row=keys.index(self.selected_arn), animate=False)
        active = sum(e.status.is_active for e in self.executions)
        shown = len(self.executions)
        count = f"newest {shown}" if shown >= RUNS_SHOWN else str(shown)  # older ones: `housing-tui executions`
        table.border_title = f"Runs · {count}" + (f" · {active} running" if active else "")

    def _draw_steps(self) -> None:
        table = self.query_one("#steps", DataTable)
        execution = self._selected_execution()
        outcome = self.query_one("#outcome", Static)
        if execution is None:
            table.clear()
            table.border_title = "Steps"
            outcome.update("No runs yet: press n to start one.")
            return
        steps = self.steps.get(execution.arn, [])
        table.border_title = f"Steps · {execution.execution_id} · {execution.status}"
        sync_rows(table, step_rows(execution, steps, self.housing.clock()))
        note = self.unavailable.get(execution.arn)
        outcome.update(Text(note, style="yellow") if note else outcome_line(execution, steps))
        started = [s.name for s in steps]
        if self.follow or self.selected_step is None:
            running = next((s.name for s in steps if s.status.is_active), None)
            wanted = running or (started[-1] if started else spec.STEP_NAMES[0])
            if wanted != self.selected_step:
                self.selected_step = wanted
                self._reset_log()
        if self.selected_step and selected_key(table) != self.selected_step:
            table.move_cursor(row=spec.STEP_NAMES.index(self.selected_step), animate=False)
        log = self.query_one("#log", Log)
        if self.selected_step is None:
            log.border_title = "Log"
        else:
            log.border_title = f"Log · {self.selected_step} · " + (
                self.log_error or ("following the run" if self.follow else "f follows the run")
            )

    def _reset_log(self) -> None:
        self.log_cursor = 0
        self.log_read = None
        self.query_one("#log", Log).clear()

    # ---- selection ---------------------------------------------------------------------------------------

    @on(DataTable.RowHighlighted, "#runs")
    def _run_highlighted(self, event: DataTable.RowHighlighted) -> None:
        key = event.row_key.value
        if key and key != self.selected_arn and is_current(event):
            self.selected_arn = key
            self.selected_step = None
            self.follow = True
            self._reset_log()
            self._draw_steps()
            self.update_bindings()
            assert self.poller is not None
            self.poller.now()

    @on(DataTable.RowSelected, "#runs")
    def _run_selected(self) -> None:
        self.query_one("#steps", DataTable).focus()

    @on(DataTable.RowHighlighted, "#steps")
    def _step_highlighted(self, event: DataTable.RowHighlighted) -> None:
        key = event.row_key.value
        if key and key != self.selected_step and is_current(event):
            self.selected_step = key
            self.follow = False
            self._reset_log()
            self._draw_steps()
            assert self.poller is not None
            self.poller.now()

    @on(DataTable.RowSelected, "#steps")
    def _step_selected(self) -> None:
        self.query_one("#log", Log).focus()

    # ---- actions -----------------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop_run":
            execution = self._selected_execution()
            return execution is not None and execution.status.is_active
        if action == "follow":
            return not self.follow and self.selected_arn is not None
        return True

    def action_new_run(self) -> None:
        def start(params: object) -> None:
            if params is not None:
                self.start_run(params)

        self.app.push_screen(NewRunScreen(self.housing.threshold), start)

    @work(thread=True, exclusive=True, group="runs-start", name="start a run", exit_on_error=False)
    def start_run(self, params: spec.RunParameters) -> None:
        self.post_message(RunStarted(self.backend.start_run(params)))

    def on_run_started(self, message: RunStarted) -> None:
        execution = message.execution
        self.notify(f"Started {execution.execution_id} (R2Threshold {execution.parameters.get('R2Threshold')})")
        self.executions = [execution, *[e for e in self.executions if e.arn != execution.arn]]
        self.selected_arn = execution.arn
        self.selected_step = None
        self.follow = True
        self._reset_log()
        self._draw_runs()
        self._draw_steps()
        assert self.poller is not None
        self.poller.now()

    def action_stop_run(self) -> None:
        execution = self._selected_execution()
        if execution is None or not execution.status.is_active:
            return

        def stop(confirmed: bool | None) -> None:
            if confirmed:
                self.stop_run(execution.arn)

        question = (
            f"Stop run {execution.execution_id}? Its current step is stopped and nothing from this run is registered."
        )
        self.app.push_screen(ConfirmScreen("Stop run", question, "Stop", danger=True), stop)

    @work(thread=True, exclusive=True, group="runs-stop", name="stop a run", exit_on_error=False)
    def stop_run(self, arn: str) -> None:
        self.post_message(RunStopRequested(self.backend.stop_execution(arn)))

    def on_run_stop_requested(self, message: RunStopRequested) -> None:
        self.notify(f"Stopping {message.execution.execution_id}")
        assert self.poller is not None
        self.poller.now()

    def action_follow(self) -> None:
        self.follow = True
        self._draw_steps()
        self.update_bindings()
        assert self.poller is not None
        self.poller.now()

    def palette_commands(self) -> Iterable[PaletteCommand]:
        yield PaletteCommand("New run", "Open the new run form (n)", self.action_new_run)
        execution = self._selected_execution()
        if execution is not None and execution.status.is_active:
            yield PaletteCommand(
                f"Stop run {execution.execution_id}", "Stop the selected running execution (s)", self.action_stop_run
            )
        for name in spec.STEP_NAMES:
            if execution is not None and any(s.name == name for s in self.steps.get(execution.arn, [])):
                yield PaletteCommand(
                    f"Show {name} log", f"The log of step {name} of the selected run", self._show(name)
                )

    def _show(self, step: str):
        def show() -> None:
            table = self.query_one("#steps", DataTable)
            table.move_cursor(row=spec.STEP_NAMES.index(step))
            table.focus()

        return show
