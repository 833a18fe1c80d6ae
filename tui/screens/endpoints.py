"""Endpoints: status and model of each, deploy progress until InService (or the reason for Failed), delete."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.widgets import DataTable, Static
from textual.worker import get_current_worker

from core.models import Endpoint, EndpointStatus
from tui.commands import PaletteCommand
from tui.messages import DeployChoicesLoaded, EndpointDeleted, EndpointsLoaded
from tui.present import endpoint_detail, endpoint_row, version_label
from tui.screens.base import PlaceScreen
from tui.screens.confirm import ConfirmScreen
from tui.screens.deploy import DeployScreen
from tui.widgets.tables import FittedTable, selected_key, sync_rows
from tui.workers import Poller

BUSY = (EndpointStatus.CREATING, EndpointStatus.UPDATING, EndpointStatus.DELETING)
BUSY_POLL_SECONDS = 0.5
IDLE_POLL_SECONDS = 3.0


class EndpointsScreen(PlaceScreen):
    MODE = "endpoints"
    POLL_GROUP = "endpoints-poll"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("d", "deploy", "Deploy", id="endpoints.deploy"),
        Binding("x", "delete", "Delete", id="endpoints.delete"),
        Binding("e", "test", "Test endpoint", id="endpoints.test"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.endpoints: list[Endpoint] = []
        self.previous: dict[str, EndpointStatus] = {}
        self.poller = Poller(self, self.fetch_endpoints, self.poll_interval)

    def compose_body(self) -> ComposeResult:
        with Vertical(id="endpoints-body"):
            table = FittedTable(id="endpoints", cursor_type="row", zebra_stripes=True)
            table.border_title = "Endpoints"
            yield table
            detail = VerticalScroll(id="endpoint-detail-pane")
            detail.border_title = "Endpoint"
            with detail:
                yield Static("", id="endpoint-detail")

    def on_mount(self) -> None:
        table = self.query_one("#endpoints", DataTable)
        for label, key, width in (
            ("Name", "name", 16),
            ("Status", "status", 9),
            ("Model", "model", 5),
            ("Memory", "memory", 7),
            ("Concurrency", "concurrency", 11),
            ("Changed", "changed", 16),
        ):
            table.add_column(label, key=key, width=width)
        table.focus()

    # ---- polling -----------------------------------------------------------------------------------------

    def poll_interval(self) -> float:
        busy = any(e.status in BUSY for e in self.endpoints)
        return self.poll_every(BUSY_POLL_SECONDS) if busy else self.poll_every(IDLE_POLL_SECONDS)

    @work(thread=True, exclusive=True, group="endpoints-poll", name="list endpoints", exit_on_error=False)
    def fetch_endpoints(self) -> None:
        endpoints = self.backend.list_endpoints()
        if not get_current_worker().is_cancelled:
            self.post_message(EndpointsLoaded(endpoints))

    def on_endpoints_loaded(self, message: EndpointsLoaded) -> None:
        self._announce_changes(message.endpoints)
        self.endpoints = message.endpoints
        self._draw()
        self.loaded = True
        assert self.poller is not None
        self.poller.done()

    def _announce_changes(self, endpoints: list[Endpoint]) -> None:
        """A deploy's end is news: say so once, when a busy endpoint settles."""
        for endpoint in endpoints:
            before = self.previous.get(endpoint.name)
            if before in (EndpointStatus.CREATING, EndpointStatus.UPDATING) and endpoint.status not in BUSY:
                if endpoint.status is EndpointStatus.FAILED:
                    self.notify(
                        f"{endpoint.name} Failed: {endpoint.failure_reason}", severity="error", timeout=15, markup=False
                    )
                elif endpoint.failure_reason and before is EndpointStatus.UPDATING:
                    self.notify(f"{endpoint.name}: {endpoint.failure_reason}", severity="warning", markup=False)
                else:
                    self.notify(
                        f"{endpoint.name} is InService, serving {version_label(endpoint.model_package_arn)}",
                        markup=False,
                    )
        self.previous = {e.name: e.status for e in endpoints}

    def _draw(self) -> None:
        table = self.query_one("#endpoints", DataTable)
        sync_rows(table, [(e.name, endpoint_row(e)) for e in self.endpoints])
        focus = self.housing.focus_endpoint
        if focus and focus in [e.name for e in self.endpoints] and selected_key(table) != focus:
            table.move_cursor(row=[e.name for e in self.endpoints].index(focus), animate=False)
            self.housing.focus_endpoint = None
        busy = sum(e.status in BUSY for e in self.endpoints)
        table.border_title = f"Endpoints · {len(self.endpoints)}" + (f" · {busy} changing" if busy else "")
        self._draw_detail()
        self.update_bindings()

    def _draw_detail(self) -> None:
        endpoint = self.selected_endpoint()
        detail = self.query_one("#endpoint-detail", Static)
        if endpoint is None:
            detail.update("No endpoints. Deploy an Approved version: d here, or d on a version in the Registry (2).")
            return
        detail.update(endpoint_detail(endpoint, self.housing.clock()))

    def selected_endpoint(self) -> Endpoint | None:
        key = selected_key(self.query_one("#endpoints", DataTable))
        return next((e for e in self.endpoints if e.name == key), None)

    @on(DataTable.RowHighlighted, "#endpoints")
    def _highlighted(self) -> None:
        self._draw_detail()
        self.update_bindings()

    @on(DataTable.RowSelected, "#endpoints")
    def _selected(self) -> None:
        self.action_test()

    def show_deploy(self) -> None:
        """A deploy was just requested (from anywhere): read the endpoints now, and keep reading while busy."""
        assert self.poller is not None
        self.poller.now()

    # ---- actions -----------------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("delete", "test"):
            endpoint = self.selected_endpoint()
            if endpoint is None:
                return False
            if action == "test":
                return endpoint.status in (EndpointStatus.IN_SERVICE, EndpointStatus.UPDATING)
            return endpoint.status is not EndpointStatus.DELETING
        return True

    def action_deploy(self) -> None:
        self.load_deploy_choices(self.selected_endpoint())

    @work(
        thread=True, exclusive=True, group="endpoints-deploy-form", name="list versions to deploy", exit_on_error=False
    )
    def load_deploy_choices(self, endpoint: Endpoint | None) -> None:
        self.post_message(DeployChoicesLoaded(self.backend.list_versions(), endpoint))

    def on_deploy_choices_loaded(self, message: DeployChoicesLoaded) -> None:
        if not message.versions:
            self.notify("There are no versions to deploy yet; a run that passes its threshold registers one.")
            return
        endpoint = message.endpoint
        current = next((v for v in message.versions if endpoint and v.arn == endpoint.model_package_arn), None)

        def deploy(request: object) -> None:
            if request is not None:
                self.housing.deploy(request)  # type: ignore[arg-type]

        self.app.push_screen(DeployScreen(message.versions, current, endpoint), deploy)

    def action_delete(self) -> None:
        endpoint = self.selected_endpoint()
        if endpoint is None:
            return

        def delete(confirmed: bool | None) -> None:
            if confirmed:
                self.delete_endpoint(endpoint.name)

        question = (
            f"Delete endpoint {endpoint.name} ({endpoint.status}, serving {version_label(endpoint.model_package_arn)})?"
            " Its server stops and requests to it fail from then on."
        )
        self.app.push_screen(ConfirmScreen("Delete endpoint", question, "Delete", danger=True), delete)

    @work(thread=True, exclusive=True, group="endpoints-delete", name="delete an endpoint", exit_on_error=False)
    def delete_endpoint(self, name: str) -> None:
        self.backend.delete_endpoint(name)
        self.post_message(EndpointDeleted(name))

    def on_endpoint_deleted(self, message: EndpointDeleted) -> None:
        self.notify(f"Deleted endpoint {message.name}.", markup=False)
        assert self.poller is not None
        self.poller.now()

    def action_test(self) -> None:
        endpoint = self.selected_endpoint()
        if endpoint is not None:
            self.housing.open_endpoint_test(endpoint.name)

    def palette_commands(self) -> Iterable[PaletteCommand]:
        yield PaletteCommand("Deploy a version", "Open the deploy form (d)", self.action_deploy)
        endpoint = self.selected_endpoint()
        if endpoint is not None:
            if endpoint.status is not EndpointStatus.DELETING:
                yield PaletteCommand(f"Delete endpoint {endpoint.name}", "Stop and remove it (x)", self.action_delete)
            if endpoint.status in (EndpointStatus.IN_SERVICE, EndpointStatus.UPDATING):
                yield PaletteCommand(f"Test endpoint {endpoint.name}", "Send it CSV rows (e)", self.action_test)
