"""The terminal application: four places (Runs, Registry, Endpoints, Test) on one Backend.

The app talks to nothing but the Backend protocol, always from thread workers; results come back as typed
messages (tui/messages.py), and `on_backend_error` is the one place a failed call becomes a notice. Nothing
here imports scikit-learn, pandas, boto3 or the SageMaker SDK: invoking an endpoint loads boto3 lazily.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

from textual import work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.reactive import reactive
from textual.screen import Screen

from core.backend import Backend
from core.errors import UserError
from core.settings import Settings
from tui.commands import HousingCommands, PaletteCommand
from tui.messages import BackendError, DeployStarted
from tui.present import version_label
from tui.screens.confirm import ApprovalScreen, ConfirmScreen
from tui.screens.deploy import DeployRequest, DeployScreen
from tui.screens.endpoint_test import EndpointTestScreen
from tui.screens.endpoints import EndpointsScreen
from tui.screens.help import HelpScreen
from tui.screens.new_run import NewRunScreen
from tui.screens.registry import RegistryScreen
from tui.screens.runs import RunsScreen
from tui.workers import ReportsWorkerErrors

PLACES = {"runs": "Runs", "registry": "Registry", "endpoints": "Endpoints", "test": "Endpoint test"}
REPEATED_ERROR_SECONDS = 10.0  # the same failure, e.g. of every poll, is announced once in this long


class HousingApp(ReportsWorkerErrors, App[None]):
    TITLE = "housing-tui"
    CSS_PATH = "app.tcss"
    MODES: ClassVar[dict[str, str | Callable[[], Screen]]] = {
        "runs": RunsScreen,
        "registry": RegistryScreen,
        "endpoints": EndpointsScreen,
        "test": EndpointTestScreen,
    }
    DEFAULT_MODE = "runs"
    COMMANDS = App.COMMANDS | {HousingCommands}
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-narrow"), (110, "-wide")]
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("1", "goto('runs')", "Runs", id="app.goto_runs", show=False),
        Binding("2", "goto('registry')", "Registry", id="app.goto_registry", show=False),
        Binding("3", "goto('endpoints')", "Endpoints", id="app.goto_endpoints", show=False),
        Binding("4", "goto('test')", "Endpoint test", id="app.goto_test", show=False),
        Binding("t", "edit_threshold", "Threshold", id="app.threshold", show=False),
        Binding("question_mark", "help", "Help", id="app.help"),
        Binding("q", "quit", "Quit", id="app.quit"),
    ]

    threshold: reactive[float] = reactive(0.6)

    def __init__(self, backend: Backend, settings: Settings, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.backend = backend
        self.settings = settings
        self.clock = clock  # what "now" is for durations; tests fix it so no clock shows in a snapshot
        self.set_reactive(HousingApp.threshold, settings.threshold)
        self.focus_endpoint: str | None = None  # the endpoints screen highlights it once it is listed
        self.test_endpoint: str | None = None  # the test screen chooses it when shown
        self._announced: dict[str, float] = {}

    def on_ready(self) -> None:
        # Textual builds many long-lived objects while starting; moving them out of the collector's reach
        # keeps later full collections (e.g. while a 1,000-version registry is drawn) short.
        gc.freeze()

    # ---- errors: the one handler ---------------------------------------------------------------------------

    def on_backend_error(self, message: BackendError) -> None:
        error = message.error
        text = str(error) if isinstance(error, UserError) else f"{type(error).__name__}: {error}"
        now = time.monotonic()
        if now - self._announced.get(text, -REPEATED_ERROR_SECONDS) < REPEATED_ERROR_SECONDS:
            return
        self._announced[text] = now
        title = "Refused" if isinstance(error, UserError) else f"Could not {message.action}"
        self.notify(text, title=title, severity="error", timeout=10, markup=False)

    # ---- places --------------------------------------------------------------------------------------------

    async def action_goto(self, mode: str) -> None:
        await self.switch_mode(mode)

    async def action_edit_threshold(self) -> None:
        await self.switch_mode("registry")
        screen = self.screen
        if isinstance(screen, RegistryScreen):
            screen.begin_threshold_edit()

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.help_sections()))

    def help_sections(self) -> list[tuple[str, list[Any]]]:
        return [
            ("Everywhere", list(self.BINDINGS)),
            ("Runs (1)", list(RunsScreen.BINDINGS)),
            ("Registry (2)", list(RegistryScreen.BINDINGS)),
            ("Endpoints (3)", list(EndpointsScreen.BINDINGS)),
            ("Endpoint test (4)", list(EndpointTestScreen.BINDINGS)),
            ("New run form", list(NewRunScreen.BINDINGS)),
            ("Deploy form", list(DeployScreen.BINDINGS)),
            ("Confirmations", list(ConfirmScreen.BINDINGS)),
            ("Approve / reject", list(ApprovalScreen.BINDINGS)),
            ("This help", list(HelpScreen.BINDINGS)),
        ]

    # ---- deploy, from the registry or the endpoints screen -------------------------------------------------

    def deploy(self, request: DeployRequest) -> None:
        self.focus_endpoint = request.endpoint_name
        self.switch_mode("endpoints")
        self.start_deploy(request)

    @work(thread=True, exclusive=True, group="deploy", name="deploy the version", exit_on_error=False)
    def start_deploy(self, request: DeployRequest) -> None:
        endpoint = self.backend.deploy(
            request.version.arn,
            request.endpoint_name,
            request.memory_mb,
            request.max_concurrency,
            force=request.force,
            wait=False,
        )
        self.post_message(DeployStarted(endpoint, request.version))

    def on_deploy_started(self, message: DeployStarted) -> None:
        endpoint = message.endpoint
        self.notify(f"{endpoint.name}: {endpoint.status}, to serve {version_label(message.version.arn)}", markup=False)
        self.focus_endpoint = endpoint.name
        if isinstance(self.screen, EndpointsScreen):
            self.screen.show_deploy()

    def open_endpoint_test(self, name: str) -> None:
        self.test_endpoint = name
        if isinstance(self.screen, EndpointTestScreen):
            self.screen.select_endpoint(name)
        else:
            self.switch_mode("test")

    # ---- command palette -----------------------------------------------------------------------------------

    def palette_commands(self, screen: Screen[Any]) -> Iterable[PaletteCommand]:
        current = self.current_mode
        for mode, title in PLACES.items():
            if mode != current:
                yield PaletteCommand(f"Go to {title}", f"Show the {title} screen", self._goto(mode))
        if current != "runs":
            yield PaletteCommand("New run", "Start a pipeline run from the form", self._new_run)
        yield PaletteCommand(
            "Change threshold",
            f"R2Threshold of the next runs, now {self.threshold:.4g} (t)",
            self.action_edit_threshold,
        )
        yield PaletteCommand("Help: all keys", "List every binding (?)", self.action_help)
        collect = getattr(screen, "palette_commands", None)
        if collect is not None:
            yield from collect()

    def _goto(self, mode: str) -> Callable[[], Any]:
        async def goto() -> None:
            await self.switch_mode(mode)

        return goto

    async def _new_run(self) -> None:
        await self.switch_mode("runs")
        screen = self.screen
        if isinstance(screen, RunsScreen):
            screen.action_new_run()
