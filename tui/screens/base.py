"""What the four places share: the navigation bar, the footer, polling while shown, worker error reports."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer
from textual.worker import Worker

from tui.commands import PaletteCommand
from tui.widgets.navbar import NavBar
from tui.workers import Poller, ReportsWorkerErrors

if TYPE_CHECKING:
    from tui.app import HousingApp


class PlaceScreen(ReportsWorkerErrors, Screen[None]):
    """One of the four places (keys 1-4). Subclasses set MODE, compose their body and may poll."""

    MODE = ""
    POLL_GROUP = ""  # the worker group whose failure must not end the polling

    def __init__(self) -> None:
        super().__init__(id=f"{self.MODE}-screen")
        self.poller: Poller | None = None
        self.loaded = False  # the first fetch has been drawn (tests and the benchmark wait for it)
        self._allowed: tuple[bool | None, ...] = ()

    @property
    def housing(self) -> HousingApp:
        return self.app  # type: ignore[return-value]

    @property
    def backend(self) -> Any:
        return self.housing.backend

    def compose(self) -> ComposeResult:
        yield NavBar(self.MODE)
        yield from self.compose_body()
        yield Footer(compact=True)

    def compose_body(self) -> ComposeResult:
        yield from ()

    def poll_every(self, seconds: float) -> float:
        """`seconds`, but never faster than the backend allows (SageMaker throttles eager callers)."""
        return max(seconds, float(getattr(self.backend, "poll_seconds", 1.0)))

    @property
    def settled(self) -> bool:
        """Loaded, and no fetch in flight: what is drawn is what the backend said last."""
        return self.loaded and (self.poller is None or not self.poller.busy)

    def update_bindings(self) -> None:
        """refresh_bindings, only when what check_action allows has changed: the footer rebuilds its keys on
        every refresh, which costs milliseconds a cursor move should not pay."""
        bindings = [binding for binding in self.BINDINGS if isinstance(binding, Binding)]
        allowed = tuple(self.check_action(binding.action, ()) for binding in bindings)
        if allowed != self._allowed:
            self._allowed = allowed
            self.refresh_bindings()

    def palette_commands(self) -> Iterable[PaletteCommand]:
        return ()

    # ---- polling: only while this screen is the one shown -----------------------------------------------

    def on_screen_resume(self, _event: events.ScreenResume) -> None:
        if self.poller is not None:
            self.poller.resume()
        self.refresh_bindings()

    def on_screen_suspend(self, _event: events.ScreenSuspend) -> None:
        if self.poller is not None:
            self.poller.suspend()

    def worker_failed(self, worker: Worker) -> None:
        if self.poller is not None and worker.group == self.POLL_GROUP:
            self.poller.done(failed=True)
