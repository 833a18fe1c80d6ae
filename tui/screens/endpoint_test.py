"""Endpoint test: send typed, pasted or sampled CSV rows to an endpoint; see prediction, actual, residual and
latency of each request, and the endpoint's errors as they come, with the screen still usable."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import DataTable, Input, Label, Select, Static, TextArea
from textual.worker import Worker

from core import spec
from core.errors import UserError
from core.models import Endpoint, EndpointStatus
from tui.commands import PaletteCommand
from tui.messages import EndpointsLoaded, RequestAnswered, RequestResult, SampleRowsLoaded
from tui.present import version_label
from tui.screens.base import PlaceScreen
from tui.validation import Checked, parse_sample_rows
from tui.widgets.tables import FittedTable

SERVING = (EndpointStatus.IN_SERVICE, EndpointStatus.UPDATING)
MAX_RESULT_ROWS = 5000


class EndpointTestScreen(PlaceScreen):
    MODE = "test"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "send", "Send rows", id="test.send"),
        Binding("ctrl+l", "load_samples", "Load sample rows", id="test.load"),
        Binding("ctrl+r", "clear_results", "Clear results", id="test.clear"),
        Binding("escape", "leave_editor", "Leave editor", id="test.leave"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.endpoints: list[Endpoint] = []
        self.results: list[RequestResult] = []
        self.sent = 0

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="test-controls"):
            yield Label("Endpoint ", classes="control-label")
            yield Select([], prompt="no endpoint", compact=True, id="test-endpoint")
            yield Label("  Sample rows ", classes="control-label")
            yield Input("5", compact=True, validators=[Checked(parse_sample_rows)], id="sample-count")
        editor = TextArea("", id="csv", soft_wrap=False, show_line_numbers=False)
        editor.border_title = "CSV rows: 8 features each, or a header row (MedHouseVal = actual)"
        yield editor
        results = FittedTable(id="results", cursor_type="row", zebra_stripes=True)
        results.border_title = "Results"
        yield results
        yield Static("Type or paste CSV rows, or ctrl+l for sample rows; ctrl+s sends them.", id="test-status")

    def on_mount(self) -> None:
        table = self.query_one("#results", DataTable)
        for label, key, width in (
            ("Req", "request", 4),
            ("Row", "row", 4),
            ("Prediction", "prediction", 10),
            ("Actual", "actual", 8),
            ("Residual", "residual", 9),
            ("Latency", "latency", 10),
            ("Endpoint", "endpoint", 16),
        ):
            table.add_column(label, key=key, width=width)
        self.query_one("#test-endpoint", Select).focus()

    def on_screen_resume(self, _event: object) -> None:
        self.load_endpoints()

    # ---- endpoints to choose from ------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="test-endpoints", name="list endpoints", exit_on_error=False)
    def load_endpoints(self) -> None:
        self.post_message(EndpointsLoaded(self.backend.list_endpoints()))

    def on_endpoints_loaded(self, message: EndpointsLoaded) -> None:
        self.endpoints = message.endpoints
        select = self.query_one("#test-endpoint", Select)
        wanted = self.housing.test_endpoint or (select.value if select.value != Select.NULL else None)
        options = [
            (f"{e.name} ({e.status}, {version_label(e.model_package_arn)})", e.name)
            for e in sorted(self.endpoints, key=lambda e: (e.status not in SERVING, e.name))
        ]
        names = [name for _, name in options]
        select.set_options(options)
        if wanted in names:
            select.value = wanted
        elif options:
            select.value = names[0]
        self.housing.test_endpoint = None
        self.loaded = True
        self.update_bindings()

    def chosen_endpoint(self) -> str | None:
        value = self.query_one("#test-endpoint", Select).value
        return None if value == Select.NULL else str(value)

    @on(Select.Changed, "#test-endpoint")
    def _endpoint_changed(self) -> None:
        self.update_bindings()

    # ---- sample rows -------------------------------------------------------------------------------------

    def action_load_samples(self) -> None:
        name = self.chosen_endpoint()
        if name is None:
            self.notify("Choose an endpoint first: its model's run holds the test split.", severity="warning")
            return
        try:
            count = parse_sample_rows(self.query_one("#sample-count", Input).value)
        except UserError as exc:
            self.notify(str(exc), severity="warning", markup=False)
            return
        self.load_samples(name, count)

    @work(thread=True, exclusive=True, group="test-samples", name="load sample rows", exit_on_error=False)
    def load_samples(self, name: str, count: int) -> None:
        backend = self.backend
        endpoint = backend.get_endpoint(name)
        version = backend.get_version(endpoint.model_package_arn)
        if not version.execution_arn:
            raise UserError(f"version {version.version} records no run, so there is no test split to sample from")
        rows = backend.test_rows(version.execution_arn, count)
        header = ",".join((*spec.FEATURES, spec.TARGET))
        lines = [
            ",".join(repr(v) for v in (*features, actual))
            for features, actual in zip(rows.features, rows.actuals, strict=True)
        ]
        self.post_message(SampleRowsLoaded("\n".join([header, *lines]) + "\n", len(lines), version))

    def on_sample_rows_loaded(self, message: SampleRowsLoaded) -> None:
        self.query_one("#csv", TextArea).text = message.csv_text
        self._status(
            Text(
                f"Loaded {message.count} rows of the test split of the run that made v{message.version.version}; "
                "ctrl+s sends them."
            )
        )

    # ---- sending -----------------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("send", "load_samples"):
            return self.chosen_endpoint() is not None
        if action == "clear_results":
            return bool(self.results)
        if action == "leave_editor":
            return self.focused is self.query_one("#csv", TextArea)
        return True

    def action_send(self) -> None:
        name = self.chosen_endpoint()
        if name is None:
            self.notify("Choose an endpoint first (deploy one on the Endpoints screen, 3).", severity="warning")
            return
        self.sent += 1
        self._status(Text(f"request {self.sent} to {name}: sending…", style="yellow"))
        self.send_rows(self.sent, name, self.query_one("#csv", TextArea).text)

    @work(thread=True, exclusive=True, group="test-send", name="invoke the endpoint", exit_on_error=False)
    def send_rows(self, number: int, name: str, text: str) -> None:
        from core.csvrows import prepare_rows

        try:
            rows = prepare_rows(text)
            invocation = self.backend.invoke_endpoint(name, rows.body)
        except Exception as exc:
            # Shown in place as well as in the notice the app makes of the re-raised error.
            self.post_message(RequestAnswered(RequestResult(number, name, 0, None, error=str(exc))))
            raise
        self.post_message(RequestAnswered(RequestResult(number, name, rows.count, rows.actuals, invocation)))

    def on_request_answered(self, message: RequestAnswered) -> None:
        result = message.result
        self.results.append(result)
        table = self.query_one("#results", DataTable)
        if result.error is not None:
            table.add_row(
                str(result.number),
                "-",
                Text("error", style="bold red"),
                "",
                "",
                "",
                result.endpoint,
                key=f"{result.number}-error",
            )
            self._status(Text(f"request {result.number} failed: {result.error}", style="red"))
        else:
            assert result.invocation is not None
            predictions = result.predictions
            latency = f"{result.invocation.latency_ms:.1f} ms"
            residuals = []
            for i, prediction in enumerate(predictions):
                actual = result.actuals[i] if result.actuals and i < len(result.actuals) else None
                residual = None if actual is None else actual - prediction
                if residual is not None:
                    residuals.append(abs(residual))
                table.add_row(
                    str(result.number),
                    str(i + 1),
                    f"{prediction:.4f}",
                    "-" if actual is None else f"{actual:.4f}",
                    "-" if residual is None else f"{residual:+.4f}",
                    latency if i == 0 else "",
                    result.endpoint if i == 0 else "",
                    key=f"{result.number}-{i}",
                )
            summary = f"request {result.number} to {result.endpoint}: {len(predictions)} predictions in {latency}"
            if residuals:
                summary += f", mean |residual| {sum(residuals) / len(residuals):.4f}"
            self._status(Text(summary, style="green"))
        while table.row_count > MAX_RESULT_ROWS:
            table.remove_row(next(iter(table.rows)))
        table.move_cursor(row=table.row_count - 1, animate=False)
        self.update_bindings()

    def worker_failed(self, worker: Worker) -> None:
        if worker.group == "test-samples" and worker.error is not None:
            self._status(Text(f"sample rows not loaded: {worker.error}", style="red"))

    def action_clear_results(self) -> None:
        self.results.clear()
        self.query_one("#results", DataTable).clear()
        self._status(Text("Results cleared."))
        self.update_bindings()

    def action_leave_editor(self) -> None:
        self.query_one("#results", DataTable).focus()

    def _status(self, text: Text) -> None:
        self.query_one("#test-status", Static).update(text)

    def select_endpoint(self, name: str) -> None:
        self.housing.test_endpoint = name
        self.load_endpoints()

    def palette_commands(self) -> Iterable[PaletteCommand]:
        name = self.chosen_endpoint()
        if name is not None:
            yield PaletteCommand(
                f"Send rows to {name}", "Invoke the endpoint with the CSV rows (ctrl+s)", self.action_send
            )
            yield PaletteCommand(
                "Load sample rows",
                "Rows of the test split of the served model's run (ctrl+l)",
                self.action_load_samples,
            )
        for endpoint in self.endpoints:
            if endpoint.name != name and endpoint.status in SERVING:
                yield PaletteCommand(
                    f"Test endpoint {endpoint.name}", "Send rows to this endpoint instead", self._choose(endpoint.name)
                )
        if self.results:
            yield PaletteCommand("Clear results", "Empty the results table (ctrl+r)", self.action_clear_results)

    def _choose(self, name: str):
        def choose() -> None:
            self.query_one("#test-endpoint", Select).value = name

        return choose
